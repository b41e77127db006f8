"""Precision and memory format of GLIDE's UNets."""
from typing import Iterable, Sequence, Set, Union

import torch
import torch.nn as nn

DTYPE_NAMES = {torch.float32: 'float32', torch.bfloat16: 'bfloat16',
               torch.float16: 'float16'}


def parse_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    """``'float32'``, ``'bfloat16'``, ``'float16'`` or the torch dtype."""
    if dtype not in DTYPE_NAMES and dtype not in DTYPE_NAMES.values():
        raise ValueError("dtype must be 'float32', 'bfloat16' or "
                         f"'float16' (or the torch dtype), got {dtype!r}")
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def cast_network(net: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast a UNet's weights to ``dtype``, keeping GroupNorm and LayerNorm
    in float32 (the reference's mixed precision)."""
    net.to(dtype)
    for m in net.modules():
        if isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
            m.float()
    return net


def channels_last_names(channels_last: Union[bool, Sequence[str]],
                        names: Iterable[str]) -> Set[str]:
    """The networks to keep channels-last: True (all of ``names``), False
    (none) or a list of some of ``names``."""
    names = list(names)
    if isinstance(channels_last, bool):
        return set(names) if channels_last else set()
    if isinstance(channels_last, (list, tuple)) and \
            set(channels_last) <= set(names):
        return set(channels_last)
    raise ValueError(f'channels_last must be True, False or a list of '
                     f'{names}, got {channels_last!r}')
