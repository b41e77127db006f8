"""Benchmark GLIDE's full-size networks: our optimised path against a plain
float32 eager baseline, in one run, with random weights (no download).

    python tools/benchmark.py                       # CPU, base + upsampler
    python tools/benchmark.py --device cuda --dtype float16
    python tools/benchmark.py --models base --channels-last --compile

For each model and setting it prints: seconds per step (the base model's
step is classifier-free guided: the network sees the sample twice), model
GFLOPs per step (counted by torch's FlopCounterMode), achieved GFLOP/s and
its ratio to the matmul peak measured in the same run for the same dtype,
the peak memory during the setting, and the time to one sample for each
recipe (the measured step time times the recipe's steps, plus the measured
text encoding; ``--full-sample`` also times one whole sample end to end).

The baseline computes as the reference implementation does: float32, the
text transformer and every attention block's text keys/values recomputed at
each step, einsum attention. The optimised path: the text encoded once per
call, ``scaled_dot_product_attention``, and the chosen dtype (default:
the dtype whose matmul peak measured in the run is higher: bfloat16 on a CPU
with AVX512-BF16/AMX or float16 on a GPU, if faster than float32; GroupNorm,
LayerNorm and softmax in float32).
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/benchmark.py')

CONFIG = os.path.join(os.path.dirname(__file__), '..', 'projects', 'glide',
                      'configs', 'glide_ddim-classifier-free_laion-64-256.py')
BASE_RECIPES = {'ancestral 100 (reference)': 100, 'DDIM 50': 50,
                'DPM-Solver++ 25': 25, 'DPM-Solver++ 20': 20}
UP_RECIPES = {'DDIM fast27 (reference)': 27}


class PeakMemory:
    """Peak memory while the block runs: CUDA's allocator, or the process's
    resident set sampled every 5 ms."""

    def __init__(self, device):
        self.device, self.peak = device, 0

    def _rss(self):
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __enter__(self):
        import torch
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        else:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        import torch
        if self.device.type == 'cuda':
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()


def sync(device):
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize()


def timed(fn, device, repeats):
    """Median seconds of ``repeats`` calls after one warm-up."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak(dtype, device, size):
    """GFLOP/s of a large square matrix product in ``dtype``."""
    import torch
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    seconds = timed(lambda: torch.mm(a, b), device, 5)
    return 2 * size**3 / seconds / 1e9


def cpu_has_bf16():
    try:
        with open('/proc/cpuinfo') as f:
            flags = f.read()
        return 'avx512_bf16' in flags or 'amx_bf16' in flags
    except OSError:
        return False


def build(stage, device, config):
    """A full-size network of the 64-256 config, random weights (the zero
    initialised output layers drawn too, so no output is trivially zero)."""
    import torch
    from mmengine import Config
    from mmagic.registry import MODELS
    cfg = Config.fromfile(config).model
    torch.manual_seed(0)
    net = MODELS.build(cfg.unet if stage == 'base' else cfg.unet_up)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if (p == 0).all() and p.dim() > 1:
                p.normal_(std=0.01)
    return net.eval().to(device)


def make_step(net, stage, device, dtype, optimised, scheduler):
    """A closure running one sampling step, as ``Glide.denoise`` does."""
    import torch
    from projects.glide.models import GlideTokenizer
    from projects.glide.models.glide import classifier_free_guidance
    size = net.image_size
    guided = stage == 'base'
    tok = GlideTokenizer()
    prompts = ['an oil painting of a corgi'] + ([''] if guided else [])
    tokens, mask = tok(prompts, device=device)
    x = torch.randn(1, 3, size, size, device=device)
    cond = {}
    if stage == 'upsample':
        low = size // 4
        cond['low_res'] = torch.rand(1, 3, low, low, device=device) * 2 - 1
    t = int(scheduler.timesteps[len(scheduler.timesteps) // 2])
    text = net.encode_text(tokens, mask) if optimised else None

    def step():
        net.set_sdpa(optimised)
        xin = torch.cat([x, x]) if guided else x
        kw = {k: torch.cat([v, v]) if guided else v for k, v in cond.items()}
        if optimised:
            out = net(xin, t, text=text, **kw)
        else:
            out = net(xin, t, tokens=tokens, mask=mask, **kw)
        if guided:
            out = classifier_free_guidance(out, 3.0, 3)
        return scheduler.step(out.float(), t, x)['prev_sample']

    def encode():
        net.encode_text(tokens, mask)

    shape = (2 if guided else 1, 3, size, size)
    return step, encode, shape, tokens, mask, cond


def count_gflops(net, shape, tokens, mask, cond, device, dtype):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.randn(*shape, device=device)
    kw = {k: v.expand(shape[0], -1, -1, -1) for k, v in cond.items()}
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x, 500, text=net.encode_text(tokens.expand(shape[0], -1),
                                          mask.expand(shape[0], -1)), **kw)
    with FlopCounterMode(display=False) as text_counter, torch.no_grad():
        net.encode_text(tokens.expand(shape[0], -1), mask.expand(shape[0], -1))
    return (counter.get_total_flops() - text_counter.get_total_flops()) / 1e9


def run(args):
    import torch
    from projects.glide.models import (GlideAncestralScheduler,
                                       GlideDDIMScheduler)
    from projects.glide.models.glide import cast_network
    device = torch.device(args.device)
    size = 4096 if device.type == 'cuda' else 2048
    if args.dtype == 'auto':
        low = ('float16' if device.type == 'cuda' else
               'bfloat16' if cpu_has_bf16() else None)
        candidates = ['float32'] + ([low] if low else [])
    else:
        candidates = sorted({'float32', args.dtype})
    peaks = {d: matmul_peak(getattr(torch, d), device, size)
             for d in candidates}
    for d, g in peaks.items():
        print(f'matmul peak {d}: {g:.1f} GFLOP/s ({size}x{size})')
    # 'auto': the low precision only where this machine runs it faster.
    fast = (max(peaks, key=peaks.get)
            if args.dtype == 'auto' else args.dtype)
    print(f'device {device} ({torch.get_num_threads()} threads), torch '
          f'{torch.__version__}, optimised dtype {fast}')
    results = {}
    for stage in args.models:
        net = build(stage, device, args.config)
        if stage == 'base':
            scheduler = GlideAncestralScheduler(timestep_respacing='100')
            recipes = BASE_RECIPES
        else:
            scheduler = GlideDDIMScheduler(beta_schedule='linear',
                                           timestep_respacing='fast27')
            recipes = UP_RECIPES
        settings = [('baseline float32 eager', 'float32', False, False, False),
                    (f'optimised {fast}', fast, True, False, False)]
        if args.channels_last:
            settings.append((f'optimised {fast} channels_last', fast, True,
                             True, False))
        if args.compile:
            settings.append((f'optimised {fast} torch.compile', fast, True,
                             False, True))
        for name, dtype, optimised, channels_last, compiled in settings:
            torch_dtype = getattr(torch, dtype)
            cast_network(net, torch_dtype)
            net.to(memory_format=torch.channels_last
                   if channels_last else torch.contiguous_format)
            runner = net
            if compiled:
                runner = torch.compile(net)
            step, encode, shape, tokens, mask, cond = make_step(
                runner, stage, device, torch_dtype, optimised, scheduler)
            with PeakMemory(device) as mem:
                seconds = timed(step, device, args.repeats)
                text_s = timed(encode, device, 1)
            net.set_sdpa(True)
            gflops = count_gflops(net, shape, tokens, mask, cond, device,
                                  torch_dtype)
            achieved = gflops / seconds
            row = dict(seconds_per_step=seconds, gflops_per_step=gflops,
                       gflops_per_s=achieved,
                       matmul_peak_gflops_per_s=peaks.get(dtype),
                       ratio_to_peak=achieved / peaks[dtype] if dtype in peaks
                       else None, peak_memory_gib=mem.peak / 2**30,
                       text_encoding_s=text_s)
            label = 'guided step' if stage == 'base' else 'step'
            print(f'[{stage}] {name}: {seconds:.3f} s per {label}, '
                  f'{gflops:.1f} GFLOP, {achieved:.1f} GFLOP/s '
                  f'({row["ratio_to_peak"]:.0%} of the {dtype} matmul peak), '
                  f'peak memory {row["peak_memory_gib"]:.2f} GiB')
            for recipe, steps in recipes.items():
                # The baseline re-encodes the text inside every step.
                total = steps * seconds + (text_s if optimised else 0)
                row[f'sample_s {recipe}'] = total
                print(f'    time to one sample, {recipe}: {total:.1f} s '
                      '(measured step x steps)')
            results[(stage, name)] = row
        del net
    summary = []
    for stage in args.models:
        rows = [(n, r) for (s, n), r in results.items() if s == stage]
        base = rows[0][1]['seconds_per_step']
        best_name, best = min(rows[1:], key=lambda nr: nr[1]['seconds_per_step'])
        summary.append(f'{stage}: {best["seconds_per_step"]:.2f} s vs '
                       f'{base:.2f} s baseline = '
                       f'{best["seconds_per_step"] / base:.2f}x time '
                       f'({best_name}, {best["ratio_to_peak"]:.0%} of peak)')
    if 'base' in args.models and 'upsample' in args.models:
        ref = (results[('base', 'baseline float32 eager')]
               ['sample_s ancestral 100 (reference)'] +
               results[('upsample', 'baseline float32 eager')]
               ['sample_s DDIM fast27 (reference)'])
        fast_name = f'optimised {fast}'
        ours = (results[('base', fast_name)]['sample_s DPM-Solver++ 20'] +
                results[('upsample', fast_name)]
                ['sample_s DDIM fast27 (reference)'])
        summary.append(f'64->256 pipeline: {ours:.0f} s (DPM-Solver++ 20 + '
                       f'fast27, {fast}) vs {ref:.0f} s (reference recipe, '
                       f'float32 eager) = {ref / ours:.1f}x faster')
    print('SUMMARY: ' + '; '.join(summary))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({f'{s}/{n}': r for (s, n), r in results.items()}, f,
                      indent=1)
    if args.full_sample:
        full_sample(args, fast, device)
    return results


def full_sample(args, fast, device):
    """Time one whole 64x64 guided sample with DPM-Solver++ 20 steps."""
    import torch
    from mmengine import Config
    from mmagic.registry import MODELS
    cfg = Config.fromfile(args.config)
    cfg.model.pop('unet_up', None)
    cfg.model.pop('diffusion_scheduler_up', None)
    cfg.model.pop('upsample_temp', None)
    cfg.model.diffusion_scheduler = dict(type='GlideDPMSolverScheduler',
                                         timestep_respacing='20')
    cfg.model.dtype = fast
    cfg.model.data_preprocessor = dict(type='BaseDataPreprocessor')
    model = MODELS.build(cfg.model).eval().to(device)
    start = time.perf_counter()
    model.infer(prompt='an oil painting of a corgi', seed=0)
    sync(device)
    print(f'full guided base sample, DPM-Solver++ 20, {fast}: '
          f'{time.perf_counter() - start:.1f} s end to end')
    return torch


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cpu')
    p.add_argument('--config', default=CONFIG,
                   help='a 64-256 style config (default: the full-size one)')
    p.add_argument('--dtype', default='auto',
                   choices=['auto', 'float32', 'bfloat16', 'float16'])
    p.add_argument('--models', default='base,upsample',
                   type=lambda s: s.split(','))
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--channels-last', action='store_true',
                   help='also measure channels_last memory format')
    p.add_argument('--compile', action='store_true',
                   help='also measure torch.compile')
    p.add_argument('--full-sample', action='store_true',
                   help='also time one whole 64x64 sample end to end')
    p.add_argument('--json', help='write the figures to this file')
    args = p.parse_args(argv)
    for m in args.models:
        if m not in ('base', 'upsample'):
            p.error(f"--models takes base and/or upsample, got {m!r}")
    import projects.glide.models  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmagic')
    import torch
    with torch.no_grad():
        return run(args)


if __name__ == '__main__':
    main()
