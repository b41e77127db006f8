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

``--to-openai`` converts each network the file holds: ``unet.*`` (the base
model) to ``base.pt``, ``unet_up.*`` (the upsampler) to ``upsample.pt``
(``*_inpaint.pt`` for inpainting networks), ``classifier.*`` (a noised CLIP
guide) to ``clip_text_enc.pt`` and ``clip_image_enc.pt``; ``--networks``
picks some. The shipped demo file holds all three::

    python tools/convert_glide_checkpoint.py \
        --to-openai checkpoints/glide_shapes-32.safetensors --out-dir openai/

Every tensor's key and shape is checked, before anything is written,
against the network of a config: the first ``--config`` that has that
network (several may be given), or without ``--config`` a shipped config
that fits it (for converting to ours: the full-size 64-256 config). An
unknown, missing or misshapen key, or a network that no ``--config`` has,
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

from projects.glide.files import WriteError, atomic_write  # noqa: E402
from projects.glide.models.checkpoint import (  # noqa: E402
    StateDictMismatch, check_state_dict, expected_shapes,
    is_openai_state_dict, mmagic_to_openai, openai_kind, openai_to_mmagic,
    read_state_dict, save_state_dict)

CONFIG_DIR = os.path.join(os.path.dirname(__file__), '..', 'projects', 'glide',
                          'configs')
DEFAULT_CONFIGS = {
    False: 'glide_ddim-classifier-free_laion-64-256.py',
    True: 'glide_inpaint-classifier-free_laion-64-256.py',
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
        return (f'Is --config {" ".join(args.config)} the config these '
                'weights were made for?')
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
    cfg = model_cfg(args.config and args.config[0], inpaint)
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
    with atomic_write(args.out) as temporary:
        save_state_dict(state, temporary, meta={'source': 'openai',
                                                'kind': kind})
    log('done')


def _clip_shapes(classifier_cfg, part):
    shapes = expected_shapes(classifier_cfg, 'classifier.')
    return {k: v for k, v in shapes.items()
            if k.startswith(f'classifier.{part}.')}


#: The networks a checkpoint of ours holds: name (of ``--networks``) ->
#: (key prefix, the model config's key, what it is).
NETWORKS = OrderedDict([
    ('base', ('unet.', 'unet', 'the base model')),
    ('upsample', ('unet_up.', 'unet_up', 'the upsampler')),
    ('clip', ('classifier.', 'classifier', 'the noised CLIP guide')),
])
#: The OpenAI file of each part of our CLIP guide (key prefix -> name).
CLIP_FILES = OrderedDict([('classifier.text_encoder.', 'clip_text_enc'),
                          ('classifier.image_encoder.', 'clip_image_enc')])


def network_shapes(model, name, state):
    """Key -> shape of network ``name`` of a model config, for the parts of
    it that ``state`` holds (a CLIP guide's text and image towers are files
    of their own)."""
    prefix, key, _ = NETWORKS[name]
    if name != 'clip':
        return expected_shapes(model[key], prefix)
    expected = {}
    for part_prefix in CLIP_FILES:
        if any(k.startswith(part_prefix) for k in state):
            part = part_prefix[len('classifier.'):-1]
            expected.update(_clip_shapes(model.classifier, part))
    return expected


def fits(model, name, state):
    """Whether the config ``model`` has network ``name`` with exactly the
    keys and shapes of ``state``'s tensors of it."""
    prefix, key, _ = NETWORKS[name]
    if not model.get(key):
        return False
    held = {k: tuple(v.shape) for k, v in state.items()
            if k.startswith(prefix)}
    try:
        return network_shapes(model, name, state) == held
    except Exception:  # a config this network cannot be built from
        return False


def shipped_configs_for(name, state):
    """The shipped configs (``projects/glide/configs``) whose network
    ``name`` fits ``state``."""
    import glob
    found = []
    for path in sorted(glob.glob(os.path.join(CONFIG_DIR, '*.py'))):
        try:
            model = model_cfg(path, False)
        except Exception:  # not a GLIDE model config
            continue
        if fits(model, name, state):
            found.append(os.path.relpath(path))
    return found


def owner_configs(args, names, state, inpaint):
    """Network name -> (config path, model config) that checks it: the
    first ``--config`` that has the network; without ``--config``, the first
    shipped config it fits, else the default full-size config (whose check
    then names the mismatches). A network that no ``--config`` has stops
    the conversion with a message naming it and the configs that fit it."""
    if not args.config:
        default = os.path.join(CONFIG_DIR, DEFAULT_CONFIGS[inpaint])
        owners = {}
        for name in names:
            path = (shipped_configs_for(name, state) or [default])[0]
            owners[name] = (path, model_cfg(path, inpaint))
            log(f'{NETWORKS[name][0]}* checked against {path}')
        return owners
    models = [(path, model_cfg(path, inpaint)) for path in args.config]
    owners, missing = {}, []
    for name in names:
        have = [(p, m) for p, m in models if m.get(NETWORKS[name][1])]
        if have:
            owners[name] = have[0]
        else:
            missing.append(name)
    if missing:
        raise ValueError(missing_networks_message(args, missing, names,
                                                  state))
    return owners


def missing_networks_message(args, missing, names, state):
    """What to say when no ``--config`` has some network the file holds."""
    lines = [f'{args.to_openai} holds networks that --config '
             f'{" ".join(args.config)} lacks:']
    for name in missing:
        prefix, key, what = NETWORKS[name]
        count = sum(k.startswith(prefix) for k in state)
        fit = shipped_configs_for(name, state)
        lines.append(f'  {name}: {what} ({prefix}*, {count} tensors), but no '
                     f'config has model.{key}' +
                     (f'; shipped configs that fit it: {", ".join(fit)}'
                      if fit else ''))
    rest = [n for n in names if n not in missing]
    lines.append('Give a config that has it as well (--config takes several '
                 'files)' + (f', or convert the others alone with '
                             f'--networks {" ".join(rest)}' if rest else ''))
    return '\n'.join(lines)


def check_known_keys(state, path):
    """Stop on keys that no OpenAI file takes (and on an OpenAI-format
    file)."""
    prefixes = ('unet.', 'unet_up.') + tuple(CLIP_FILES)
    unknown = [k for k in state if not k.startswith(prefixes)]
    if not unknown:
        return
    if is_openai_state_dict(unknown):
        raise StateDictMismatch(
            f'{path} is already an OpenAI-format checkpoint '
            '(input_blocks.*, ...): --to-openai converts ours; convert '
            'this one with --base (and --upsample)')
    raise StateDictMismatch(
        f'{path} holds keys outside '
        f'{", ".join(p + "*" for p in prefixes)}, which no OpenAI file '
        f'takes: {", ".join(unknown[:10])}' +
        (f' ... and {len(unknown) - 10} more' if len(unknown) > 10 else ''))


def networks_to_convert(args, state):
    """The networks ``state`` holds, or those of ``--networks`` (each of
    which it must hold)."""
    held = [name for name, (prefix, _, _) in NETWORKS.items()
            if any(k.startswith(prefix) for k in state)]
    absent = [name for name in args.networks or () if name not in held]
    if absent:
        raise ValueError(f'--networks {" ".join(absent)}: {args.to_openai} '
                         f'holds no such network; it holds '
                         f'{", ".join(held) or "none"}')
    return list(args.networks or held)


def openai_files(state, names, inpaint):
    """OpenAI file name -> its state dict, for the networks ``names``."""
    files = OrderedDict()
    for name in names:
        prefix = NETWORKS[name][0]
        if name == 'clip':
            for part_prefix, file in CLIP_FILES.items():
                part = OrderedDict((k[len(part_prefix):], v)
                                   for k, v in state.items()
                                   if k.startswith(part_prefix))
                if part:
                    files[file] = part
        else:
            files[name + ('_inpaint' if inpaint else '')] = \
                mmagic_to_openai(state, prefix)
    return files


def to_openai(args):
    """Write each network ``args.to_openai`` holds (or ``--networks``) as
    OpenAI's files: the base model as ``base.pt``, the upsampler as
    ``upsample.pt`` (``*_inpaint.pt`` for inpainting networks) and a CLIP
    guide as ``clip_text_enc.pt`` and ``clip_image_enc.pt``. Every key and
    shape is checked against the config that has the network before
    anything is written."""
    state = read(args.to_openai)
    check_known_keys(state, args.to_openai)
    names = networks_to_convert(args, state)
    firsts = [state.get(f'{p}in_blocks.0.0.weight') for p in ('unet.',
                                                            'unet_up.')]
    inpaint = any(w is not None and w.dim() == 4 and w.shape[1] in (7, 10)
                  for w in firsts)  # base 7, upsampler 10 input channels
    owners = owner_configs(args, names, state, inpaint)
    prefixes = tuple(NETWORKS[name][0] for name in names)
    state = OrderedDict((k, v) for k, v in state.items()
                        if k.startswith(prefixes))
    for name in names:
        path, model = owners[name]
        prefix = NETWORKS[name][0]
        check_state_dict({k: v for k, v in state.items()
                          if k.startswith(prefix)},
                         network_shapes(model, name, state),
                         what=f'{args.to_openai} ({prefix}*)',
                         hint=config_hint(args, inpaint))
    import torch
    os.makedirs(args.out_dir, exist_ok=True)
    for file, part in openai_files(state, names, inpaint).items():
        out = os.path.join(args.out_dir, file + '.pt')
        log(f'writing {out} ({len(part)} tensors)...')
        with atomic_write(out) as temporary:
            torch.save(part, temporary)
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
    parser.add_argument('--config', nargs='+', metavar='CONFIG',
                        help='model config(s) whose networks define the '
                        'expected keys; with --to-openai several, each '
                        'network checked against the first that has it '
                        '(default: --to-openai looks for a shipped config '
                        'that fits each network; otherwise the shipped '
                        '64-256 config, or its inpainting variant)')
    parser.add_argument('--networks', nargs='+', choices=list(NETWORKS),
                        help='with --to-openai: convert only these networks '
                        '(default: every one the file holds)')
    args = parser.parse_args(argv)
    if args.out and not args.out.endswith(('.pth', '.pt', '.safetensors')):
        parser.error(f'--out {args.out}: give a .pth, .pt or .safetensors '
                     'file name (the extension picks the format)')
    if args.to_openai:
        if not args.out_dir:
            parser.error('--to-openai needs --out-dir')
        to_openai(args)
    else:
        if args.config and len(args.config) > 1:
            parser.error('--config: give one config (with every network of '
                         f'the output) to convert to ours, got '
                         f'{len(args.config)}')
        if args.networks:
            parser.error('--networks goes with --to-openai')
        if not args.base or not args.out:
            parser.error('give --base (and optionally --upsample) and --out, '
                         'or --to-openai and --out-dir')
        to_ours(args)


if __name__ == '__main__':
    import pickle
    try:
        main()
    except (KeyError, ValueError, FileNotFoundError, WriteError,
            pickle.UnpicklingError) as err:  # the message says it all
        raise SystemExit(f'convert_glide_checkpoint.py: error: {err}')
