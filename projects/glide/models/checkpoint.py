"""GLIDE checkpoints: OpenAI <-> MMagic key names, safe reading, strict loading.

* :func:`openai_to_mmagic` / :func:`mmagic_to_openai` rename keys between
  OpenAI's release (``base.pt``, ``upsample.pt``, ``*_inpaint.pt``: no prefix)
  and our networks (MMagic's names, used under ``unet.`` / ``unet_up.``).
* :func:`read_state_dict` reads ``.safetensors`` or ``.pth``/``.pt`` without
  executing pickled code (``torch.load(weights_only=True)`` plus an allowlist
  of mmengine's plain data classes); a crafted pickle is refused.
* :func:`register_safe_checkpoint_loader` makes mmengine's local checkpoint
  loader (used by ``init_model``, ``load_from`` and ``--resume``) read through
  :func:`read_state_dict`, which also lets those take ``.safetensors``.
"""
import os
import pickle
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import torch

# The key table, written once: (OpenAI, MMagic) pieces of a key's path;
# '^' anchors a piece at the key's start, '#' stands for one digit.
_KEY_TABLE: List[Tuple[str, str]] = [
    ('^time_embed.#.', '^time_embedding.blocks.#.'),
    ('^input_blocks.', '^in_blocks.'),
    ('^middle_block.', '^mid_blocks.'),
    ('^output_blocks.', '^out_blocks.'),
    ('^out.0.', '^out.gn.'),
    ('^out.2.', '^out.conv.'),
    ('.in_layers.#.', '.conv_1.#.'),
    ('.emb_layers.1.', '.norm_with_embedding.embedding_layer.1.'),
    ('.out_layers.0.', '.norm_with_embedding.norm.'),
    ('.out_layers.3.', '.conv_2.2.'),
    ('.skip_connection.', '.shortcut.'),
]


def _rule(source: str, target: str) -> Tuple[str, str]:
    """A (regex, replacement) pair from two pieces of :data:`_KEY_TABLE`."""
    pattern = re.escape(source).replace('\\^', '^').replace('\\#', '#')
    return (pattern.replace('#', r'(\d)'),
            target.lstrip('^').replace('#', r'\1'))


_OPENAI_TO_MMAGIC = [_rule(o, m) for o, m in _KEY_TABLE]
_MMAGIC_TO_OPENAI = [_rule(m, o) for o, m in _KEY_TABLE]

OPENAI_HINT = (
    'It is an OpenAI-format GLIDE checkpoint (input_blocks.*, ...): convert '
    'it first, e.g. `python tools/convert_glide_checkpoint.py --base base.pt '
    '[--upsample upsample.pt] --out glide.safetensors`, and load the '
    'converted file. Details:')
# Keys that only exist in the OpenAI layout: a quick format test.
_OPENAI_MARKERS = ('input_blocks.', 'middle_block.', 'output_blocks.',
                   'time_embed.')


def _rename(key: str, rules: List[Tuple[str, str]]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def is_openai_state_dict(keys: Iterable[str]) -> bool:
    """Whether keys are in OpenAI's layout (no prefix, ``input_blocks`` ...)."""
    return any(k.startswith(_OPENAI_MARKERS) for k in keys)


def openai_to_mmagic(state_dict: Mapping[str, torch.Tensor],
                     prefix: str = '') -> 'OrderedDict[str, torch.Tensor]':
    """Rename an OpenAI GLIDE UNet state dict to our names.

    Args:
        state_dict: OpenAI keys (``input_blocks.1.0.in_layers.0.weight``...).
        prefix (str): Prepended to every key, e.g. ``'unet.'``.

    Returns:
        OrderedDict: the same tensors under MMagic names.
    """
    out = OrderedDict()
    for key, value in state_dict.items():
        new = prefix + _rename(key, _OPENAI_TO_MMAGIC)
        if new in out:
            raise ValueError(f'two keys map to {new!r}')
        out[new] = value
    return out


def mmagic_to_openai(state_dict: Mapping[str, torch.Tensor],
                     prefix: str = '') -> 'OrderedDict[str, torch.Tensor]':
    """The inverse of :func:`openai_to_mmagic`: keys under ``prefix`` only,
    with the prefix removed."""
    out = OrderedDict()
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        out[_rename(key[len(prefix):], _MMAGIC_TO_OPENAI)] = value
    return out


class StateDictMismatch(KeyError):
    """A state dict that does not fit the model. A ``KeyError`` whose message
    prints as written (``KeyError`` itself shows its repr, with literal
    ``\\n``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def check_state_dict(state_dict: Mapping[str, torch.Tensor],
                     expected: Mapping[str, Tuple[int, ...]],
                     what: str = 'checkpoint', hint: str = '') -> None:
    """Raise :class:`StateDictMismatch` (a ``KeyError``) naming every missing,
    unexpected and wrongly shaped key of ``state_dict`` against ``expected``
    shapes.

    Args:
        state_dict: The tensors to check.
        expected: Key -> shape of the model.
        what (str): What ``state_dict`` is, for the message.
        hint (str): What to do about a mismatch, put first in the message.
    """
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f'{k}: {tuple(state_dict[k].shape)} != {tuple(expected[k])}'
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k])
    ]
    problems = []
    if missing:
        problems.append(f'missing keys ({len(missing)}): {_some(missing)}')
    if unexpected:
        problems.append(
            f'unexpected keys ({len(unexpected)}): {_some(unexpected)}')
    if shapes:
        problems.append(f'shape mismatches ({len(shapes)}): {_some(shapes)}')
    if problems:
        if is_openai_state_dict(unexpected):
            hint = OPENAI_HINT
        head = f'{what} does not match the model' + (f'. {hint}' if hint
                                                     else ':')
        raise StateDictMismatch(head + '\n  ' + '\n  '.join(problems))


def _some(items: List[str], n: int = 20) -> str:
    more = f' ... and {len(items) - n} more' if len(items) > n else ''
    return ', '.join(items[:n]) + more


def _safe_globals() -> list:
    """Plain data classes found in mmengine checkpoints, allowed when reading
    a pickle (no class here runs code on unpickling)."""
    import numpy as np
    allowed = [
        np.dtype, np.ndarray, np.core.multiarray._reconstruct,
        np.core.multiarray.scalar
    ] + [type(np.dtype(t)) for t in np.typecodes['All'] if t not in 'Mm']
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
        allowed.append(HistoryBuffer)
    except ImportError:  # pragma: no cover
        pass
    try:
        from mmengine.config.config import ConfigDict
        allowed.append(ConfigDict)
    except ImportError:  # pragma: no cover
        pass
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only tensors, containers, numpy data and
    mmengine's log buffers. mmengine's ``HistoryBuffer`` pickles its
    statistics as ``getattr(buffer, 'mean')``; ``getattr`` is served by a
    version that only returns public methods of a ``HistoryBuffer``."""

    _MODULES = ('collections', 'torch._utils', 'numpy.core.multiarray',
                'numpy', 'numpy.dtypes', '_codecs')

    def find_class(self, module, name):
        allowed = {(c.__module__, c.__qualname__) for c in _safe_globals()}
        if (module, name) in allowed:
            return super().find_class(module, name)
        if module in ('builtins', '__builtin__') and name == 'getattr':
            return _history_buffer_getattr
        if (module, name) in (('collections', 'OrderedDict'),
                              ('_codecs', 'encode'), ('torch', 'Size'),
                              ('torch', 'device')) or (
                                  module == 'torch._utils'
                                  and name.startswith('_rebuild_')) or (
                                      module == 'torch'
                                      and name.endswith('Storage')) or (
                                          module == 'numpy.dtypes'):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'global {module}.{name} is not allowed')


def _history_buffer_getattr(obj, name):
    from mmengine.logging.history_buffer import HistoryBuffer
    if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and \
            not name.startswith('_') and \
            callable(getattr(HistoryBuffer, name, None)):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({type(obj).__name__}, {name!r}) is not allowed')


class _RestrictedPickle:
    """A ``pickle_module`` for ``torch.load`` using the restricted
    unpickler."""
    Unpickler = _RestrictedUnpickler
    load = staticmethod(
        lambda f, **kw: _RestrictedUnpickler(f, **kw).load())
    __name__ = 'glide_restricted_pickle'


def read_checkpoint(path: str, map_location='cpu') -> dict:
    """Read a checkpoint file without executing pickled code.

    Args:
        path (str): ``.safetensors`` or a torch pickle (``.pth``/``.pt``...).
        map_location: Where tensors go (as ``torch.load``).

    Returns:
        dict: the file's content (a state dict, or mmengine's checkpoint dict
        with ``state_dict``/``meta``/...).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is no checkpoint (a text file, a truncated or
            corrupt file), named in the message.
        pickle.UnpicklingError: the pickle asks for anything but tensors and
            plain data (a crafted file), named in the message.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path!r}')
    kind = _file_kind(path)
    if kind == 'safetensors' or path.endswith('.safetensors'):
        from safetensors.torch import load_file
        device = map_location if isinstance(map_location,
                                            (str, torch.device)) else 'cpu'
        try:
            return load_file(path, device=str(device))
        except Exception as err:  # safetensors' own error types
            raise ValueError(f'cannot read {path!r} as .safetensors: '
                             f'{err}') from None
    if kind is None:
        with open(path, 'rb') as f:
            head = f.read(16)
        raise ValueError(
            f'{path!r} is not a checkpoint: expected a torch file (.pth/.pt, '
            f'as torch.save writes) or a .safetensors file, but it starts '
            f'with {head!r}')
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        first = err
    except (RuntimeError, EOFError, OSError, KeyError, ValueError) as err:
        raise ValueError(f'cannot read {path!r} as a torch checkpoint '
                         f'(truncated or corrupt?): {type(err).__name__}: '
                         f'{err}') from None
    try:  # mmengine runner checkpoints (log buffers in message_hub)
        return torch.load(path, map_location=map_location,
                          weights_only=False, pickle_module=_RestrictedPickle)
    except pickle.UnpicklingError as err:
        raise pickle.UnpicklingError(
            f'refused to read {path!r}: it holds objects other than tensors '
            f'and plain data, and unpickling them could run code. If you '
            f'trust the file, convert it yourself. Details: {err}; '
            f'{str(first).splitlines()[-1] if str(first) else first!r}'
        ) from None


def _file_kind(path: str) -> Optional[str]:
    """``'zip'`` (torch.save), ``'pickle'`` (legacy torch.save),
    ``'safetensors'`` or None, from the first bytes."""
    with open(path, 'rb') as f:
        head = f.read(9)
    if head.startswith(b'PK\x03\x04'):
        return 'zip'
    if head[:1] == b'\x80':  # pickle protocol 2+
        return 'pickle'
    if len(head) == 9 and head[8:9] == b'{':  # header length, then JSON
        return 'safetensors'
    return None


def read_state_dict(path: str, prefix: str = '',
                    map_location='cpu') -> 'OrderedDict[str, torch.Tensor]':
    """The model state dict in a checkpoint file (mmengine's ``state_dict``
    entry if present), keys under ``prefix`` with ``prefix`` removed."""
    ckpt = read_checkpoint(path, map_location)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, Mapping):
        raise ValueError(f'{path!r} holds no state dict')
    return OrderedDict((k[len(prefix):], v) for k, v in state.items()
                       if k.startswith(prefix) and torch.is_tensor(v))


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str,
                    meta: Optional[Dict[str, str]] = None) -> None:
    """Save as ``.safetensors`` (by extension) or an mmengine-style ``.pth``
    (``{'state_dict': ..., 'meta': ...}``)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tensors = OrderedDict((k, v.detach().contiguous().cpu())
                          for k, v in state_dict.items())
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file(tensors, path, metadata=meta)
    else:
        torch.save({'state_dict': tensors, 'meta': dict(meta or {})}, path)


_REGISTERED = False


def register_safe_checkpoint_loader() -> None:
    """Route mmengine's local-file checkpoint loading through
    :func:`read_checkpoint` (safe unpickling; ``.safetensors`` accepted)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from mmengine.runner.checkpoint import CheckpointLoader

    def load_from_local(filename, map_location=None):
        filename = os.path.expanduser(filename)
        if not os.path.isfile(filename):
            raise FileNotFoundError(f'{filename} can not be found.')
        checkpoint = read_checkpoint(filename, map_location or 'cpu')
        if 'state_dict' not in checkpoint:
            # A bare state dict (a .safetensors file): in mmengine's form, so
            # that hooks reading checkpoint['state_dict'] on ``load_from``
            # (EMAHook copies it into the averaged model) find it.
            checkpoint = {'state_dict': checkpoint}
        return checkpoint

    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local,
                                     force=True)
    _REGISTERED = True


# ------------------------------------------------------------ conversion
# Input channels of the first conv identify an OpenAI GLIDE UNet.
OPENAI_KINDS = {3: 'base', 7: 'base_inpaint', 6: 'upsample',
                10: 'upsample_inpaint'}


def openai_kind(state_dict: Mapping[str, torch.Tensor]) -> str:
    """``'base'``, ``'upsample'``, ``'base_inpaint'`` or ``'upsample_inpaint'``
    from an OpenAI GLIDE UNet state dict."""
    first = state_dict.get('input_blocks.0.0.weight')
    if first is None or first.dim() != 4:
        raise KeyError('not an OpenAI GLIDE UNet state dict: no '
                       'input_blocks.0.0.weight')
    kind = OPENAI_KINDS.get(first.shape[1])
    if kind is None:
        raise ValueError(f'unknown GLIDE UNet with {first.shape[1]} input '
                         'channels')
    return kind


def expected_shapes(unet_cfg: dict, prefix: str = '') -> Dict[str, tuple]:
    """Key -> shape of the network a config builds (on the meta device: no
    memory, no time)."""
    from mmagic.registry import MODELS
    with torch.device('meta'):
        net = MODELS.build(unet_cfg)
    return {prefix + k: tuple(v.shape) for k, v in net.state_dict().items()}


def unet_config_from_openai(options: Mapping) -> dict:
    """Our UNet config from the reference's ``model_and_diffusion_defaults()``
    style options (``num_channels``, ``channel_mult``, ``inpaint``, ...)."""
    if options.get('inpaint') and options.get('super_res'):
        kind = 'SuperResInpaintText2ImUNet'
    elif options.get('inpaint'):
        kind = 'InpaintText2ImUNet'
    elif options.get('super_res'):
        kind = 'SuperResText2ImUNet'
    else:
        kind = 'Text2ImUNet'
    mult = options.get('channel_mult', '')
    return dict(
        type=kind,
        image_size=options['image_size'],
        in_channels=3,
        out_channels=6,
        base_channels=options['num_channels'],
        resblocks_per_downsample=options['num_res_blocks'],
        channels_cfg=[int(m) for m in mult.split(',')] if mult else None,
        attention_res=tuple(
            int(r) for r in options['attention_resolutions'].split(',')),
        num_heads=options.get('num_heads', 1),
        num_head_channels=options.get('num_head_channels', 64),
        dropout=options.get('dropout', 0.0),
        use_scale_shift_norm=options.get('use_scale_shift_norm', True),
        resblock_updown=options.get('resblock_updown', True),
        text_ctx=options.get('text_ctx', 128),
        xf_width=options.get('xf_width', 512),
        xf_layers=options.get('xf_layers', 16),
        xf_heads=options.get('xf_heads', 8),
        xf_final_ln=options.get('xf_final_ln', True),
        xf_padding=options.get('xf_padding', True))


def match_cascade(model, state_dict: dict, prefix: str, expected: dict,
                  stage_networks: Mapping[str, str], stage: str) -> None:
    """Fit a cascade checkpoint to ``model``'s networks, in place.

    The shapes checkpoint holds every network of the cascade (``unet.*``,
    ``unet_up.*``, ``classifier.*``): a model without the upsampler or the
    CLIP guide loads the networks it has; a model that trains one of them
    (``stage`` ``'upsample'`` or ``'clip'``) loads a checkpoint without it,
    which keeps its initialisation. Either is logged.

    Args:
        model: The ``Glide`` model loading the state dict.
        state_dict (dict): The state dict being loaded (changed in place).
        prefix (str): The model's key prefix in it.
        expected (dict): Key -> shape the model expects (changed in place).
        stage_networks (Mapping): ``train_cfg.stage`` -> model attribute.
        stage (str): The model's ``train_cfg.stage``.
    """
    from mmengine.logging import print_log
    for name, attr in stage_networks.items():
        if name == 'base':  # every model has one
            continue
        key = prefix + attr + '.'
        in_checkpoint = [k for k in state_dict if k.startswith(key)]
        if getattr(model, attr) is None and in_checkpoint:
            for k in in_checkpoint:
                del state_dict[k]
            print_log(f"the checkpoint's {attr} ({len(in_checkpoint)} "
                      f'{attr}.* tensors) is not loaded: this model has no '
                      f'{attr}', logger='current')
        elif (getattr(model, attr) is not None and not in_checkpoint
              and stage == name):
            for k in [k for k in expected if k.startswith(key)]:
                del expected[k]
            print_log(f'the checkpoint has no {attr}: it starts from its '
                      f'initialisation (train_cfg.stage={name!r})',
                      logger='current')


def widen_first_convs(state_dict: dict, prefix: str, expected: dict) -> None:
    """Inpainting fine-tuning from a base checkpoint, in place: the first
    conv of each UNet gets zero weights for the extra (image, mask) input
    channels, so training starts from the base model exactly."""
    from mmengine.logging import print_log
    for net in ('unet', 'unet_up'):
        key = f'{prefix}{net}.in_blocks.0.0.weight'
        if key not in state_dict or key not in expected:
            continue
        w, want = state_dict[key], expected[key]
        if w.dim() != 4 or w.shape[1] >= want[1] or w.shape[0] != want[0]:
            continue
        pad = w.new_zeros(w.shape[0], want[1] - w.shape[1], *w.shape[2:])
        if net == 'unet_up':  # x, (image, mask), then low_res
            c = w.shape[1] // 2
            state_dict[key] = torch.cat([w[:, :c], pad, w[:, c:]], 1)
        else:
            state_dict[key] = torch.cat([w, pad], dim=1)
        print_log(f'{key}: {w.shape[1]} -> {want[1]} input channels (new ones '
                  'zero-initialised)', logger='current')
