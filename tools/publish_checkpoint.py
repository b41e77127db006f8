"""Turn a training checkpoint into a small inference checkpoint.

    python tools/publish_checkpoint.py work_dirs/shapes/iter_7000.pth \
        checkpoints/glide_shapes-32.safetensors --dtype float16

mmengine's EMAHook stores the averaged weights under ``state_dict`` (the raw
ones under ``ema_state_dict``), so the published weights are the EMA ones.
Optimizer state and logs are dropped; floats are stored in ``--dtype``
(``init_model`` casts them back to the model's dtype).
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
    args = p.parse_args(argv)
    import torch
    from projects.glide.models.checkpoint import (read_checkpoint,
                                                  save_state_dict)
    ckpt = read_checkpoint(args.checkpoint)
    state = ckpt['state_dict']
    dtype = getattr(torch, args.dtype)
    state = {k: v.to(dtype) if v.is_floating_point() else v
             for k, v in state.items()}
    meta = ckpt.get('meta', {})
    save_state_dict(state, args.out, meta={
        'source': os.path.basename(args.checkpoint),
        'iter': str(meta.get('iter', '')),
        'ema': str('ema_state_dict' in ckpt), 'dtype': args.dtype})
    size = os.path.getsize(args.out) / 2**20
    print(f'wrote {args.out}: {len(state)} tensors, {size:.1f} MiB')


if __name__ == '__main__':
    main()
