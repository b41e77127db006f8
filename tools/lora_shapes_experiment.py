"""The adapter experiments of the shapes model: teach it a colour (purple)
or a shape (a cross) it never saw, from 32 images, then judge held-out
prompts.

    python tools/lora_shapes_experiment.py make --concept cross \\
        --out data/lora_cross --preserve 32
    python tools/train_lora.py data/lora_cross --out cross.safetensors
    python tools/lora_shapes_experiment.py judge --concept cross \\
        --adapter cross.safetensors

``make`` draws 32 scenes of the new concept (other attributes drawn from
the data's) in the top-left and bottom-right quadrants only, each with a
(size, background) pair of :data:`SEEN_PAIRS` (and, with ``--preserve N``,
N ordinary scenes of the dataset: DreamBooth's prior preservation);
``judge`` samples the concept in what those images never show: the other
two quadrants, each with a (size, background) pair the images never have
(``--split combinations``, the default), or with a background absent from
them altogether (``--split background``: gray, the images then hold black
and white only). ``--split cells`` shows every value of position, size and
background in the images but only half of the 24 (position, size,
background) cells (those of even index sum), and judges the other half. It also samples ordinary held-out prompts with and without
the adapter, and prints the judge's per-attribute accuracy (the judge reads
the new concept inside ``judge.reading``).
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/lora_shapes_experiment.py')

CONCEPTS = {'purple': 'colour', 'cross': 'shape'}
POSITIONS = ('top left', 'top right', 'bottom left', 'bottom right')
SEEN_POSITIONS = ('top left', 'bottom right')
HELD_OUT_POSITIONS = ('top right', 'bottom left')
SIZES = ('small', 'large')
BACKGROUNDS = ('black', 'white', 'gray')
#: (size, background) pairs of the adapter images: every size and every
#: background appears, the other three pairs never do.
SEEN_PAIRS = (('small', 'black'), ('small', 'gray'), ('large', 'white'))
CONFIG = ('projects/glide/configs/'
          'glide_base-stage1_2xb16-4k_shapes-32x32.py')
CHECKPOINT = 'checkpoints/glide_shapes-32.safetensors'


def cells(split: str, seen: bool) -> list:
    """The (position, size, background) cells of the adapter images
    (``seen``) or of the held-out prompts, for a split (see above)."""
    every = [(p, s, b) for p in POSITIONS for s in SIZES for b in BACKGROUNDS]
    if split == 'cells':  # every value seen, half of the cells
        return [c for c in every if (POSITIONS.index(c[0]) + SIZES.index(
            c[1]) + BACKGROUNDS.index(c[2])) % 2 == (0 if seen else 1)]
    positions = SEEN_POSITIONS if seen else HELD_OUT_POSITIONS
    if split == 'background':
        kept = ('black', 'white') if seen else ('gray', )
        return [c for c in every if c[0] in positions and c[2] in kept]
    return [c for c in every if c[0] in positions and
            ((c[1], c[2]) in SEEN_PAIRS) == seen]


def concept_scenes(concept: str, chosen_cells, n: int, seed: int) -> list:
    """``n`` scenes of the new ``concept`` in ``chosen_cells`` (position,
    size, background), shape or colour drawn from the data's values."""
    import numpy as np
    from projects.glide.shapes import scenes
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        position, size, background = chosen_cells[rng.integers(
            len(chosen_cells))]
        attributes = dict(
            shape=scenes.SHAPES[rng.integers(len(scenes.SHAPES))],
            colour=list(scenes.COLOURS)[rng.integers(len(scenes.COLOURS))],
            size=size, background=background, texture='plain',
            position=position)
        attributes[CONCEPTS[concept]] = concept
        template = int(rng.integers(len(scenes.TEMPLATES)))
        out.append(dict(caption=scenes.make_caption(attributes, template),
                        attributes=attributes))
    return out


def make(args) -> None:
    from projects.glide.shapes import scenes
    new = concept_scenes(args.concept, cells(args.split, True), args.num,
                         args.seed)
    rows = _write_images(args.out, 'new', new)
    rows += _write_images(args.out, 'old',
                          scenes.make_scenes(args.preserve, 99))
    with open(osp.join(args.out, 'annotations.jsonl'), 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows)
    print(f'wrote {len(rows)} images to {args.out}')


def _write_images(out: str, prefix: str, drawn: list) -> list:
    """Render scenes as 32 px PNGs under ``out/images``; their rows."""
    from PIL import Image
    from projects.glide.shapes import scenes
    os.makedirs(osp.join(out, 'images'), exist_ok=True)
    rows = []
    for i, scene in enumerate(drawn):
        path = f'images/{prefix}_{i:03d}.png'
        Image.fromarray(scenes.render(scene['attributes'], 32)).save(
            osp.join(out, path))
        rows.append(dict(path=path, caption=scene['caption']))
    return rows


def judged(model, prompts: list, seed: int) -> dict:
    from projects.glide.shapes.judge import caption_accuracy
    images = model.infer(prompt=prompts, seed=seed,
                         show_progress=False)['samples']
    return {k: (round(v, 3) if isinstance(v, float) else v)
            for k, v in caption_accuracy(images, prompts).items()}


def judge(args) -> None:
    from mmagic.apis import init_model
    from projects.glide.shapes import judge as pixel_judge
    from projects.glide.shapes import scenes
    model = init_model(args.config, args.checkpoint, device='cpu')
    new = [s['caption'] for s in concept_scenes(
        args.concept, cells(args.split, False), args.num, args.seed + 1)]
    old = [s['caption'] for s in scenes.make_scenes(args.num, 12345)]
    with pixel_judge.reading(args.concept):
        results = dict(old_without=judged(model, old, args.seed))
        model.load_lora(args.adapter, scale=args.scale)
        results['new_with'] = judged(model, new, args.seed)
        results['old_with'] = judged(model, old, args.seed)
        model.unload_lora()
        results['new_without'] = judged(model, new, args.seed)
    results['adapter_bytes'] = os.path.getsize(args.adapter)
    print(json.dumps(results, indent=1))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    make_p = sub.add_parser('make', help='write the adapter training images')
    make_p.add_argument('--out', required=True)
    make_p.add_argument('--num', type=int, default=32)
    make_p.add_argument('--preserve', type=int, default=0,
                        help='ordinary scenes to add (prior preservation)')
    judge_p = sub.add_parser('judge', help='judge held-out prompts')
    judge_p.add_argument('--adapter', required=True)
    judge_p.add_argument('--scale', type=float, default=1.0)
    judge_p.add_argument('--config', default=CONFIG)
    judge_p.add_argument('--checkpoint', default=CHECKPOINT)
    judge_p.add_argument('--num', type=int, default=48)
    for p in (make_p, judge_p):
        p.add_argument('--concept', choices=sorted(CONCEPTS),
                       default='purple')
        p.add_argument('--split', choices=('combinations', 'background',
                                           'cells'),
                       default='combinations',
                       help='what the held-out prompts hold that the '
                       'images do not (see above)')
        p.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    (make if args.command == 'make' else judge)(args)


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads(print)
    main()
