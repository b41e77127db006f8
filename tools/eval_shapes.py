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
    python tools/eval_shapes.py --tradeoff --sampler dpm++2m \
        --config projects/glide/configs/glide_noised-clip_1xb64-2k_shapes-32x32.py \
        --checkpoint CKPT --scales 1 2 3 --clip-scales 10 100 --both 3:100 \
        --json run.json --grid grid.png        # guidance trade-off sweep
    python tools/eval_shapes.py --plot run.json [run2.json] \
        --figures docs/figures                 # its curves
    python tools/eval_shapes.py --checkpoint CKPT --grain  # background noise

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

``--tradeoff`` measures the samples of every guidance point in the feature
space of the shapes evaluator (``projects/glide/shapes/evaluator.py``, a
small CNN trained apart from the guide; docs/tradeoff.md): the Fréchet
distance and precision/recall (k = 3) against real renders of the same
captions (their texture and jitter drawn as in the data), the evaluator's
caption match (mean probability of the caption's attributes), the texture
mix it reads, the jitter (the judge's centroid) and the background's pixel
std. The first row scores a second set of real renders the same way.
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


#: The columns of the trade-off table: (JSON key, header, format).
TRADEOFF_COLUMNS = [
    ('judge_all', 'judge all five', '{:.2f}'),
    ('eval_all', 'evaluator all five', '{:.2f}'),
    ('match', 'caption match', '{:.3f}'),
    ('fd', 'FD', '{:.1f}'),
    ('precision', 'precision', '{:.2f}'),
    ('recall', 'recall', '{:.2f}'),
    ('texture_mix', 'plain/noise/stripes', '{}'),
    ('texture_overlap', 'texture overlap', '{:.2f}'),
    ('texture_entropy', 'texture entropy (bits)', '{:.2f}'),
    ('jitter_rms', 'jitter rms (px)', '{:.2f}'),
    ('grain', 'background std (levels)', '{:.1f}'),
    ('diversity', 'pixel diversity', '{:.3f}'),
    ('s_per_sample', 's/sample', '{:.2f}'),
]

TRADEOFF_HEADER = ['guide', 'guidance_scale', 'classifier_scale'] + \
    [h for _, h, _ in TRADEOFF_COLUMNS]


def tradeoff_settings(args):
    """(guide, guidance_scale, classifier_scale) of every sweep point:
    classifier-free over ``--scales``, CLIP over ``--clip-scales`` on the
    text-conditional model (guidance_scale 1), then the ``--both`` pairs."""
    settings = [('classifier-free', g, 0.0) for g in args.scales]
    if args.clip_scales:
        settings += [('CLIP', 1.0, c) for c in args.clip_scales]
    settings += [('both', float(g), float(c)) for g, c in
                 (pair.split(':') for pair in args.both)]
    return settings


def tradeoff_reference(net, prompts, per_prompt, seed):
    """Real renders of the prompts (``per_prompt`` each, texture and jitter
    drawn as in the data) and the evaluator's prediction on them."""
    from projects.glide.shapes import evaluator as ev
    images, _ = ev.render_for_captions(prompts, per_prompt, seed)
    return images, ev.predict(net, images)


def _per_prompt_diversity(samples, per_prompt):
    from projects.glide.shapes import diversity
    divs = [diversity(samples[i:i + per_prompt])
            for i in range(0, len(samples), per_prompt)]
    return sum(divs) / len(divs)


def tradeoff_rows(args, model, net, on_row=None):
    """The real row and one row per sweep point, plus the first prompt's
    samples of every point (for the grid); ``on_row(rows, firsts, prompt)``
    is called after every point (to save partial results)."""
    from projects.glide.shapes import evaluator as ev
    prompts = prompts_of(args.prompts, args.prompt_seed)
    ref_images, reference = tradeoff_reference(net, prompts, args.per_prompt,
                                               args.reference_seed)
    real, _ = ev.render_for_captions(prompts, args.per_prompt,
                                     args.reference_seed + 1)
    captions = [p for p in prompts for _ in range(args.per_prompt)]
    rows = [dict(guide='real', guidance_scale=None, classifier_scale=None,
                 **ev.score_samples(net, real, captions, reference),
                 diversity=_per_prompt_diversity(real, args.per_prompt),
                 s_per_sample=0.0, cpu_seconds=0.0)]
    firsts = [('real', real[:args.per_prompt])]
    for guide, g, c in tradeoff_settings(args):
        wall, cpu = time.time(), time.process_time()
        samples, _ = sample(model, prompts, args.per_prompt, args.steps, g,
                            args.seed, args.batch, classifier_scale=c)
        wall, cpu = time.time() - wall, time.process_time() - cpu
        row = dict(guide=guide, guidance_scale=g, classifier_scale=c,
                   **ev.score_samples(net, samples, captions, reference),
                   diversity=_per_prompt_diversity(samples, args.per_prompt),
                   s_per_sample=wall / len(captions), cpu_seconds=cpu)
        rows.append(row)
        firsts.append((f'{guide} {g:g}/{c:g}', samples[:args.per_prompt]))
        progress(TRADEOFF_HEADER, _tradeoff_line(row))
        if on_row is not None:
            on_row(rows, firsts, prompts[0])
    return rows, firsts, prompts[0]


def _tradeoff_line(row):
    cells = [row['guide'], _scale(row['guidance_scale']),
             _scale(row['classifier_scale'])]
    return cells + [fmt.format(row[key]) for key, _, fmt in TRADEOFF_COLUMNS]


def _scale(value):
    return '-' if value is None else f'{value:g}'


def _write_tradeoff_json(args, sampler, cpu, prompt, rows):
    import json
    with open(args.json, 'w') as f:
        json.dump(dict(label=args.label, checkpoint=args.checkpoint,
                       config=args.config, sampler=sampler, steps=args.steps,
                       prompts=args.prompts, per_prompt=args.per_prompt,
                       cpu_seconds=cpu, grid_prompt=prompt, rows=rows), f,
                  indent=1)


def tradeoff_table(args, model):
    """The trade-off sweep (``--tradeoff``): distribution metrics in the
    evaluator's feature space for classifier-free guidance, CLIP guidance
    and both, on the same prompts and seeds; writes ``--json`` and
    ``--grid`` when given."""
    from projects.glide.shapes import evaluator as ev
    net = ev.load_evaluator(args.evaluator)
    start = time.process_time()
    sampler = type(model.diffusion_scheduler).__name__

    def save(rows, firsts, prompt):
        cpu = time.process_time() - start
        if args.json:
            _write_tradeoff_json(args, sampler, cpu, prompt, rows)
        if args.grid:
            from projects.glide.evaluation.tradeoff_plots import \
                save_scale_grid
            save_scale_grid(args.grid, firsts, prompt)
        return cpu

    rows, firsts, prompt = tradeoff_rows(args, model, net, save)
    cpu = save(rows, firsts, prompt)
    title = (f'Guidance trade-off ({args.label}): {sampler}, {args.steps} '
             f'steps, {args.prompts} held-out prompts x {args.per_prompt} '
             f'samples, seed {args.seed}; evaluator features, k = 3; '
             f'{cpu / 60:.1f} CPU minutes')
    return title + '\n\n' + table(TRADEOFF_HEADER,
                                  [_tradeoff_line(r) for r in rows])


#: The grain table's rows: sampler, steps, guidance scale.
GRAIN_ROWS = [
    ('dpm++2m', 25, 1.0), ('dpm++2m', 25, 3.0), ('dpm++2m', 50, 3.0),
    ('dpm++2m', 100, 3.0), ('ddim', 50, 3.0), ('ancestral', 100, 3.0),
]


def grain_table(args):
    """Where the grainy backgrounds come from (``--grain``): the flat
    background's pixel std and the evaluator's texture reading for several
    samplers, step counts and guidance scales, against real renders of the
    same prompts."""
    import numpy as np
    from projects.glide.shapes import evaluator as ev
    net = ev.load_evaluator(args.evaluator)
    prompts = prompts_of(args.prompts, args.prompt_seed)
    captions = [p for p in prompts for _ in range(args.per_prompt)]
    real, _ = ev.render_for_captions(prompts, args.per_prompt,
                                     args.reference_seed)
    sets = [('real renders', real)]
    for sampler, steps, g in GRAIN_ROWS:
        model = load(args.config, args.checkpoint, sampler)
        sets.append((f'{sampler} {steps}, guidance {g:g}',
                     sample(model, prompts, args.per_prompt, steps, g,
                            args.seed, args.batch)[0]))
    header = ['images', 'background std (levels), mean', 'median',
              'share < 2 levels', 'plain/noise/stripes (evaluator)']
    rows = []
    for name, images in sets:
        std = ev.background_grain(images, captions)
        mix = ev.predict(net, images)['labels']['texture']
        rows.append([name, f'{std.mean():.1f}', f'{np.median(std):.1f}',
                     f'{(std < 2).mean():.2f}',
                     '/'.join(f'{mix.count(t) / len(mix):.2f}'
                              for t in ev.HEADS['texture'])])
        progress(header, rows[-1])
    title = (f'Background grain: {args.prompts} held-out prompts x '
             f'{args.per_prompt} samples, seed {args.seed}; std of the '
             'quadrant opposite the shape (2 px margin), 8-bit levels')
    return title + '\n\n' + table(header, rows)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--checkpoint',
                   help='a checkpoint trained with glide_base-stage1_2xb16-4k_shapes-32x32.py')
    p.add_argument('--prompts', type=int, default=64)
    p.add_argument('--per-prompt', type=int, default=4)
    p.add_argument('--prompt-seed', type=int, default=12345,
                   help='scene seed of the held-out prompts (training: 0)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--steps', type=int, default=25)
    p.add_argument('--scales', type=float, nargs='*',
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
                   help='with --clip (default: 10 30 100) or --tradeoff '
                   '(default: none): the CLIP guidance scales')
    p.add_argument('--cells', action='store_true',
                   help='accuracy per shape x size cell, over every colour, '
                   'position and background')
    p.add_argument('--tradeoff', action='store_true',
                   help='the guidance trade-off sweep in the evaluator\'s '
                   'feature space (FD, precision/recall, caption match, '
                   'texture mix); CLIP points need a CLIP config')
    p.add_argument('--both', nargs='*', default=[], metavar='G:C',
                   help='with --tradeoff: guidance_scale:classifier_scale '
                   'points of both guides')
    p.add_argument('--grain', action='store_true',
                   help='background grain against samplers, steps and '
                   'guidance (needs the evaluator)')
    p.add_argument('--sampler', help='replace the config\'s sampler '
                   '(ancestral, ddim, dpm++2m)')
    p.add_argument('--evaluator',
                   default='checkpoints/shapes_evaluator.safetensors')
    p.add_argument('--reference-seed', type=int, default=777,
                   help='with --tradeoff: scene seed of the texture and '
                   'jitter of the real reference renders')
    p.add_argument('--label', default='model',
                   help='with --tradeoff: the model\'s name in the table')
    p.add_argument('--json', help='with --tradeoff: write the rows here')
    p.add_argument('--plot', nargs='+', metavar='JSON',
                   help='plot the trade-off curves of --tradeoff --json '
                   'files into --figures (no sampling; --checkpoint unused)')
    p.add_argument('--figures', default='docs/figures')
    p.add_argument('--out', help='append the tables to this file')
    args = p.parse_args(argv)
    if args.plot:
        from projects.glide.evaluation.tradeoff_plots import plot_tradeoff
        return '\n'.join(plot_tradeoff(args.plot, args.figures))
    if not args.checkpoint:
        p.error('--checkpoint is required')
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
        args.clip_scales = args.clip_scales or [10, 30, 100]
        text = clip_table(args, load(args.config, args.checkpoint))
    elif args.grain:
        text = grain_table(args)
    elif args.tradeoff:
        text = tradeoff_table(args, load(args.config, args.checkpoint,
                                         args.sampler))
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
