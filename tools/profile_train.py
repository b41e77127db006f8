"""Profile training iterations of a GLIDE config, phase by phase, in the
precisions asked for (one run, same process, same data).

    python tools/profile_train.py                    # the shapes demo config
    python tools/profile_train.py CONFIG --batch 32 --steps 10 \
        --dtype float32 bfloat16 --ops 12

Each iteration is the one mmengine's ``IterBasedTrainLoop`` runs with the
config's own pieces (its train dataloader, data preprocessor, ``Glide.loss``,
optimizer wrapper with its gradient clipping, and the averaged model of its
``EMAHook``), timed as:

* ``data``: the next batch from the dataloader plus the data preprocessor;
* ``tokenize``: the tokenizer inside ``Glide.loss``;
* ``text``: the text transformer (``encode_text``) inside the UNet;
* ``unet``: the rest of the UNet's forward;
* ``loss``: the rest of ``Glide.loss`` (noise, ``q_sample``, MSE, VB term);
* ``backward``, ``optimizer`` (clip + step + zero_grad), ``ema``.

``bfloat16`` runs the forward under CPU (or CUDA) autocast; the backward
follows it. ``--ops N`` also prints torch's profiler table of the N most
expensive operators of one float32 iteration. Figures are printed, never
asserted: compare them within one run.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/profile_train.py')

CONFIG = os.path.join(os.path.dirname(__file__), '..', 'projects', 'glide',
                      'configs', 'glide_base-stage1_2xb16-4k_shapes-32x32.py')
PHASES = ('data', 'tokenize', 'text', 'unet', 'loss', 'backward',
          'optimizer', 'ema')


class Clock:
    """Seconds spent in named phases; ``wrap`` times every call of a
    function under a name (nested wraps are subtracted from the outer)."""

    def __init__(self):
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._stack = []

    def start(self, name):
        self._stack.append((name, time.perf_counter(), 0.0))

    def stop(self):
        name, begin, inner = self._stack.pop()
        spent = time.perf_counter() - begin
        self.seconds[name] += spent - inner
        if self._stack:
            outer, outer_begin, outer_inner = self._stack[-1]
            self._stack[-1] = (outer, outer_begin, outer_inner + spent)

    def wrap(self, name, fn):

        def timed(*args, **kwargs):
            self.start(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stop()

        return timed


def build(config, batch, device, options=None):
    """The config's model, EMA model, optimizer wrapper and an endless
    iterator over its train dataloader."""
    import torch
    from mmengine import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner
    from mmagic.registry import MODELS
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(options)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device).train()
    ema_cfg = next((dict(h) for h in cfg.get('custom_hooks', [])
                    if h['type'] == 'EMAHook'), None)
    ema = None
    if ema_cfg is not None:
        ema = MODELS.build(
            dict(type=ema_cfg.get('ema_type', 'ExponentialMovingAverage'),
                 **{k: v for k, v in ema_cfg.items()
                    if k in ('momentum', 'gamma', 'interval')}),
            default_args=dict(model=model))
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    loader_cfg = cfg.train_dataloader
    loader_cfg.batch_size = batch
    loader = Runner.build_dataloader(loader_cfg, seed=0)

    def batches():
        while True:
            yield from loader

    return model, ema, optim, batches()


def iteration(model, ema, optim, batches, clock, dtype):
    import torch
    clock.start('data')
    data = model.data_preprocessor(next(batches), True)
    clock.stop()
    clock.start('loss')
    with torch.autocast(model.device.type, dtype=dtype,
                        enabled=dtype != torch.float32):
        losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    clock.stop()
    clock.start('backward')
    optim.backward(loss)
    clock.stop()
    clock.start('optimizer')
    optim.step()
    optim.zero_grad()
    clock.stop()
    if ema is not None:
        clock.start('ema')
        ema.update_parameters(model)
        clock.stop()


def profile(args, dtype_name):
    """Seconds per phase per iteration, and images/s."""
    import torch
    dtype = getattr(torch, dtype_name)
    model, ema, optim, batches = build(args.config, args.batch, args.device,
                                       args.cfg_options)
    clock = Clock()
    model.tokenizer = clock.wrap('tokenize', model.tokenizer)
    model.unet.encode_text = clock.wrap('text', model.unet.encode_text)
    model.unet.forward = clock.wrap('unet', model.unet.forward)
    for _ in range(args.warmup):
        iteration(model, ema, optim, batches, clock, dtype)
    clock.seconds = dict.fromkeys(PHASES, 0.0)
    begin = time.perf_counter()
    for _ in range(args.steps):
        iteration(model, ema, optim, batches, clock, dtype)
    total = (time.perf_counter() - begin) / args.steps
    phases = {k: v / args.steps for k, v in clock.seconds.items()}
    return phases, total, model, ema, optim, batches


def op_table(model, ema, optim, batches, rows):
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        iteration(model, ema, optim, batches, Clock(), torch.float32)
    return prof.key_averages().table(sort_by='self_cpu_time_total',
                                     row_limit=rows)


def main(argv=None):
    """Print the table; return ``{dtype: {'phases': {phase: seconds},
    'seconds': seconds per iteration}}``."""
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', nargs='?', default=CONFIG)
    p.add_argument('--batch', type=int, default=32,
                   help='images per iteration (default: 32)')
    p.add_argument('--steps', type=int, default=10,
                   help='timed iterations per precision (default: 10)')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--dtype', nargs='+', default=['float32', 'bfloat16'],
                   choices=['float32', 'bfloat16'])
    p.add_argument('--device', default='cpu')
    p.add_argument('--ops', type=int, default=0, metavar='N',
                   help='also print the N most expensive operators')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, e.g. '
                   'train_dataloader.dataset.data_root=DIR')
    args = p.parse_args(argv)
    for name in ('batch', 'steps'):
        if getattr(args, name) < 1:
            p.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.warmup < 0:
        p.error(f'--warmup must be >= 0, got {args.warmup}')
    import torch
    import projects.glide.models  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmagic')
    print(f'{os.path.basename(args.config)}: {args.batch} images per '
          f'iteration, {args.steps} timed after {args.warmup}, '
          f'{torch.get_num_threads()} threads, device {args.device}')
    print('| precision | ' + ' | '.join(PHASES) +
          ' | s/iteration | images/s |')
    print('|---' * (len(PHASES) + 3) + '|')
    rates, results = {}, {}
    last = None
    for dtype in args.dtype:
        phases, total, *last = profile(args, dtype)
        results[dtype] = dict(phases=phases, seconds=total)
        rates[dtype] = args.batch / total
        cells = [f'{phases[k] * 1e3:.0f} ms ({phases[k] / total:.0%})'
                 for k in PHASES]
        print(f'| {dtype} | ' + ' | '.join(cells) +
              f' | {total:.3f} | {rates[dtype]:.1f} |', flush=True)
    if len(rates) > 1 and 'float32' in rates:
        fastest = max(rates, key=rates.get)
        print(f'fastest here: {fastest} (' + ', '.join(
            f'{k} {v / rates["float32"]:.2f}x float32' for k, v in
            rates.items() if k != 'float32') + ')')
    if args.ops:
        print(op_table(*last, args.ops))
    return results


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads()
    main()
