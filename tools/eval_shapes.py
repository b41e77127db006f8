"""Evaluate a GLIDE trained on the procedural shapes dataset, with the pixel
judge (no downloaded weights).

    python tools/eval_shapes.py --checkpoint CKPT               # guidance table
    python tools/eval_shapes.py --checkpoint CKPT --samplers    # samplers/steps
    python tools/eval_shapes.py --checkpoint CKPT --precision   # bf16 vs fp32
    python tools/eval_shapes.py --clip \
        --config projects/glide/configs/glide_noised-clip_1xb64-2k_shapes-32x32.py \
        --checkpoint CKPT                      # classifier-free vs CLIP
    python tools/eval_shapes.py --inpaint \
        --config projects/glide/configs/glide_inpaint_2xb16-1500_shapes-32x32.py \
        --checkpoint INPAINT_CKPT --baseline BASE_CKPT            # inpainting
    python tools/eval_shapes.py --checkpoint CKPT --cells \
        --per-prompt 1               # accuracy per shape x size cell

Prompts are held-out captions (scenes of another seed than the training
set's); each gets ``--per-prompt`` samples. Caption accuracy is the judge's
per-attribute agreement with the prompt (and ``all``: every attribute
right); diversity is the mean, over prompts, of the mean pairwise RMS
distance between that prompt's samples (pixels in [0, 1]).

``--inpaint`` erases the quadrant that holds the shape of each held-out
scene and asks for another shape of another colour (the rest of the caption
kept); the judge reads the whole result against the new caption, and the
known region's largest change is reported in 8-bit levels. ``--baseline``
adds the row of a base checkpoint loaded into the inpainting network with
zero weights for the extra channels (train_cfg.init_from_base): the base
model with the x_0 paste-back alone, where fine-tuning starts.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/eval_shapes.py')

CONFIG = 'projects/glide/configs/glide_base-stage1_2xb16-4k_shapes-32x32.py'
KEYS = ('colour', 'shape', 'size', 'position', 'background', 'all')
#: The score columns of the guidance, CLIP and sampler tables.
SCORES = [f'acc {k}' for k in KEYS] + ['diversity', 's/sample']
#: The sampler table's rows: label, sampler (projects.glide.api.SAMPLERS),
#: steps.
SAMPLER_ROWS = [
    ('ancestral', 'ancestral', 100),
    ('DDIM', 'ddim', 50),
    ('DPM-Solver++', 'dpm++2m', 25),
    ('DPM-Solver++', 'dpm++2m', 20),
    ('DPM-Solver++', 'dpm++2m', 15),
    ('DPM-Solver++', 'dpm++2m', 10),
]


def load(config, checkpoint, sampler=None, device='cpu'):
    """The model of ``config`` (a file or a Config) with ``checkpoint``;
    ``sampler`` (a name of ``projects.glide.api.SAMPLERS``) replaces the
    config's sampler type, its other settings (prediction_type) kept."""
    from projects.glide.api import build_model
    return build_model(config, checkpoint, device, sampler=sampler)


def prompts_of(n, seed):
    from projects.glide.shapes import make_scenes
    return [s['caption'] for s in make_scenes(n, seed=seed)]


def sample(model, prompts, per_prompt, steps, guidance, seed, batch=128,
           init_image=None, mask=None, classifier_scale=0.0):
    """(len(prompts) * per_prompt, 3, H, W) samples, prompt-major
    (``init_image`` and ``mask``: one per sample, for inpainting;
    ``classifier_scale``: CLIP guidance)."""
    import torch
    rows = [p for p in prompts for _ in range(per_prompt)]
    out = []
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, len(rows), batch):
        inpaint = {} if mask is None else dict(
            init_image=init_image[i:i + batch], mask=mask[i:i + batch])
        out.append(model.infer(prompt=rows[i:i + batch],
                               guidance_scale=guidance,
                               num_inference_steps=steps, generator=gen,
                               classifier_scale=classifier_scale,
                               **inpaint)['samples'])
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
    """A markdown table whose columns are aligned in plain text too."""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        return '| ' + ' | '.join(c.ljust(w) for c, w in zip(row, widths)) + \
            ' |'

    rule = '|' + '|'.join('-' * (w + 2) for w in widths) + '|'
    return '\n'.join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def progress(header, row):
    """Print a finished row as ``name: value`` pairs."""
    print(', '.join(f'{h}: {c}' for h, c in zip(header, row)), flush=True)


def _guided_rows(args, model, settings, header):
    """One row per (label, guidance_scale, classifier_scale) setting."""
    rows = []
    prompts = prompts_of(args.prompts, args.prompt_seed)
    for label, g, c in settings:
        start = time.time()
        samples, captions = sample(model, prompts, args.per_prompt,
                                   args.steps, g, args.seed, args.batch,
                                   classifier_scale=c)
        per_sample = (time.time() - start) / len(captions)
        acc = score(samples, captions, args.per_prompt)
        rows.append(label + [f'{acc[k]:.2f}' for k in KEYS] +
                    [_diversity(acc), f'{per_sample:.3f}'])
        progress(header, rows[-1])
    return rows


def guidance_table(args, model):
    header = ['guidance'] + SCORES
    rows = _guided_rows(args, model, [([g], g, 0.0) for g in args.scales],
                        header)
    sampler = type(model.diffusion_scheduler).__name__
    title = (f'Classifier-free guidance on the shapes model: {sampler}, '
             f'{args.steps} steps, {args.prompts} held-out prompts x '
             f'{args.per_prompt} samples')
    return title + '\n\n' + table(header, rows)


def clip_table(args, model):
    """Classifier-free guidance (``--scales``), CLIP guidance of the
    text-conditional model (``--clip-scales``, guidance_scale 1) and of the
    unconditional one (guidance_scale 0: the empty caption's prediction,
    the prompt reaches the sample through CLIP alone), and both
    (``--guidance`` with each CLIP scale); same prompts and seeds."""
    if model.classifier is None:
        raise SystemExit('--clip needs a config with a CLIP guide '
                         '(glide_noised-clip_1xb64-2k_shapes-32x32.py)')
    settings = [(['classifier-free', g, 0], g, 0.0) for g in args.scales]
    settings += [(['CLIP', 1, c], 1.0, c) for c in args.clip_scales]
    settings += [(['CLIP, unconditional model', 0, c], 0.0, c)
                 for c in args.clip_scales]
    settings += [(['both', args.guidance, c], args.guidance, c)
                 for c in args.clip_scales]
    header = ['guidance', 'guidance_scale', 'classifier_scale'] + SCORES
    rows = _guided_rows(args, model, settings, header)
    sampler = type(model.diffusion_scheduler).__name__
    title = (f'Classifier-free guidance vs CLIP guidance on the shapes model: '
             f'{sampler}, {args.steps} steps, {args.prompts} held-out '
             f'prompts x {args.per_prompt} samples')
    return title + '\n\n' + table(header, rows)


def sampler_table(args):
    header = ['sampler steps'] + SCORES
    rows = []
    prompts = prompts_of(args.prompts, args.prompt_seed)
    for name, sampler, steps in SAMPLER_ROWS:
        model = load(args.config, args.checkpoint, sampler)
        start = time.time()
        samples, captions = sample(model, prompts, args.per_prompt, steps,
                                   args.guidance, args.seed, args.batch)
        per_sample = (time.time() - start) / len(captions)
        acc = score(samples, captions, args.per_prompt)
        rows.append([f'{name} {steps}'] + [f'{acc[k]:.2f}' for k in KEYS] +
                    [_diversity(acc), f'{per_sample:.3f}'])
        progress(header, rows[-1])
    title = (f'Samplers on the shapes model (guidance {args.guidance}, '
             f'{len(prompts)} held-out prompts x {args.per_prompt} samples; '
             f'seconds per sample in batches of {args.batch})')
    return title + '\n\n' + table(header, rows)


def precision_table(args):
    import torch
    prompts = prompts_of(args.prompts, args.prompt_seed)
    rows, outs = [], {}
    for dtype in ('float32', 'bfloat16'):
        model = load(args.config, args.checkpoint,
                     'ddim').set_precision(dtype)
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


def inpaint_task(n, seed, size):
    """Held-out scenes with their shape's quadrant erased.

    Returns:
        (images (n, 3, size, size) in [-1, 1], masks (n, 1, size, size),
        1 = keep, new captions): each caption asks for the next shape
        (circle -> square -> triangle -> circle) in the next colour.
    """
    import numpy as np
    import torch
    from projects.glide.shapes import make_scenes
    from projects.glide.shapes.scenes import (COLOURS, SHAPES, make_caption,
                                              render)
    colours = list(COLOURS)
    images, masks, captions = [], [], []
    for scene in make_scenes(n, seed=seed):
        a = dict(scene['attributes'])
        images.append(render(a, size))
        mask = np.ones((size, size), np.float32)
        half = size // 2
        top = half if a['position'].startswith('bottom') else 0
        left = half if a['position'].endswith('right') else 0
        mask[top:top + half, left:left + half] = 0
        masks.append(mask)
        a['shape'] = SHAPES[(SHAPES.index(a['shape']) + 1) % len(SHAPES)]
        a['colour'] = colours[(colours.index(a['colour']) + 1) % len(colours)]
        captions.append(make_caption(a))
    images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return (images.float() / 127.5 - 1, torch.from_numpy(np.stack(masks))[:,
                                                                        None],
            captions)


def save_inpaint_grid(path, images, masks, samples, per_prompt, rows=4,
                      zoom=4):
    """A PNG of the first ``rows`` tasks, one per row: the scene, the
    network's input (the erased region gray) and the ``per_prompt``
    samples, enlarged ``zoom`` times."""
    import torch
    from PIL import Image
    from torchvision.utils import make_grid
    cells = []
    for i in range(0, min(rows * per_prompt, len(images)), per_prompt):
        cells += [images[i], images[i] * masks[i]]
        cells += list(samples[i:i + per_prompt])
    grid = make_grid((torch.stack(cells) + 1) / 2, nrow=per_prompt + 2,
                     padding=2, pad_value=1.0)
    array = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    image = Image.fromarray(array)
    image = image.resize((image.width * zoom, image.height * zoom),
                         Image.NEAREST)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image.save(path)
    print(f'wrote {path}')


def inpaint_table(args):
    from mmengine import Config
    header = (['model'] + [f'acc {k}' for k in KEYS] +
              ['known region max change (8-bit levels)', 's/sample'])
    rows = []
    checkpoints = [('fine-tuned', args.checkpoint)]
    if args.baseline:
        checkpoints.insert(0, ('base + paste-back', args.baseline))
    image_size = Config.fromfile(args.config).model.unet.image_size
    images, masks, captions = inpaint_task(args.prompts, args.prompt_seed,
                                           image_size)
    rep = args.per_prompt
    images = images.repeat_interleave(rep, 0)
    masks = masks.repeat_interleave(rep, 0)
    for name, checkpoint in checkpoints:
        cfg = Config.fromfile(args.config)
        if name == 'base + paste-back':
            cfg.model.train_cfg.init_from_base = True
        model = load(cfg, checkpoint)
        start = time.time()
        samples, rows_ = sample(model, captions, rep, args.steps,
                                args.guidance, args.seed, args.batch,
                                init_image=images, mask=masks)
        per_sample = (time.time() - start) / len(rows_)
        acc = score(samples, rows_, rep)
        known = ((samples - images).abs() * masks).amax().item() * 127.5
        rows.append([name] + [f'{acc[k]:.2f}' for k in KEYS] +
                    [f'{known:.1f}', f'{per_sample:.3f}'])
        progress(header, rows[-1])
    if args.grid:
        save_inpaint_grid(args.grid, images, masks, samples, rep)
    sampler = type(model.diffusion_scheduler).__name__
    title = (f'Inpainting on the shapes model: the shape\'s quadrant erased, '
             f'another shape in another colour asked for ({sampler}, '
             f'{args.steps} steps, guidance {args.guidance}, '
             f'{args.prompts} held-out scenes x {args.per_prompt} samples, '
             f'{image_size} px)')
    return title + '\n\n' + table(header, rows)


def cell_prompts(shape, size):
    """Every colour x position x background (48 captions) of one shape and
    size, each in the next caption template."""
    import itertools
    from projects.glide.shapes.scenes import (BACKGROUNDS, COLOURS, POSITIONS,
                                              TEMPLATES, make_caption)
    combos = itertools.product(COLOURS, POSITIONS, BACKGROUNDS)
    return [make_caption(dict(shape=shape, size=size, colour=c, position=p,
                              background=b), i % len(TEMPLATES))
            for i, (c, p, b) in enumerate(combos)]


def cells_table(args, model):
    """The judge's accuracy per shape x size cell: each cell's 48 captions
    (:func:`cell_prompts`) x ``--per-prompt`` samples; ``read as`` counts
    the shapes the judge read where it was not the one asked for."""
    from collections import Counter
    from projects.glide.shapes import judge_image
    from projects.glide.shapes.scenes import SHAPES, SIZES
    header = ['shape', 'size', 'samples', 'right (all five)'] + \
        [f'acc {k}' for k in KEYS] + ['shape read as (wrong ones)']
    rows = []
    for shape in SHAPES:
        for size in SIZES:
            samples, captions = sample(model, cell_prompts(shape, size),
                                       args.per_prompt, args.steps,
                                       args.guidance, args.seed, args.batch)
            acc = score(samples, captions, args.per_prompt)
            wrong = Counter(judge_image(s)['shape'] for s in samples)
            wrong.pop(shape, None)
            rows.append([shape, size, len(captions),
                         f'{round(acc["all"] * len(captions))}/'
                         f'{len(captions)}'] +
                        [f'{acc[k]:.2f}' for k in KEYS] +
                        [', '.join(f'{k} {n}' for k, n in wrong.items())
                         or '-'])
            progress(header, rows[-1])
    sampler = type(model.diffusion_scheduler).__name__
    title = (f'The judge\'s accuracy per shape and size: {sampler}, '
             f'{args.steps} steps, guidance {args.guidance}, every colour x '
             f'position x background (48 captions) x {args.per_prompt} '
             f'samples per cell, seed {args.seed}')
    return title + '\n\n' + table(header, rows)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--checkpoint', required=True,
                   help='a checkpoint trained with glide_base-stage1_2xb16-4k_shapes-32x32.py')
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
    p.add_argument('--inpaint', action='store_true',
                   help='the inpainting table (--config an inpainting '
                   'config)')
    p.add_argument('--baseline',
                   help='with --inpaint: a base checkpoint for the '
                   'paste-back-only row')
    p.add_argument('--grid', help='with --inpaint: write a PNG of the '
                   'first scenes, their inputs and the fine-tuned samples')
    p.add_argument('--clip', action='store_true',
                   help='classifier-free vs CLIP guidance (--config a '
                   'config with a CLIP guide, glide_noised-clip_1xb64-2k_shapes-32x32.py)')
    p.add_argument('--clip-scales', type=float, nargs='+',
                   default=[10, 30, 100],
                   help='with --clip: the CLIP guidance scales')
    p.add_argument('--cells', action='store_true',
                   help='accuracy per shape x size cell, over every colour, '
                   'position and background')
    p.add_argument('--out', help='append the tables to this file')
    args = p.parse_args(argv)
    import projects.glide.models  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmagic')
    if args.samplers:
        text = sampler_table(args)
    elif args.precision:
        text = precision_table(args)
    elif args.inpaint:
        text = inpaint_table(args)
    elif args.clip:
        text = clip_table(args, load(args.config, args.checkpoint))
    elif args.cells:
        text = cells_table(args, load(args.config, args.checkpoint))
    else:
        text = guidance_table(args, load(args.config, args.checkpoint))
    print(text)
    if args.out:
        with open(args.out, 'a') as f:
            f.write(text + '\n\n')
    return text


if __name__ == '__main__':
    main()
