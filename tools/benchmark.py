"""Benchmark GLIDE's full-size networks: our optimised path against a plain
float32 eager baseline, in one run, with random weights (no download).

    python tools/benchmark.py                       # CPU, base + upsampler
    python tools/benchmark.py --device cuda --dtype float16
    python tools/benchmark.py --models base --compile

For each model and setting it prints: seconds per step (the median of
``--repeats`` rounds, each of which times every setting once and measures
the matmul peaks again, so that the machine's drift weighs on all of them
alike; the base model's step is classifier-free guided: the network sees
the sample twice), model GFLOPs per step (counted by torch's
FlopCounterMode), achieved GFLOP/s and its ratio to the matmul peak
measured in the same rounds for the same dtype, the peak memory of a step
(weights + activations), the time to one sample for each recipe (the
measured step times the recipe's steps, plus the measured text encoding;
``--full-sample`` also times one whole sample end to end), and a per-op
profile of one step (torch's profiler; ``--no-profile`` skips it): the time
of each kind of work inside the network (convolutions, attention, linear
layers, GroupNorm, SiLU, dtype casts, layout copies, elementwise,
resampling, other), the network's time between those ops and the step's
time outside the network (guidance, the sampler's update), each with its
share of the step, and GFLOPs and GFLOP/s where FLOPs are counted.

The baseline computes as the reference implementation does: float32,
contiguous memory, the text transformer and every attention block's text
keys/values recomputed at each step, einsum attention. The optimised path:
the text encoded once per call, ``scaled_dot_product_attention`` on
(B, heads, tokens, channels) (the CPU's flash kernel), GroupNorm reading the
low-precision activations directly (statistics in float32), the chosen
dtype (default: the dtype whose matmul peak measured in the run is higher:
bfloat16 on a CPU with AVX512-BF16/AMX or float16 on a GPU, if faster than
float32), each in contiguous and in channels-last memory format
(``Glide(channels_last=...)``).
"""
import argparse
import copy
import ctypes
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/benchmark.py')

CONFIG = os.path.join(os.path.dirname(__file__), '..', 'projects', 'glide',
                      'configs', 'glide_ddim-classifier-free_laion-64-256.py')
BASE_RECIPES = {'ancestral 100 (reference)': 100, 'DDIM 50': 50,
                'DPM-Solver++ 25': 25, 'DPM-Solver++ 20': 20}
UP_RECIPES = {'DDIM fast27 (reference)': 27}
#: The profiler scope around the network's call in a step.
NETWORK = 'network'
BETWEEN = 'between ops in the network (Python, dispatch)'
OUTSIDE = 'outside the network (guidance, sampler)'
#: FlopCounterMode's ops -> kind of work.
FLOP_KINDS = {'convolution': 'convolutions', 'bmm': 'attention',
              '_scaled_dot_product_flash_attention_for_cpu': 'attention',
              '_scaled_dot_product_flash_attention': 'attention',
              '_scaled_dot_product_efficient_attention': 'attention',
              '_scaled_dot_product_cudnn_attention': 'attention',
              'addmm': 'linear layers', 'mm': 'linear layers'}
#: Top-level aten ops that change dtype.
CASTS = ('to', '_to_copy', 'type_as', 'type')
#: Top-level aten op names (substrings) -> kind of work, first match wins.
OP_KINDS = [
    ('convolutions', ('conv',)),
    # Attention's products are matmul/einsum/bmm calls; the linear layers
    # (nn.Linear, F.linear) are aten::linear.
    ('attention', ('scaled_dot_product', 'einsum', 'bmm', 'softmax',
                   'matmul')),
    ('linear layers', ('linear', 'addmm', 'mm')),
    ('GroupNorm', ('group_norm',)),
    ('SiLU', ('silu', 'sigmoid')),
    ('layout copies', ('contiguous', 'clone', 'copy_', 'reshape')),
    ('resampling', ('pool', 'upsample', 'interpolate')),
    ('elementwise (add, mul, cat, ...)', ('add', 'mul', 'cat', 'sub', 'div',
                                          'where', 'chunk', 'split')),
]


class PeakMemory:
    """Peak memory of a network while the block runs: its weights plus the
    most the block allocated above what was allocated at its start (CUDA's
    allocator, or the process's resident set sampled every 5 ms)."""

    def __init__(self, device, net):
        self.device, self.peak, self._top = device, 0, 0
        self._weights = sum(t.numel() * t.element_size()
                            for t in net.state_dict().values())

    def _rss(self):
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

    def _watch(self):
        while not self._stop.is_set():
            self._top = max(self._top, self._rss())
            time.sleep(0.005)

    def __enter__(self):
        import torch
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        else:
            # Freed heap memory back to the system first: the block's
            # allocations then show in the resident set.
            try:
                ctypes.CDLL('libc.so.6').malloc_trim(0)
            except (OSError, AttributeError):
                pass
            self._start = self._top = self._rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        import torch
        if self.device.type == 'cuda':
            self._top = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
        self.peak = self._weights + max(0, self._top - self._start)


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
    from projects.glide.models.sampling import classifier_free_guidance
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
        with torch.profiler.record_function(NETWORK):
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


def _sdpa_flops(query, key, value, *args, out_shape=None, **kwargs):
    from torch.utils.flop_counter import sdpa_flop_count
    return sdpa_flop_count(query, key, value)


def count_gflops(net, shape, tokens, mask, cond, device, with_text=False):
    """GFLOPs of one network call, by kind of work (:data:`FLOP_KINDS`),
    with torch's FlopCounterMode; the text encoded outside the call unless
    ``with_text`` (as the baseline's step does)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.randn(*shape, device=device)
    kw = {k: v.expand(shape[0], -1, -1, -1) for k, v in cond.items()}
    tokens, mask = tokens.expand(shape[0], -1), mask.expand(shape[0], -1)
    text = None if with_text else net.encode_text(tokens, mask)
    # torch does not count the CPU's flash attention kernel by itself.
    cpu_flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    with FlopCounterMode(display=False,
                         custom_mapping={cpu_flash: _sdpa_flops}) as counter:
        net(x, 500, tokens=tokens, mask=mask, text=text, **kw)
    kinds = {}
    for op, flops in counter.get_flop_counts()['Global'].items():
        kind = FLOP_KINDS.get(str(op).split('.')[1], 'other')
        kinds[kind] = kinds.get(kind, 0) + flops / 1e9
    return kinds


def op_kind(name: str) -> str:
    """The kind of work of a top-level aten op inside the network."""
    name = name.replace('aten::', '')
    if name in CASTS:
        return 'dtype casts'
    for kind, words in OP_KINDS:
        if any(w in name for w in words):
            return kind
    return 'other'


def op_profile(step, kinds_gflops):
    """Profile one call of ``step``: time per kind of work inside the
    network (top-level ops under the :data:`NETWORK` scope, children
    included), the network's time between those ops (Python, dispatch), and
    the step's time outside the network; shares of the call's wall time.

    Returns:
        list: (kind, seconds, share of the step, GFLOPs or None).
    """
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        step()
        wall = (time.perf_counter() - start) * 1e6  # us, as the profiler
    events = prof.events()
    inside = sum(e.cpu_time_total for e in events if e.name == NETWORK)
    times = {}
    for e in events:
        if e.cpu_parent is not None and e.cpu_parent.name == NETWORK:
            kind = op_kind(e.name)
            times[kind] = times.get(kind, 0) + e.cpu_time_total
    times[BETWEEN] = max(0.0, inside - sum(times.values()))
    times[OUTSIDE] = max(0.0, wall - inside)
    total = sum(times.values())
    rows = [(k, us / 1e6, us / total, kinds_gflops.get(k))
            for k, us in sorted(times.items(), key=lambda kv: -kv[1])]
    return rows


def print_profile(rows):
    print('    per-op profile of one step (torch.profiler; each op with its '
          'children; shares of the step):')
    for kind, seconds, share, gflops in rows:
        rate = (f', {gflops:.1f} GFLOP, {gflops / seconds:.0f} GFLOP/s'
                if gflops and seconds > 0 else '')
        print(f'      {kind:<46} {seconds * 1e3:8.1f} ms {share:6.1%}'
              f'{rate}')


@dataclass
class Setting:
    """One measured setting of a network: what it was made with, its own
    copy of the network, its step and text-encoding closures and the
    inputs for counting FLOPs (shape, tokens, mask, cond)."""
    name: str
    dtype: str
    optimised: bool
    compiled: bool
    net: Any
    step: Callable
    encode: Callable
    inputs: tuple


def choose_dtype(args, device, size):
    """The matmul peak of each candidate dtype and the optimised dtype:
    ``--dtype``, or with 'auto' the low precision where this machine runs
    it faster than float32."""
    import torch
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
    fast = (max(peaks, key=peaks.get)
            if args.dtype == 'auto' else args.dtype)
    print(f'device {device} ({torch.get_num_threads()} threads), torch '
          f'{torch.__version__}, optimised dtype {fast}')
    return peaks, fast


def stage_recipe(stage):
    """The scheduler a stage's step uses and its sampling recipes."""
    from projects.glide.models import (GlideAncestralScheduler,
                                       GlideDDIMScheduler)
    if stage == 'base':
        return (GlideAncestralScheduler(timestep_respacing='100'),
                BASE_RECIPES)
    return (GlideDDIMScheduler(beta_schedule='linear',
                               timestep_respacing='fast27'), UP_RECIPES)


def prepare_settings(args, stage, device, fast, scheduler):
    """The baseline and the optimised settings of a stage, each with its
    own copy of the network, warmed up (and compiled) once."""
    import torch
    from projects.glide.models.precision import cast_network
    net = build(stage, device, args.config)
    specs = [('baseline float32 eager', 'float32', False, False, False),
             (f'optimised {fast} contiguous', fast, True, False, False),
             (f'optimised {fast} channels_last', fast, True, True, False)]
    if args.compile:
        specs.append((f'optimised {fast} channels_last torch.compile', fast,
                      True, True, True))
    settings = []
    for name, dtype, optimised, channels_last, compiled in specs:
        torch_dtype = getattr(torch, dtype)
        # Each setting its own copy: all are timed round by round.
        snet = cast_network(copy.deepcopy(net), torch_dtype)
        snet.to(memory_format=torch.channels_last
                if channels_last else torch.contiguous_format)
        runner = snet
        if compiled:
            if device.type == 'cpu':
                # Inference: weights become constants (prepacked for oneDNN).
                import torch._inductor.config as inductor_config
                inductor_config.freezing = True
            runner = torch.compile(snet)
        step, encode, *inputs = make_step(runner, stage, device, torch_dtype,
                                          optimised, scheduler)
        start = time.perf_counter()
        step()  # warm-up (and compilation)
        sync(device)
        if compiled:
            print(f'[{stage}] {name}: compiled in '
                  f'{time.perf_counter() - start:.0f} s (first step)')
        settings.append(Setting(name, dtype, optimised, compiled, snet, step,
                                encode, tuple(inputs)))
    return settings


def time_rounds(settings, peaks, device, size, repeats):
    """Round-robin timing: each round times every setting once and the
    matmul peaks, so that the machine's drift (+-10 % between minutes on a
    shared VM) weighs on all alike.

    Returns:
        tuple: setting name -> seconds of each round, and dtype -> median
        matmul peak (GFLOP/s).
    """
    import torch
    times = {s.name: [] for s in settings}
    peak_rounds = {d: [] for d in peaks}
    for _ in range(repeats):
        for s in settings:
            start = time.perf_counter()
            s.step()
            sync(device)
            times[s.name].append(time.perf_counter() - start)
        for d in peaks:
            peak_rounds[d].append(matmul_peak(getattr(torch, d), device,
                                              size))
    return times, {d: statistics.median(g) for d, g in peak_rounds.items()}


def measure(s, stage, rounds, peak, device):
    """A setting's figures: step time (median of ``rounds``), text
    encoding, peak memory, GFLOPs and the share of the matmul peak."""
    seconds = statistics.median(rounds)
    text_s = timed(s.encode, device, 1)
    # Memory on a call of its own: the watcher thread would take time from
    # the timed ones.
    with PeakMemory(device, s.net) as mem:
        s.step()
        sync(device)
    s.net.set_sdpa(s.optimised)
    kinds = count_gflops(s.net, *s.inputs, device)
    gflops = sum(kinds.values())
    if not s.optimised:  # the profile's step encodes the text too
        kinds = count_gflops(s.net, *s.inputs, device, with_text=True)
    s.net.set_sdpa(True)
    achieved = gflops / seconds
    row = dict(seconds_per_step=seconds, seconds_per_round=rounds,
               gflops_per_step=gflops, gflops_per_s=achieved,
               matmul_peak_gflops_per_s=peak,
               ratio_to_peak=achieved / peak if peak else None,
               peak_memory_gib=mem.peak / 2**30, text_encoding_s=text_s)
    label = 'guided step' if stage == 'base' else 'step'
    print(f'[{stage}] {s.name}: {seconds:.3f} s per {label} (rounds: ' +
          ', '.join(f'{t:.3f}' for t in rounds) + '), '
          f'{gflops:.1f} GFLOP, {achieved:.1f} GFLOP/s '
          f'({row["ratio_to_peak"]:.0%} of the {s.dtype} matmul peak), '
          f'peak memory {row["peak_memory_gib"]:.2f} GiB (weights + '
          'activations)')
    return row, kinds


def add_recipes(row, recipes, optimised):
    """The time to one sample of each recipe: the measured step times the
    recipe's steps (the baseline re-encodes the text inside every step)."""
    for recipe, steps in recipes.items():
        total = steps * row['seconds_per_step'] + (
            row['text_encoding_s'] if optimised else 0)
        row[f'sample_s {recipe}'] = total
        print(f'    time to one sample, {recipe}: {total:.1f} s '
              '(measured step x steps)')


def summarize(results, models, fast):
    """The SUMMARY line: each stage's best setting against its baseline,
    and the 64->256 pipeline's time to one sample."""
    summary, best_names = [], {}
    for stage in models:
        rows = [(n, r) for (s, n), r in results.items() if s == stage]
        base = rows[0][1]['seconds_per_step']
        best_name, best = min(rows[1:],
                              key=lambda nr: nr[1]['seconds_per_step'])
        best_names[stage] = best_name
        summary.append(f'{stage}: {best["seconds_per_step"]:.2f} s vs '
                       f'{base:.2f} s baseline = '
                       f'{best["seconds_per_step"] / base:.2f}x time '
                       f'({best_name}, {best["ratio_to_peak"]:.0%} of the '
                       f'{fast} matmul peak)')
    if 'base' in models and 'upsample' in models:
        ref = (results[('base', 'baseline float32 eager')]
               ['sample_s ancestral 100 (reference)'] +
               results[('upsample', 'baseline float32 eager')]
               ['sample_s DDIM fast27 (reference)'])
        ours = (results[('base', best_names['base'])]
                ['sample_s DPM-Solver++ 20'] +
                results[('upsample', best_names['upsample'])]
                ['sample_s DDIM fast27 (reference)'])
        summary.append(f'64->256 pipeline: {ours:.0f} s (DPM-Solver++ 20 + '
                       f'fast27, {fast}) vs {ref:.0f} s (reference recipe, '
                       f'float32 eager) = {ref / ours:.1f}x faster')
    return 'SUMMARY: ' + '; '.join(summary)


def run(args):
    """Measure every stage of ``args.models``; returns (stage, setting
    name) -> figures."""
    import torch
    device = torch.device(args.device)
    size = 4096 if device.type == 'cuda' else 2048
    peaks, fast = choose_dtype(args, device, size)
    results = {}
    for stage in args.models:
        scheduler, recipes = stage_recipe(stage)
        settings = prepare_settings(args, stage, device, fast, scheduler)
        times, stage_peaks = time_rounds(settings, peaks, device, size,
                                         args.repeats)
        print(f'[{stage}] ' + ', '.join(
            f'matmul peak {d} {g:.1f} GFLOP/s' for d, g in stage_peaks.items())
            + f' (median of {args.repeats} rounds, between the steps)')
        for s in settings:
            row, kinds = measure(s, stage, times[s.name],
                                 stage_peaks.get(s.dtype), device)
            add_recipes(row, recipes, s.optimised)
            if args.profile and not s.compiled:
                row['profile'] = op_profile(s.step, kinds)
                print_profile(row['profile'])
            results[(stage, s.name)] = row
        del settings
    print(summarize(results, args.models, fast))
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

    from projects.glide.api import build_model
    cfg = Config.fromfile(args.config)
    cfg.model.pop('unet_up', None)
    cfg.model.pop('diffusion_scheduler_up', None)
    cfg.model.pop('upsample_temp', None)
    cfg.model.diffusion_scheduler = dict(type='GlideDPMSolverScheduler',
                                         timestep_respacing='20')
    cfg.model.dtype = fast
    cfg.model.data_preprocessor = dict(type='BaseDataPreprocessor')
    model = build_model(cfg, device=device)
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
    p.add_argument('--repeats', type=int, default=5,
                   help='timed rounds (each times every setting once)')
    p.add_argument('--compile', action='store_true',
                   help='also measure torch.compile (channels-last; on CPU '
                   'with inductor freezing), printing its compile time')
    p.add_argument('--no-profile', dest='profile', action='store_false',
                   help='skip the per-op profile of each setting')
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
