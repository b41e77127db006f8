"""GLIDE's GroupNorm: statistics and affine in float32 whatever the dtype
of the weights and activations (the reference's mixed precision)."""
from copy import deepcopy

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmagic.registry import MODELS


@MODELS.register_module('GlideGN32')
class GroupNorm32(nn.GroupNorm):
    """GroupNorm whose statistics and affine run in float32 (as the reference),
    returning the input dtype; works with low-precision weights too."""

    def __init__(self, num_channels: int, num_groups: int = 32, **kwargs):
        super().__init__(num_groups, num_channels, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.weight.float(), self.bias.float()
        low = x.dtype in (torch.bfloat16, torch.float16)
        if low and x.device.type == 'cpu':
            # The CPU kernel takes low-precision input with float32
            # parameters and computes in float32 internally: the same
            # result without materialising a float32 copy of ``x`` (and of
            # the output), which cost 10x the norm itself.
            return F.group_norm(x, self.num_groups, weight, bias, self.eps)
        return F.group_norm(x.float(), self.num_groups, weight, bias,
                            self.eps).to(x.dtype)


def glide_norm_cfg(norm_cfg: dict) -> dict:
    """mmagic's norm config with GroupNorm replaced by :class:`GroupNorm32`."""
    norm_cfg = deepcopy(norm_cfg)
    if norm_cfg.get('type') in ('GN32', 'GN'):
        norm_cfg['type'] = 'GlideGN32'
    return norm_cfg
