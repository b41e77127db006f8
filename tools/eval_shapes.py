"""Evaluate a GLIDE trained on the procedural shapes dataset, with the pixel
judge (no downloaded weights).

    python tools/eval_shapes.py --checkpoint CKPT               # guidance table
    python tools/eval_shapes.py --checkpoint CKPT --samplers    # samplers/steps
    python tools/eval_shapes.py --checkpoint CKPT --precision   # bf16 vs fp32

Prompts are held-out captions (scenes of another seed than the training
set's); each gets ``--per-prompt`` samples. Caption accuracy is the judge's
per-attribute agreement with the prompt (and ``all``: every attribute
right); diversity is the mean, over prompts, of the mean pairwise RMS
distance between that prompt's samples (pixels in [0, 1]).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/eval_shapes.py')

CONFIG = 'projects/glide/configs/glide_shapes-32.py'
KEYS = ('colour', 'shape', 'size', 'position', 'background', 'all')
SAMPLERS = [
    ('ancestral', 'GlideAncestralScheduler', 100),
    ('DDIM', 'GlideDDIMScheduler', 50),
    ('DPM-Solver++', 'GlideDPMSolverScheduler', 25),
    ('DPM-Solver++', 'GlideDPMSolverScheduler', 20),
    ('DPM-Solver++', 'GlideDPMSolverScheduler', 15),
    ('DPM-Solver++', 'GlideDPMSolverScheduler', 10),
]


def load(config, checkpoint, sampler=None, device='cpu'):
    from mmengine import Config
    from mmagic.apis import init_model
    cfg = Config.fromfile(config)
    if sampler:  # the config's other settings (prediction_type) kept
        cfg.model.diffusion_scheduler.type = sampler
    return init_model(cfg, checkpoint, device=device)


def prompts_of(n, seed):
    from projects.glide.shapes import make_scenes
    return [s['caption'] for s in make_scenes(n, seed=seed)]


def sample(model, prompts, per_prompt, steps, guidance, seed, batch=128,
           **kw):
    """(len(prompts) * per_prompt, 3, H, W) samples, prompt-major."""
    import torch
    rows = [p for p in prompts for _ in range(per_prompt)]
    out = []
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, len(rows), batch):
        out.append(model.infer(prompt=rows[i:i + batch],
                               guidance_scale=guidance,
                               num_inference_steps=steps, generator=gen,
                               **kw)['samples'])
    return torch.cat(out), rows


def score(samples, rows, per_prompt):
    from projects.glide.shapes import caption_accuracy, diversity
    acc = caption_accuracy(samples, rows)
    divs = [diversity(samples[i:i + per_prompt])
            for i in range(0, len(rows), per_prompt)]
    acc['diversity'] = sum(divs) / len(divs) if per_prompt > 1 else None
    return acc


def _diversity(acc):
    """The diversity cell: '-' with one sample per prompt."""
    return '-' if acc['diversity'] is None else f'{acc["diversity"]:.3f}'


def table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows]
    return '\n'.join(lines)


def guidance_table(args, model):
    rows = []
    prompts = prompts_of(args.prompts, args.prompt_seed)
    for g in args.scales:
        start = time.time()
        samples, captions = sample(model, prompts, args.per_prompt,
                                   args.steps, g, args.seed, args.batch)
        per_sample = (time.time() - start) / len(captions)
        acc = score(samples, captions, args.per_prompt)
        rows.append([g] + [f'{acc[k]:.2f}' for k in KEYS] +
                    [_diversity(acc), f'{per_sample:.3f}'])
        print(rows[-1], flush=True)
    sampler = type(model.diffusion_scheduler).__name__
    title = (f'Classifier-free guidance on the shapes model: {sampler}, '
             f'{args.steps} steps, {len(prompts)} held-out prompts x '
             f'{args.per_prompt} samples')
    return title + '\n\n' + table(
        ['guidance'] + [f'acc {k}' for k in KEYS] + ['diversity', 's/sample'],
        rows)


def sampler_table(args):
    rows = []
    prompts = prompts_of(args.prompts, args.prompt_seed)
    for name, kind, steps in SAMPLERS:
        model = load(args.config, args.checkpoint, kind)
        start = time.time()
        samples, captions = sample(model, prompts, args.per_prompt, steps,
                                   args.guidance, args.seed, args.batch)
        per_sample = (time.time() - start) / len(captions)
        acc = score(samples, captions, args.per_prompt)
        rows.append([f'{name} {steps}'] + [f'{acc[k]:.2f}' for k in KEYS] +
                    [_diversity(acc), f'{per_sample:.3f}'])
        print(rows[-1], flush=True)
    title = (f'Samplers on the shapes model (guidance {args.guidance}, '
             f'{len(prompts)} held-out prompts x {args.per_prompt} samples; '
             f'seconds per sample in batches of {args.batch})')
    return title + '\n\n' + table(
        ['sampler steps'] + [f'acc {k}' for k in KEYS] +
        ['diversity', 's/sample'], rows)


def precision_table(args):
    import torch
    prompts = prompts_of(args.prompts, args.prompt_seed)
    rows, outs = [], {}
    for dtype in ('float32', 'bfloat16'):
        model = load(args.config, args.checkpoint,
                     'GlideDDIMScheduler').set_precision(dtype)
        start = time.time()
        outs[dtype], captions = sample(model, prompts, args.per_prompt,
                                       args.steps, args.guidance, args.seed)
        seconds = time.time() - start
        acc = score(outs[dtype], captions, args.per_prompt)
        rows.append([dtype] + [f'{acc[k]:.2f}' for k in KEYS] +
                    [f'{seconds:.0f}'])
    mse = ((outs['float32'] - outs['bfloat16'])**2).mean()
    psnr = 10 * torch.log10(4 / mse).item()  # peak-to-peak 2 in [-1, 1]
    title = (f'bfloat16 vs float32, same noise (DDIM {args.steps}, '
             f'guidance {args.guidance}): PSNR {psnr:.1f} dB')
    return title + '\n\n' + table(['dtype'] + [f'acc {k}' for k in KEYS] +
                                  ['s'], rows)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--checkpoint', required=True,
                   help='a checkpoint trained with glide_shapes-32.py')
    p.add_argument('--prompts', type=int, default=64)
    p.add_argument('--per-prompt', type=int, default=4)
    p.add_argument('--prompt-seed', type=int, default=12345,
                   help='scene seed of the held-out prompts (training: 0)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--steps', type=int, default=25)
    p.add_argument('--scales', type=float, nargs='+',
                   default=[1, 2, 3, 5, 8])
    p.add_argument('--batch', type=int, default=128,
                   help='samples per infer() call (default: 128)')
    p.add_argument('--guidance', type=float, default=3.0)
    p.add_argument('--samplers', action='store_true')
    p.add_argument('--precision', action='store_true')
    p.add_argument('--out', help='append the tables to this file')
    args = p.parse_args(argv)
    import projects.glide.models  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmagic')
    if args.samplers:
        text = sampler_table(args)
    elif args.precision:
        text = precision_table(args)
    else:
        text = guidance_table(args, load(args.config, args.checkpoint))
    print(text)
    if args.out:
        with open(args.out, 'a') as f:
            f.write(text + '\n\n')
    return text


if __name__ == '__main__':
    main()
