"""Low-rank adapters (LoRA, Hu et al. 2021) on GLIDE's weights.

An adapter adds ``scale * up @ down`` (rank r) to a layer's weight. It adapts
the *weight*, not the layer's ``forward``: GLIDE's attention blocks read
``qkv.weight`` and ``proj_out.weight`` directly (``F.linear`` on the 1x1
convolutions' weights), so a wrapper around the layer (mmagic's
``LoRAWrapper``, peft's LoRA layers) is never called there. An adapted layer
gets a ``weight`` property that reads as the base weight plus its adapters'
terms, so every path sees it (``F.linear``, ``Conv1d.forward``, the text
transformer's ``nn.Linear``). The base parameter keeps its place and name
(``<layer>.weight``), so a base checkpoint loads unchanged; the adapters are
``<layer>.lora.<name>.down`` / ``.up`` and start as the identity (up = 0).

The configuration follows MMagic's ``set_lora``: ``rank``, ``scale`` and
``target_modules``, a list of names matched as a regular expression on the
whole layer name or as its suffix, each a string or a
``dict(target_module=..., rank=..., scale=...)``.

An adapter file is float16 ``.safetensors``: ``<layer>.lora_down`` and
``<layer>.lora_up`` per layer (names from the ``Glide`` model, ``unet.*``),
with the metadata ``format`` (:data:`FORMAT`) and ``scale``.
"""
import os
import re
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

FORMAT = 'glide-lora-1'
# Attention in the UNet (qkv, proj_out, the text keys/values encoder_kv) and
# the text transformer (its attention and MLP) and its projection into the
# timestep embedding.
DEFAULT_TARGETS = ('qkv', 'proj_out', 'encoder_kv', 'c_qkv', 'c_proj', 'c_fc',
                   'transformer_proj')
ADAPTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
Target = Union[str, dict]


class LoRA(nn.Module):
    """One adapter of one layer: the weight term ``scale * up @ down``.

    Args:
        out_features (int): The layer's output features (weight rows).
        in_features (int): The layer's inputs per output (the weight's other
            dimensions flattened: ``in * kernel`` for a convolution).
        rank (int): r, in [1, min(out_features, in_features)].
        scale (float): Factor of the term (MMagic's ``scale``; peft's
            ``alpha / r``).
    """

    def __init__(self, out_features: int, in_features: int, rank: int,
                 scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)
        self.down = nn.Parameter(torch.empty(rank, in_features))
        self.up = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.normal_(self.down, std=1.0 / rank)  # as mmagic's LoRALinear

    @property
    def rank(self) -> int:
        return self.down.shape[0]

    def delta(self) -> torch.Tensor:
        """The weight term (out_features, in_features)."""
        return self.scale * (self.up @ self.down)

    def extra_repr(self) -> str:
        return (f'out={self.up.shape[0]}, in={self.down.shape[1]}, '
                f'rank={self.rank}, scale={self.scale:g}')


class AdaptedWeight:
    """Mixed into an adapted layer's class: ``weight`` reads as the base
    parameter plus the terms of the adapters in ``self.lora`` (a
    ``ModuleDict``), or the base parameter itself while they are off."""

    @property
    def weight(self) -> torch.Tensor:
        base = self._parameters['weight']
        if not self.lora_active or not len(self.lora):
            return base
        delta = sum(a.delta() for a in self.lora.values())
        return base + delta.to(base.dtype).view(base.shape)


_ADAPTED_CLASSES: Dict[type, type] = {}


def _adapted_class(cls: type) -> type:
    """``cls`` with :class:`AdaptedWeight` mixed in (one class per layer
    type, so that adapted layers of a type share it)."""
    if cls not in _ADAPTED_CLASSES:
        _ADAPTED_CLASSES[cls] = type(f'LoRA{cls.__name__}',
                                     (AdaptedWeight, cls), {})
    return _ADAPTED_CLASSES[cls]


def is_adapted(module: nn.Module) -> bool:
    """Whether ``module`` carries adapters."""
    return isinstance(module, AdaptedWeight)


def adapted_layers(root: nn.Module) -> Dict[str, nn.Module]:
    """Name -> layer of every adapted layer under ``root``."""
    return OrderedDict((n, m) for n, m in root.named_modules()
                       if is_adapted(m))


def weight_matrix_shape(layer: nn.Module) -> Tuple[int, int]:
    """(out, in) of a layer's weight as a matrix."""
    w = layer._parameters['weight']
    return w.shape[0], w[0].numel()


def _target_entries(target_modules, rank, scale) -> List[Tuple[str, int,
                                                               float]]:
    """(pattern, rank, scale) of each ``target_modules`` entry."""
    if isinstance(target_modules, (str, dict)):
        target_modules = [target_modules]
    if not isinstance(target_modules, (list, tuple)) or not target_modules:
        raise ValueError('lora_config.target_modules must be a non-empty '
                         'list of layer names (regular expressions or '
                         f'suffixes), got {target_modules!r}')
    entries = []
    for entry in target_modules:
        if isinstance(entry, str):
            entries.append((entry, rank, scale))
        elif isinstance(entry, dict) and 'target_module' in entry and set(
                entry) <= {'target_module', 'rank', 'scale'}:
            entries.append((entry['target_module'], entry.get('rank', rank),
                            entry.get('scale', scale)))
        else:
            raise ValueError(
                'each lora_config.target_modules entry must be a str or '
                'dict(target_module=..., rank=..., scale=...), got '
                f'{entry!r}')
    return entries


def _matches(pattern: str, name: str) -> bool:
    """MMagic's rule: the whole name matches the regular expression, or the
    name ends with the pattern (at a dot)."""
    return (re.fullmatch(pattern, name) is not None or name == pattern
            or name.endswith('.' + pattern))


def find_targets(net: nn.Module, target_modules: Sequence[Target],
                 rank: int = 4, scale: float = 1.0
                 ) -> Dict[str, Tuple[nn.Module, int, float]]:
    """The layers of ``net`` that ``target_modules`` names (MMagic's
    ``set_lora`` matching), with each one's rank and scale.

    Raises:
        ValueError: an entry that matches no layer, or matches a module that
            is not a Linear/Conv1d/Conv2d layer, or a rank out of range.
    """
    found = OrderedDict()
    for pattern, r, s in _target_entries(target_modules, rank, scale):
        hits = [(n, m) for n, m in net.named_modules() if n
                and _matches(pattern, n)]
        if not hits:
            raise ValueError(f'lora_config.target_modules entry {pattern!r} '
                             'matches no layer of the network')
        for name, module in hits:
            if not isinstance(module, ADAPTABLE) or getattr(
                    module, 'groups', 1) != 1:
                raise ValueError(
                    f'lora_config.target_modules entry {pattern!r} matches '
                    f'{name!r}, a {type(module).__name__}: adapters fit '
                    'nn.Linear, nn.Conv1d and nn.Conv2d (groups=1) layers')
            out_f, in_f = weight_matrix_shape(module)
            if not isinstance(r, int) or not 1 <= r <= min(out_f, in_f):
                raise ValueError(
                    f'lora_config rank for {name!r} must be an int in [1, '
                    f'{min(out_f, in_f)}] (its weight is {out_f}x{in_f}), '
                    f'got {r!r}')
            found.setdefault(name, (module, r, float(s)))
    return found


def adapter_key(name: str) -> str:
    """The ``ModuleDict`` key of the adapters ``name``: word characters
    only, and never a ``Module`` attribute (``'half'`` -> ``'half_'``)."""
    key = re.sub(r'\W', '_', str(name)) or '_'
    return key + '_' if hasattr(nn.ModuleDict(), key) else key


def attach(layer: nn.Module, adapter: LoRA, name: str) -> None:
    """Give ``layer`` the adapter ``adapter`` under ``name``."""
    if not is_adapted(layer):
        layer.__class__ = _adapted_class(type(layer))
        layer.lora = nn.ModuleDict()
        layer.lora_active = True
    key = adapter_key(name)
    if key in layer.lora:
        raise ValueError(f'the layer already has an adapter named {name!r}')
    base = layer._parameters['weight']
    layer.lora[key] = adapter.to(base.device)


def detach(layer: nn.Module, name: Optional[str] = None) -> None:
    """Remove ``layer``'s adapter ``name`` (None: all); the layer becomes its
    plain class again when none is left. The base weight is not touched."""
    if not is_adapted(layer):
        return
    keys = [adapter_key(name)] if name is not None else list(layer.lora)
    for key in keys:
        if key in layer.lora:
            del layer.lora[key]
    if not len(layer.lora):
        del layer.lora
        del layer.lora_active
        plain = {v: k for k, v in _ADAPTED_CLASSES.items()}
        layer.__class__ = plain[type(layer)]


def add_lora(root: nn.Module, target_modules: Sequence[Target] =
             DEFAULT_TARGETS, rank: int = 4, scale: float = 1.0,
             under: str = '', name: str = 'default') -> List[str]:
    """Add adapters (identity at first: ``up`` = 0) to the layers of
    ``root.<under>`` that ``target_modules`` names.

    Args:
        root (nn.Module): The model (a ``Glide``).
        target_modules (list): MMagic's ``target_modules`` (see the module
            docstring), matched on names relative to ``root.<under>``.
        rank (int): Default rank. Defaults to 4.
        scale (float): Default scale. Defaults to 1.
        under (str): The network adapted (``'unet'``); '' for ``root``.
        name (str): The adapters' name. Defaults to ``'default'``.

    Returns:
        list[str]: The adapted layers' names, relative to ``root``.
    """
    net = root.get_submodule(under) if under else root
    prefix = under + '.' if under else ''
    targets = find_targets(net, target_modules, rank, scale)
    for layer, r, s in targets.values():
        attach(layer, LoRA(*weight_matrix_shape(layer), r, s), name)
    return [prefix + n for n in targets]


def apply_lora_config(root: nn.Module, lora_config: dict,
                      under: str) -> int:
    """``Glide``'s ``lora_config``: add the adapters to ``root.<under>``
    and freeze everything else.

    Returns:
        int: The number of trainable (adapter) parameters.
    """
    unknown = sorted(set(lora_config) - {'rank', 'scale', 'target_modules'})
    if unknown:
        raise ValueError(f'unknown lora_config keys {unknown}; known: rank, '
                         'scale, target_modules')
    add_lora(root, under=under, **lora_config)
    return train_only_lora(root)


def remove_lora(root: nn.Module, name: Optional[str] = None) -> None:
    """Remove the adapters named ``name`` (None: all) from every layer."""
    for layer in adapted_layers(root).values():
        detach(layer, name)


def train_only_lora(root: nn.Module) -> int:
    """Freeze every parameter of ``root`` but the adapters'.

    Returns:
        int: The number of trainable parameters.
    """
    root.requires_grad_(False)
    trainable = 0
    for layer in adapted_layers(root).values():
        layer.lora.requires_grad_(True)
        trainable += sum(p.numel() for p in layer.lora.parameters())
    return trainable


@contextmanager
def lora_disabled(root: nn.Module) -> Iterator[None]:
    """Within: every adapted layer's ``weight`` is its base parameter (for
    initialisers that write to ``layer.weight``, or the base model's
    samples)."""
    layers = list(adapted_layers(root).values())
    states = [layer.lora_active for layer in layers]
    for layer in layers:
        layer.lora_active = False
    try:
        yield
    finally:
        for layer, state in zip(layers, states):
            layer.lora_active = state


def is_adapter_key(key: str) -> bool:
    """Whether a model state-dict key is an adapter's."""
    return re.search(r'\.lora\.[^.]+\.(down|up)$', key) is not None


def lora_state_dict(root: nn.Module, name: str = 'default'
                    ) -> 'OrderedDict[str, torch.Tensor]':
    """The adapters ``name`` as an adapter file's tensors
    (``<layer>.lora_down``/``<layer>.lora_up``, scale folded into ``up``)."""
    state = OrderedDict()
    for layer_name, layer in adapted_layers(root).items():
        if adapter_key(name) in layer.lora:
            adapter = layer.lora[adapter_key(name)]
            state[f'{layer_name}.lora_down'] = adapter.down.detach()
            state[f'{layer_name}.lora_up'] = adapter.up.detach() * \
                adapter.scale
    if not state:
        raise ValueError(f'the model has no adapters named {name!r}')
    return state


def save_lora(root: nn.Module, path: str, name: str = 'default') -> int:
    """Write the adapters ``name`` to ``path`` (float16 ``.safetensors``).

    The file is written whole or not at all
    (:func:`projects.glide.files.atomic_write`).

    Returns:
        int: The file's size in bytes.
    """
    from safetensors.torch import save_file

    from ..files import atomic_write
    if not path.endswith('.safetensors'):
        raise ValueError(f'an adapter file must be .safetensors, got {path!r}')
    tensors = {k: v.to(torch.float16).contiguous().cpu()
               for k, v in lora_state_dict(root, name).items()}
    with atomic_write(path) as temporary:
        save_file(tensors, temporary,
                  metadata=dict(format=FORMAT, scale='1.0'))
    return os.path.getsize(path)


def _layer_pairs(tensors: Dict[str, torch.Tensor], path: str
                 ) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """Layer -> (down, up) of an adapter file's tensors; an error names the
    file and the layer of a stray or missing key."""
    layers = OrderedDict()
    for key in tensors:
        match = re.fullmatch(r'(.+)\.lora_(down|up)', key)
        if match is None:
            raise ValueError(f'{path}: key {key!r} is not an adapter key '
                             '(<layer>.lora_down / <layer>.lora_up)')
        layers.setdefault(match.group(1), {})[match.group(2)] = tensors[key]
    for layer, pair in layers.items():
        for part in ('down', 'up'):
            if part not in pair:
                raise ValueError(f'{path}: layer {layer!r} misses the key '
                                 f'{layer}.lora_{part}')
    return OrderedDict((k, (v['down'], v['up'])) for k, v in layers.items())


def read_lora(path: str) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """An adapter file's layers: name -> (down, up) float32 tensors."""
    from safetensors import safe_open
    if not os.path.isfile(path):
        raise FileNotFoundError(f'adapter file not found: {path!r}')
    try:
        with safe_open(path, framework='pt') as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k).float() for k in f.keys()}
    except Exception as err:  # safetensors' own errors have no file name
        raise ValueError(f'{path}: not a .safetensors adapter file '
                         f'({err})') from None
    if meta.get('format') != FORMAT:
        raise ValueError(f'{path}: not a GLIDE LoRA adapter (metadata format '
                         f'{meta.get("format")!r}, expected {FORMAT!r}; '
                         'write adapters with tools/train_lora.py or '
                         'Glide.save_lora)')
    scale = float(meta.get('scale', 1.0))
    pairs = _layer_pairs(tensors, path)
    return OrderedDict((k, (d, u * scale)) for k, (d, u) in pairs.items())


def _check_layer(root: nn.Module, path: str, layer_name: str,
                 down: torch.Tensor, up: torch.Tensor) -> nn.Module:
    """The layer of ``root`` an adapter file's entry adapts; an error names
    the file and the layer when it does not fit."""
    try:
        layer = root.get_submodule(layer_name)
    except AttributeError:
        layer = None
    if not isinstance(layer, ADAPTABLE):
        raise ValueError(f'{path}: layer {layer_name!r} is not a '
                         'Linear/Conv layer of this model (an adapter made '
                         'for another model?)')
    out_f, in_f = weight_matrix_shape(layer)
    if down.dim() != 2 or up.dim() != 2 or down.shape[0] != up.shape[1] \
            or down.shape[1] != in_f or up.shape[0] != out_f:
        raise ValueError(
            f'{path}: layer {layer_name!r}: lora_up {tuple(up.shape)} @ '
            f'lora_down {tuple(down.shape)} does not make its {out_f}x{in_f} '
            'weight (an adapter made for another model?)')
    return layer


def load_lora(root: nn.Module, path: str, scale: float = 1.0,
              name: Optional[str] = None) -> str:
    """Add the adapters of the file ``path`` to ``root``, times ``scale``.

    Every layer is checked before any is changed: a key that is not an
    adapter's, a layer missing from the model, a missing ``down``/``up``
    key or a shape that does not fit raises a ``ValueError`` naming the file
    and the layer.

    Args:
        root (nn.Module): The model (a ``Glide``).
        path (str): An adapter file (:func:`save_lora`).
        scale (float): Strength of the adapter (1: as trained).
        name (str, optional): The adapters' name; defaults to the file's
            name without extension.

    Returns:
        str: The name the adapters got (for :func:`remove_lora`).
    """
    from ..checks import check_float
    scale = check_float(scale, 'scale')
    name = name or os.path.splitext(os.path.basename(path))[0]
    layers = adapted_layers(root)
    if any(adapter_key(name) in layer.lora for layer in layers.values()):
        raise ValueError(f'an adapter named {name!r} is already loaded; '
                         'unload it first or pass another name')
    fitted = [(_check_layer(root, path, k, d, u), d, u)
              for k, (d, u) in read_lora(path).items()]
    for layer, down, up in fitted:
        adapter = LoRA(up.shape[0], down.shape[1], down.shape[0], scale)
        with torch.no_grad():
            adapter.down.copy_(down)
            adapter.up.copy_(up)
        attach(layer, adapter.requires_grad_(False), name)
    return name


def merged_state_dict(root: nn.Module) -> 'OrderedDict[str, torch.Tensor]':
    """``root``'s state dict with its adapters folded into the weights: the
    base model's keys only, the checkpoint of the adapted model."""
    state = OrderedDict((k, v) for k, v in root.state_dict().items()
                        if not is_adapter_key(k))
    with torch.no_grad():
        for layer_name, layer in adapted_layers(root).items():
            state[f'{layer_name}.weight'] = layer.weight.detach().clone()
    return state
