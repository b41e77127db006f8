"""GLIDE's text transformer (CLIP-style, pre-LayerNorm, no attention mask).

Parameter names follow the reference (``resblocks.N.attn.c_qkv`` ...), which
the released MMagic and OpenAI checkpoints share.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.normalized_shape,
                            self.weight.float(), self.bias.float(),
                            self.eps).to(x.dtype)


class MultiheadSelfAttention(nn.Module):
    """Self-attention with the reference's per-head ``[q, k, v]`` layout.

    Args:
        width (int): Model width.
        heads (int): Number of heads.
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f'width {width} is not divisible by heads {heads}')
        self.heads = heads
        self.c_qkv = nn.Linear(width, width * 3)
        self.c_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bs, n_ctx, width = x.shape
        qkv = self.c_qkv(x).view(bs, n_ctx, self.heads, -1).transpose(1, 2)
        q, k, v = qkv.chunk(3, dim=-1)  # (B, H, L, ch) each
        scale = q.shape[-1]**-0.25  # on q and k each, as the reference
        out = F.scaled_dot_product_attention(q * scale, k * scale, v,
                                             scale=1.0)
        return self.c_proj(out.transpose(1, 2).reshape(bs, n_ctx, width))


class MLP(nn.Module):
    """Two-layer GELU MLP with 4x expansion."""

    def __init__(self, width: int):
        super().__init__()
        self.c_fc = nn.Linear(width, width * 4)
        self.c_proj = nn.Linear(width * 4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = MultiheadSelfAttention(width, heads)
        self.ln_1 = LayerNorm32(width)
        self.mlp = MLP(width)
        self.ln_2 = LayerNorm32(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of ``layers`` residual attention blocks of ``width``."""

    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width = width
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x
