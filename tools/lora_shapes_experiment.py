"""The adapter experiment of the shapes model: teach it a colour it never
saw (purple) from 32 images, then judge held-out prompts.

    python tools/lora_shapes_experiment.py make --out data/lora_purple
    python tools/train_lora.py data/lora_purple --out purple.safetensors
    python tools/lora_shapes_experiment.py judge --adapter purple.safetensors

``make`` draws 32 purple scenes restricted to the top-left and bottom-right
quadrants on black or white (and, with ``--preserve N``, N ordinary scenes
of the dataset, DreamBooth's prior preservation); ``judge`` samples purple
prompts in what those images never show (the other two quadrants, gray),
and the old prompts with and without the adapter, and prints the judge's
per-attribute accuracy. The judge learns purple here (:func:`add_colour`).
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/lora_shapes_experiment.py')

NEW_COLOUR = ('purple', (160, 32, 240))
SEEN = dict(size=['small', 'large'], position=['top left', 'bottom right'],
            background=['black', 'white'])
HELD_OUT = dict(size=['small', 'large'],
                position=['top right', 'bottom left'], background=['gray'])
CONFIG = ('projects/glide/configs/'
          'glide_base-stage1_2xb16-4k_shapes-32x32.py')
CHECKPOINT = 'checkpoints/glide_shapes-32.safetensors'


def add_colour(name: str, rgb) -> None:
    """Let the scene renderer draw, and the judge read, one more colour."""
    import numpy as np
    from projects.glide.shapes import judge, scenes
    if name not in scenes.COLOURS:
        scenes.COLOURS[name] = tuple(rgb)
        judge._COLOUR_NAMES.append(name)
        judge._COLOUR_RGB = np.vstack([judge._COLOUR_RGB, rgb])


def scenes_of(colour: str, values: dict, n: int, seed: int) -> list:
    """``n`` scenes of ``colour`` whose size, position and background come
    from ``values``."""
    import numpy as np
    from projects.glide.shapes import scenes
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        attributes = dict(shape=scenes.SHAPES[i % len(scenes.SHAPES)],
                          colour=colour, texture='plain')
        for key, options in values.items():
            attributes[key] = options[rng.integers(len(options))]
        template = int(rng.integers(len(scenes.TEMPLATES)))
        out.append(dict(caption=scenes.make_caption(attributes, template),
                        attributes=attributes))
    return out


def make(args) -> None:
    from PIL import Image
    from projects.glide.shapes import scenes
    os.makedirs(osp.join(args.out, 'images'), exist_ok=True)
    rows = []
    for i, scene in enumerate(scenes_of(NEW_COLOUR[0], SEEN, args.num,
                                        args.seed)):
        path = f'images/{i:03d}.png'
        Image.fromarray(scenes.render(scene['attributes'], 32)).save(
            osp.join(args.out, path))
        rows.append(dict(path=path, caption=scene['caption']))
    for i, scene in enumerate(scenes.make_scenes(args.preserve, 99)):
        path = f'images/old_{i:03d}.png'
        Image.fromarray(scenes.render(scene['attributes'], 32)).save(
            osp.join(args.out, path))
        rows.append(dict(path=path, caption=scene['caption']))
    with open(osp.join(args.out, 'annotations.jsonl'), 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows)
    print(f'wrote {len(rows)} images to {args.out}')


def judged(model, prompts: list, seed: int) -> dict:
    from projects.glide.shapes.judge import caption_accuracy
    images = model.infer(prompt=prompts, seed=seed)['samples']
    return {k: (round(v, 3) if isinstance(v, float) else v)
            for k, v in caption_accuracy(images, prompts).items()}


def judge(args) -> None:
    from mmagic.apis import init_model
    from projects.glide.shapes import scenes
    model = init_model(args.config, args.checkpoint, device='cpu')
    new = [s['caption'] for s in scenes_of(NEW_COLOUR[0], HELD_OUT,
                                           args.num, args.seed + 1)]
    old = [s['caption'] for s in scenes.make_scenes(args.num, 12345)]
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
    p = sub.add_parser('make', help='write the adapter training images')
    p.add_argument('--out', default='data/lora_purple')
    p.add_argument('--num', type=int, default=32)
    p.add_argument('--preserve', type=int, default=0,
                   help='ordinary scenes to add (prior preservation)')
    p.add_argument('--seed', type=int, default=0)
    p = sub.add_parser('judge', help='judge held-out prompts')
    p.add_argument('--adapter', required=True)
    p.add_argument('--scale', type=float, default=1.0)
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--checkpoint', default=CHECKPOINT)
    p.add_argument('--num', type=int, default=48)
    p.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    add_colour(*NEW_COLOUR)
    (make if args.command == 'make' else judge)(args)


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads(print)
    main()
