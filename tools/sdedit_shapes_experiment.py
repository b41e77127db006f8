"""Image-to-image editing (SDEdit) on the shapes model, judged: "red" scenes
re-prompted with another colour (and, with ``--change both``, the next shape
too: circle -> square -> triangle -> circle), over strengths.

    python tools/sdedit_shapes_experiment.py [--num 24] \\
        [--strengths 0.3 0.5 0.7 0.9] [--to blue] [--change both]

For each strength, the judge reads the edited images against the new
caption: ``colour`` (and ``shape``) say whether the edit follows the prompt,
``size``/``position``/``background`` whether the scene was kept (the new
caption keeps them). Prints one JSON line per strength.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/sdedit_shapes_experiment.py')

CONFIG = ('projects/glide/configs/'
          'glide_base-stage1_2xb16-4k_shapes-32x32.py')
CHECKPOINT = 'checkpoints/glide_shapes-32.safetensors'


def red_scenes(num: int, seed: int) -> list:
    """The first ``num`` red scenes of the shapes generator (seed ``seed``)
    with plain texture."""
    from projects.glide.shapes import scenes
    found, index = [], 0
    while len(found) < num:
        scene = scenes.make_scene(seed, index)
        index += 1
        if scene['attributes']['colour'] == 'red':
            scene['attributes']['texture'] = 'plain'
            found.append(scene)
    return found


def new_attributes(attributes: dict, args) -> dict:
    """What the new prompt asks: the colour ``--to``, and with ``--change
    both`` the next shape of ``scenes.SHAPES``."""
    from projects.glide.shapes.scenes import SHAPES
    new = dict(attributes, colour=args.to)
    if args.change == 'both':
        new['shape'] = SHAPES[(SHAPES.index(new['shape']) + 1) % len(SHAPES)]
    return new


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--checkpoint', default=CHECKPOINT)
    parser.add_argument('--num', type=int, default=24)
    parser.add_argument('--strengths', type=float, nargs='+',
                        default=[0.3, 0.5, 0.7, 0.9])
    parser.add_argument('--to', default='blue', help='the new colour')
    parser.add_argument('--change', choices=('colour', 'both'),
                        default='colour',
                        help='what the new prompt changes')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    import numpy as np
    import torch
    from mmagic.apis import init_model
    from projects.glide.shapes import scenes
    from projects.glide.shapes.judge import caption_accuracy
    model = init_model(args.config, args.checkpoint, device='cpu')
    chosen = red_scenes(args.num, 2024)
    size = model.unet.image_size
    images = np.stack([scenes.render(s['attributes'], size) for s in chosen])
    image = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    prompts = [scenes.make_caption(new_attributes(s['attributes'], args))
               for s in chosen]
    print(json.dumps(dict(strength=0, **caption_accuracy(image, prompts))))
    for strength in args.strengths:
        out = model.infer(init_image=image, strength=strength,
                          prompt=prompts, seed=args.seed)['samples']
        result = caption_accuracy(out, prompts)
        print(json.dumps(dict(strength=strength, **{
            k: round(v, 3) if isinstance(v, float) else v
            for k, v in result.items()})), flush=True)


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads(print)
    main()
