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

from mmengine import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from projects.glide.models.checkpoint import (  # noqa: E402
    check_state_dict, expected_shapes, mmagic_to_openai, openai_kind,
    openai_to_mmagic, read_state_dict, save_state_dict)

CONFIG_DIR = os.path.join(os.path.dirname(__file__), '..', 'projects', 'glide',
                          'configs')
DEFAULT_CONFIGS = {
    False: 'glide_ddim-classifier-free_laion-64-256.py',
    True: 'glide_ddim-classifier-free_laion-64-256-inpaint.py',
}


def log(msg):
    print(f'[convert] {msg}', flush=True)


def read(path, prefix=''):
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
    check_state_dict(state, expected, what='converted checkpoint')
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
    os.makedirs(args.out_dir, exist_ok=True)
    inpaint = None
    for prefix, name in (('unet.', 'base'), ('unet_up.', 'upsample')):
        part = OrderedDict((k, v) for k, v in state.items()
                           if k.startswith(prefix))
        if not part:
            continue
        if inpaint is None:
            inpaint = part[prefix + 'in_blocks.0.0.weight'].shape[1] in (7, 10)
            cfg = model_cfg(args.config, inpaint)
        check_state_dict(part, expected_shapes(cfg[prefix[:-1]], prefix),
                         what=f'{prefix[:-1]} of {args.to_openai}')
        out = os.path.join(args.out_dir,
                           name + ('_inpaint' if inpaint else '') + '.pt')
        log(f'writing {out}...')
        import torch
        torch.save(mmagic_to_openai(part, prefix), out)
    for part, name in (('text_encoder', 'clip_text_enc.pt'),
                       ('image_encoder', 'clip_image_enc.pt')):
        prefix = f'classifier.{part}.'
        clip = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                           if k.startswith(prefix))
        if clip:
            cfg = model_cfg(args.config, bool(inpaint))
            if not cfg.get('classifier'):
                raise ValueError('this checkpoint has CLIP weights: pass the '
                                 '--config with its classifier')
            check_state_dict({prefix + k: v for k, v in clip.items()},
                             _clip_shapes(cfg.classifier, part),
                             what=f'{part} of {args.to_openai}')
            out = os.path.join(args.out_dir, name)
            log(f'writing {out}...')
            import torch
            torch.save(clip, out)
    unknown = [k for k in state
               if not k.startswith(('unet.', 'unet_up.', 'classifier.'))]
    if unknown:
        raise KeyError(f'unknown keys in {args.to_openai}: {unknown[:10]}')
    log('done')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
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
    main()
