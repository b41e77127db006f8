"""Turn a training checkpoint into a small inference checkpoint.

    python tools/publish_checkpoint.py work_dirs/shapes/iter_7000.pth \
        checkpoints/glide_shapes-32.safetensors --dtype float16

mmengine's EMAHook stores the averaged weights under ``state_dict`` (the raw
ones under ``ema_state_dict``), so the published weights are the EMA ones.
Optimizer state and logs are dropped; floats are stored in ``--dtype``
(``init_model`` casts them back to the model's dtype).

``--merge`` adds the networks of other checkpoints (training or published):
the shapes file holds the base model, its upsampler and its CLIP guide, each
trained by its own run with the base network frozen::

    python tools/publish_checkpoint.py \
        work_dirs/glide_upsampler_2xb16-1k_shapes-32-64/iter_1000.pth \
        checkpoints/glide_shapes-32.safetensors \
        --merge work_dirs/glide_noised-clip_1xb64-2k_shapes-32x32/iter_2000.pth

A tensor that two checkpoints both hold must be equal in them (after the
cast to ``--dtype``), else nothing is written: merged runs must share the
networks they did not train. ``--merge-only`` takes only the networks of
those key prefixes from the ``--merge`` checkpoints: the distilled cascade
is the 4-step student and the demo model's upsampler
(tools/distill_shapes.sh)::

    python tools/publish_checkpoint.py \
        work_dirs/glide_distill-4steps_1xb16-1k_shapes-32x32/iter_1000.pth \
        checkpoints/glide_shapes-32-distilled.safetensors \
        --merge checkpoints/glide_shapes-32.safetensors --merge-only unet_up.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/publish_checkpoint.py')


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('checkpoint')
    p.add_argument('out', help='.safetensors or .pth')
    p.add_argument('--dtype', default='float16',
                   choices=['float32', 'float16', 'bfloat16'])
    p.add_argument('--merge', nargs='+', default=[], metavar='CKPT',
                   help='add the tensors of these checkpoints (shared '
                   'tensors must be equal)')
    p.add_argument('--merge-only', nargs='+', metavar='PREFIX',
                   help='take only the keys with these prefixes from the '
                   '--merge checkpoints (e.g. unet_up.)')
    args = p.parse_args(argv)
    import torch
    from projects.glide.files import WriteError, atomic_write
    from projects.glide.models.checkpoint import (read_checkpoint,
                                                  save_state_dict)
    dtype = getattr(torch, args.dtype)

    def weights(path):
        ckpt = read_checkpoint(path)
        state = ckpt.get('state_dict', ckpt)  # a published file is bare
        return ckpt, {k: v.to(dtype) if v.is_floating_point() else v
                      for k, v in state.items()}

    ckpt, state = weights(args.checkpoint)
    for other in args.merge:
        for k, v in weights(other)[1].items():
            if args.merge_only and not k.startswith(tuple(args.merge_only)):
                continue
            if k in state and not torch.equal(state[k], v):
                sys.exit(f'publish_checkpoint.py: {k} differs between '
                         f'{args.checkpoint} and {other}: they do not share '
                         'that network; nothing written')
            state[k] = v
    meta = ckpt.get('meta', {})
    try:
        with atomic_write(args.out) as temporary:
            save_state_dict(state, temporary, meta={
                'source': os.path.basename(args.checkpoint),
                'iter': str(meta.get('iter', '')),
                'ema': str('ema_state_dict' in ckpt), 'dtype': args.dtype})
    except WriteError as err:
        sys.exit(f'publish_checkpoint.py: {err}')
    size = os.path.getsize(args.out) / 2**20
    print(f'wrote {args.out}: {len(state)} tensors, {size:.1f} MiB')


if __name__ == '__main__':
    main()
