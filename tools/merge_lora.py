"""Fold low-rank adapters into a GLIDE checkpoint.

    python tools/merge_lora.py CONFIG CHECKPOINT ADAPTER [ADAPTER ...] \\
        --out merged.safetensors [--scale 1.0 ...]

The result is a plain checkpoint of the config's model (its keys, no
adapter keys: it loads with no adapter code), whose adapted weights are
``W + scale * up @ down``; it samples as the model with the adapters loaded
(``Glide.load_lora``), within float rounding. Each tensor keeps the base
checkpoint's dtype (float16 stays float16).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/merge_lora.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the model config')
    parser.add_argument('checkpoint', help='the base weights')
    parser.add_argument('adapters', nargs='+', help='adapter files')
    parser.add_argument('--out', required=True,
                        help='merged checkpoint (.safetensors or .pth)')
    parser.add_argument('--scale', type=float, nargs='+',
                        help='one scale per adapter (default: 1 each)')
    args = parser.parse_args(argv)
    args.scale = args.scale or [1.0] * len(args.adapters)
    if len(args.scale) != len(args.adapters):
        parser.error(f'--scale needs one value per adapter '
                     f'({len(args.adapters)}), got {len(args.scale)}')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmagic.apis import init_model
    from projects.glide.files import WriteError, atomic_write
    from projects.glide.models.checkpoint import (read_state_dict,
                                                  save_state_dict)
    from projects.glide.models.lora import merged_state_dict
    model = init_model(args.config, args.checkpoint, device='cpu')
    for i, (path, scale) in enumerate(zip(args.adapters, args.scale)):
        model.load_lora(path, scale=scale, name=f'adapter{i}')
    dtypes = {k: v.dtype for k, v in read_state_dict(args.checkpoint).items()}
    merged = {k: v.to(dtypes.get(k, v.dtype))
              for k, v in merged_state_dict(model).items()}
    try:
        with atomic_write(args.out) as temporary:
            save_state_dict(merged, temporary, meta=dict(merged_adapters=','
                            .join(osp.basename(p) for p in args.adapters)))
    except WriteError as err:
        raise SystemExit(f'merge_lora.py: {err}')
    print(f'wrote {args.out}: {args.checkpoint} with '
          f'{len(args.adapters)} adapter(s) merged')


if __name__ == '__main__':
    main()
