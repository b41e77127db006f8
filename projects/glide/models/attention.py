"""GLIDE's attention: the block that attends to the spatial tokens and the
text tokens, and its kernels.

* :func:`legacy_qkv_attention`: the reference's einsum arithmetic (the
  benchmark's baseline, ``Text2ImUNet.set_sdpa(False)``);
* :func:`token_qkv_attention`: the same on (batch, heads, tokens, channels),
  with torch's ``scaled_dot_product_attention`` or, on CPUs in low
  precision, :func:`chunked_attention`.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmagic.models.editors.ddpm.denoising_unet import MultiHeadAttentionBlock
from mmagic.registry import MODELS


def legacy_qkv_attention(qkv: torch.Tensor, encoder_kv: Optional[torch.Tensor],
                         num_heads: int) -> torch.Tensor:
    """The reference's ``QKVAttentionLegacy``: einsum and a float32 softmax
    (the benchmark's baseline).

    Args:
        qkv (Tensor): (B, H * 3 * ch, T), heads split before q/k/v.
        encoder_kv (Tensor, optional): (B, H * 2 * ch, L) text keys/values,
            placed in front of the image keys/values.
        num_heads (int): H.

    Returns:
        Tensor: (B, H * ch, T).
    """
    bs, width, length = qkv.shape
    ch = width // (3 * num_heads)
    q, k, v = qkv.reshape(bs * num_heads, ch * 3, length).split(ch, dim=1)
    if encoder_kv is not None:
        ek, ev = encoder_kv.reshape(bs * num_heads, ch * 2, -1).split(ch, dim=1)
        k = torch.cat([ek, k], dim=-1)
        v = torch.cat([ev, v], dim=-1)
    # Scale q and k by ch**-0.25 each, as the reference (stabler in fp16).
    scale = ch**-0.25
    weight = torch.einsum('bct,bcs->bts', q * scale, k * scale)
    weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
    return torch.einsum('bts,bcs->bct', weight, v).reshape(bs, -1, length)


def token_qkv_attention(qkv: torch.Tensor, encoder_kv: Optional[torch.Tensor],
                        num_heads: int) -> torch.Tensor:
    """The same attention on tokens: :func:`chunked_attention` on CPUs in
    low precision, else ``scaled_dot_product_attention``.

    Heads become a dimension of their own with the channels last (stride 1),
    the layout in which torch's fused kernels run (on the CPU 3x faster than
    the generic path that 3-D or channel-strided inputs fall back to).

    Args:
        qkv (Tensor): (B, T, H * 3 * ch), heads split before q/k/v.
        encoder_kv (Tensor, optional): (B, H * 2 * ch, L), as
            :func:`legacy_qkv_attention` takes it.
        num_heads (int): H.

    Returns:
        Tensor: (B, T, H * ch).
    """
    bs, length, width = qkv.shape
    ch = width // (3 * num_heads)
    qkv = qkv.view(bs, length, num_heads, 3 * ch).transpose(1, 2)
    q, k, v = qkv.split(ch, dim=-1)  # (B, H, T, ch) each
    if encoder_kv is not None:
        ekv = encoder_kv.view(bs, num_heads, 2 * ch, -1).transpose(-1, -2)
        ek, ev = ekv.split(ch, dim=-1)  # (B, H, L, ch)
        k = torch.cat([ek, k], dim=2)
        v = torch.cat([ev, v], dim=2)
    scale = ch**-0.5  # the reference's ch**-0.25 on q and on k, at once
    if q.device.type == 'cpu' and q.dtype != torch.float32:
        out = chunked_attention(q, k, v, scale)
    else:
        out = F.scaled_dot_product_attention(q, k, v, scale=scale)
    return out.transpose(1, 2).reshape(bs, length, -1)


def chunked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      scale: float, budget: int = 1 << 23) -> torch.Tensor:
    """``softmax(q @ k^T * scale) @ v`` over blocks of queries.

    The reference's arithmetic in low precision (scores rounded to the
    dtype, softmax computed in float32, probabilities rounded to the dtype
    before ``@ v``), by three library calls per block of queries whose scores
    fit in ``budget`` bytes (8 MiB, cache-resident). On CPUs in bfloat16 it
    beats torch's flash kernel at GLIDE's shapes: 1.8-2.3x at 16x16 and 8x8,
    1.5-1.7x at 32x32 (the base model's attention per guided step 221 ->
    131 ms in ``tools/benchmark.py``'s profile); float32 keeps the flash
    kernel, faster there.

    Args:
        q (Tensor): (B, H, T, C).
        k, v (Tensor): (B, H, S, C).
        scale (float): Applied to ``q``.
        budget (int): Bytes of scores per block.

    Returns:
        Tensor: (B, H, T, C).
    """
    b, h, length, _ = q.shape
    per_row = b * h * k.shape[2] * q.element_size()
    rows = 1 << max(4, (budget // per_row).bit_length() - 1)  # power of 2
    q = q * scale
    kt = k.transpose(-1, -2)
    if length <= rows:
        return torch.matmul(torch.softmax(torch.matmul(q, kt), -1), v)
    out = q.new_empty(b, h, length, v.shape[-1])
    for i in range(0, length, rows):
        scores = torch.matmul(q[:, :, i:i + rows], kt)
        torch.matmul(torch.softmax(scores, -1), v, out=out[:, :, i:i + rows])
    return out


@MODELS.register_module()
class GlideAttentionBlock(MultiHeadAttentionBlock):
    """Spatial self-attention that also attends to the text tokens.

    Same parameters (``norm``, ``qkv``, ``proj_out``, ``encoder_kv``) and
    arguments as mmagic's ``MultiHeadAttentionBlock``; the text keys/values
    come precomputed from :meth:`project_text`.
    """

    def __init__(self, *args, use_new_attention_order: bool = False, **kwargs):
        if use_new_attention_order:
            raise ValueError('GLIDE uses the legacy attention order; '
                             'use_new_attention_order must be False')
        super().__init__(*args, **kwargs)
        # mmagic's attention submodule holds no weights; SDPA replaces it.
        del self.attention
        #: False: the reference's einsum attention (the benchmark's
        #: baseline); see :meth:`Text2ImUNet.set_sdpa`.
        self.use_sdpa = True

    def project_text(self, xf_out: torch.Tensor) -> torch.Tensor:
        """Text keys/values (B, 2C, L) from transformer tokens (B, W, L)."""
        return self.encoder_kv(xf_out)

    def forward(self, x: torch.Tensor,
                encoder_kv: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, c, *spatial = x.shape
        if not self.use_sdpa:
            x = x.reshape(b, c, -1)
            qkv = self.qkv(self.norm(x))
            h = legacy_qkv_attention(qkv, encoder_kv, self.num_heads)
            return (x + self.proj_out(h)).reshape(b, c, *spatial)
        # Tokens (B, T, C): the 1x1 convolutions become matrix products
        # over the channels, a free view of a channels-last input.
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        qkv = F.linear(tokens, self.qkv.weight[..., 0], self.qkv.bias)
        h = token_qkv_attention(qkv, encoder_kv, self.num_heads)
        h = F.linear(h, self.proj_out.weight[..., 0], self.proj_out.bias)
        h = h.transpose(1, 2).reshape(b, c, *spatial)  # channels-last
        if x.is_contiguous():  # keep the network's layout (no mixed convs)
            h = h.contiguous()
        return x + h
