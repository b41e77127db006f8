"""Convert GLIDE checkpoints between OpenAI's release and this project.

OpenAI -> ours (``.pth`` in mmengine's format, or ``.safetensors``)::

    python tools/convert_glide_checkpoint.py --base base.pt --out glide-64x64.pth
    python tools/convert_glide_checkpoint.py --base base.pt \
        --upsample upsample.pt --out glide-64-256.safetensors
    python tools/convert_glide_checkpoint.py --base base_inpaint.pt \
        --upsample upsample_inpaint.pt --out glide-64-256-inpaint.pth

With the noised CLIP of CLIP guidance (``glide_clip-guided_laion-64x64.py``)::

    python tools/convert_glide_checkpoint.py --base base.pt \
        --clip-text clip_text_enc.pt --clip-image clip_image_enc.pt \
        --config projects/glide/configs/glide_clip-guided_laion-64x64.py \
        --out glide-64x64-clip.pth

Ours (or MMagic's released ``.pth``) -> OpenAI::

    python tools/convert_glide_checkpoint.py --to-openai glide-64-256.pth \
        --out-dir openai/     # writes base.pt and upsample.pt (or *_inpaint)

Every tensor's key and shape is checked against the networks of the shipped
configs (``--config`` to use another): an unknown, missing or misshapen key
stops the conversion with an error naming it.
"""
import argparse
import os
import sys
import time
from collections import OrderedDict

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/convert_glide_checkpoint.py')

from mmengine import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from projects.glide.models.checkpoint import (  # noqa: E402
    StateDictMismatch, check_state_dict, expected_shapes,
    is_openai_state_dict, mmagic_to_openai, openai_kind, openai_to_mmagic,
    read_state_dict, save_state_dict)

CONFIG_DIR = os.path.join(os.path.dirname(__file__), '..', 'projects', 'glide',
                          'configs')
DEFAULT_CONFIGS = {
    False: 'glide_ddim-classifier-free_laion-64-256.py',
    True: 'glide_ddim-classifier-free_laion-64-256-inpaint.py',
}


def log(msg):
    print(f'[convert] {msg}', flush=True)


def read(path, prefix=''):
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path!r}')
    size = os.path.getsize(path) / 2**30
    log(f'reading {path} ({size:.2f} GiB)...')
    start = time.time()
    state = read_state_dict(path, prefix=prefix)
    log(f'  {len(state)} tensors in {time.time() - start:.1f} s')
    return state


def model_cfg(config, inpaint):
    import projects.glide.models  # noqa: F401  (registers the networks)
    init_default_scope('mmagic')
    path = config or os.path.join(CONFIG_DIR, DEFAULT_CONFIGS[inpaint])
    return Config.fromfile(path).model


def config_hint(args, inpaint):
    """What to say when the weights do not fit the config's networks."""
    if args.config:
        return (f'Is --config {args.config} the config these weights were '
                'made for?')
    return ('No --config was given, so the keys were checked against the '
            f'full-size {DEFAULT_CONFIGS[bool(inpaint)]}; pass --config with '
            'the config these weights were made for (e.g. the tiny or shapes '
            'config). Details:')


def to_ours(args):
    base = read(args.base)
    kind = openai_kind(base)
    if kind.startswith('upsample'):
        raise ValueError(f'--base {args.base} is an OpenAI {kind} model; '
                         'pass it as --upsample')
    inpaint = kind == 'base_inpaint'
    cfg = model_cfg(args.config, inpaint)
    state = openai_to_mmagic(base, prefix='unet.')
    expected = expected_shapes(cfg.unet, 'unet.')
    if args.upsample:
        up = read(args.upsample)
        up_kind = openai_kind(up)
        if up_kind != ('upsample_inpaint' if inpaint else 'upsample'):
            raise ValueError(f'--upsample {args.upsample} is an OpenAI '
                             f'{up_kind} model, which does not go with a '
                             f'{kind} base model')
        state.update(openai_to_mmagic(up, prefix='unet_up.'))
        expected.update(expected_shapes(cfg.unet_up, 'unet_up.'))
    for arg, part in ((args.clip_text, 'text_encoder'),
                      (args.clip_image, 'image_encoder')):
        if arg:
            if not cfg.get('classifier'):
                raise ValueError('--clip-text/--clip-image need a --config '
                                 'with a classifier (NoisedCLIP)')
            state.update((f'classifier.{part}.{k}', v)
                         for k, v in read(arg).items())
            expected.update(_clip_shapes(cfg.classifier, part))
    log('checking keys and shapes...')
    check_state_dict(state, expected, what='converted checkpoint',
                     hint=config_hint(args, inpaint))
    log(f'writing {args.out} ({len(state)} tensors)...')
    save_state_dict(state, args.out, meta={'source': 'openai',
                                           'kind': kind})
    log('done')


def _clip_shapes(classifier_cfg, part):
    shapes = expected_shapes(classifier_cfg, 'classifier.')
    return {k: v for k, v in shapes.items()
            if k.startswith(f'classifier.{part}.')}


def to_openai(args):
    state = read(args.to_openai)
    parts = {'base': 'unet.', 'upsample': 'unet_up.',
             'clip_text_enc': 'classifier.text_encoder.',
             'clip_image_enc': 'classifier.image_encoder.'}
    unknown = [k for k in state if not k.startswith(tuple(parts.values()))]
    if unknown:
        if is_openai_state_dict(unknown):
            raise StateDictMismatch(
                f'{args.to_openai} is already an OpenAI-format checkpoint '
                '(input_blocks.*, ...): --to-openai converts ours; convert '
                'this one with --base (and --upsample)')
        raise StateDictMismatch(
            f'{args.to_openai} holds keys outside '
            f'{", ".join(p + "*" for p in parts.values())}, which no OpenAI '
            f'file takes: {", ".join(unknown[:10])}'
            + (f' ... and {len(unknown) - 10} more' if len(unknown) > 10
               else ''))
    firsts = [state.get(f'{p}in_blocks.0.0.weight') for p in parts.values()]
    inpaint = any(w is not None and w.dim() == 4 and w.shape[1] in (7, 10)
                  for w in firsts)  # base 7, upsampler 10 input channels
    cfg = model_cfg(args.config, inpaint)
    if any(k.startswith('classifier.') for k in state) and \
            not cfg.get('classifier'):
        raise ValueError('this checkpoint has CLIP weights (classifier.*): '
                         'pass the --config with its classifier')
    # Every key and shape is checked before anything is written.
    expected = {}
    for name, prefix in parts.items():
        if not any(k.startswith(prefix) for k in state):
            continue
        if prefix.startswith('classifier.'):
            part = prefix[len('classifier.'):-1]
            expected.update(_clip_shapes(cfg.classifier, part))
        else:
            expected.update(expected_shapes(cfg[prefix[:-1]], prefix))
    check_state_dict(state, expected, what=args.to_openai,
                     hint=config_hint(args, inpaint))
    import torch
    os.makedirs(args.out_dir, exist_ok=True)
    for name, prefix in parts.items():
        part = OrderedDict((k, v) for k, v in state.items()
                           if k.startswith(prefix))
        if not part:
            continue
        if prefix.startswith('classifier.'):
            out_state = OrderedDict((k[len(prefix):], v)
                                    for k, v in part.items())
        else:
            out_state = mmagic_to_openai(part, prefix)
            name += '_inpaint' if inpaint else ''
        out = os.path.join(args.out_dir, name + '.pt')
        log(f'writing {out}...')
        torch.save(out_state, out)
    log('done')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--base', help='OpenAI base.pt or base_inpaint.pt')
    parser.add_argument('--upsample',
                        help='OpenAI upsample.pt or upsample_inpaint.pt')
    parser.add_argument('--out', help='output .pth or .safetensors')
    parser.add_argument('--clip-text', help='OpenAI clip_text_enc.pt')
    parser.add_argument('--clip-image', help='OpenAI clip_image_enc.pt')
    parser.add_argument('--to-openai', metavar='CKPT',
                        help='convert this checkpoint of ours to OpenAI files')
    parser.add_argument('--out-dir', help='output folder for --to-openai')
    parser.add_argument('--config', help='model config whose networks define '
                        'the expected keys (default: the shipped 64-256 '
                        'config, or its inpainting variant)')
    args = parser.parse_args(argv)
    if args.out and not args.out.endswith(('.pth', '.pt', '.safetensors')):
        parser.error(f'--out {args.out}: give a .pth, .pt or .safetensors '
                     'file name (the extension picks the format)')
    if args.to_openai:
        if not args.out_dir:
            parser.error('--to-openai needs --out-dir')
        to_openai(args)
    else:
        if not args.base or not args.out:
            parser.error('give --base (and optionally --upsample) and --out, '
                         'or --to-openai and --out-dir')
        to_ours(args)


if __name__ == '__main__':
    import pickle
    try:
        main()
    except (KeyError, ValueError, FileNotFoundError,
            pickle.UnpicklingError) as err:  # the message says it all
        raise SystemExit(f'convert_glide_checkpoint.py: error: {err}')
