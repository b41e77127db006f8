"""GLIDE's noised CLIP: CLIP guidance, the paper's second guidance strategy.

A CLIP whose image encoder (a ViT over 64x64 images) was trained on noised
images and knows the timestep, and its text encoder (a causal transformer over
77 CLIP BPE tokens). Guidance follows the gradient of
``exp(logit_scale) * <z_text, z_image(x_t, t)>`` with respect to ``x_t``.

Parameter names are those of OpenAI's ``clip_text_enc.pt`` /
``clip_image_enc.pt`` (``blocks.input.w_voc``, ``blocks.block_0.f_attn.f_q.w``
...), under ``text_encoder.`` and ``image_encoder.``.
"""
import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmagic.registry import MODELS

# The original CLIP's pixel statistics (on images in [0, 255]).
IMAGE_MEANS = (122.77093945, 116.74601272, 104.09373519)
IMAGE_STDS = (68.50053285, 66.63215831, 70.32316309)


class LayerNorm(nn.Module):
    """LayerNorm in float32 with the reference's parameter names ``g``/``b``."""

    def __init__(self, n_state: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.g = nn.Parameter(torch.ones(n_state))
        self.b = nn.Parameter(torch.zeros(n_state))

    def forward(self, x):
        return F.layer_norm(x.float(), self.g.shape, self.g.float(),
                            self.b.float(), self.eps)


class Affine(nn.Module):
    """A linear layer with the reference's names ``w`` (out, in) and ``b``."""

    def __init__(self, n_in: int, n_out: int, use_bias: bool = True,
                 std: Optional[float] = None):
        super().__init__()
        std = math.sqrt(2 / (n_in + n_out)) if std is None else std
        self.w = nn.Parameter(torch.randn(n_out, n_in) * std)
        self.b = nn.Parameter(torch.zeros(n_out)) if use_bias else None

    def forward(self, x):
        return F.linear(x, self.w.to(x.dtype),
                        None if self.b is None else self.b.to(x.dtype))


class AttentionResblock(nn.Module):
    """Pre-LN multi-head attention, residual; keys have no bias."""

    def __init__(self, n_state: int, n_heads: int, n_resblocks: int,
                 causal: bool):
        super().__init__()
        self.n_heads, self.causal = n_heads, causal
        std = 1 / math.sqrt(n_state)
        self.ln = LayerNorm(n_state)
        self.f_q = Affine(n_state, n_state, std=std)
        self.f_k = Affine(n_state, n_state, use_bias=False, std=std)
        self.f_v = Affine(n_state, n_state, std=std)
        self.f_c = Affine(n_state, n_state,
                          std=1 / math.sqrt(n_state * n_resblocks**2))

    def forward(self, m):
        r = self.ln(m)
        b, n, c = r.shape
        q, k, v = (f(r).view(b, n, self.n_heads, -1).transpose(1, 2)
                   for f in (self.f_q, self.f_k, self.f_v))
        scale = q.shape[-1]**-0.25  # on q and k each, as the reference
        r = F.scaled_dot_product_attention(
            q * scale, k * scale, v, is_causal=self.causal, scale=1.0)
        return m + self.f_c(r.transpose(1, 2).reshape(b, n, c))


class FullyConnectedResblock(nn.Module):
    """Pre-LN GELU MLP with 4x expansion, residual."""

    def __init__(self, n_state: int, n_resblocks: int):
        super().__init__()
        self.ln = LayerNorm(n_state)
        self.f_1 = Affine(n_state, 4 * n_state,
                          std=math.sqrt(2 / (4 * n_state)))
        self.f_2 = Affine(4 * n_state, n_state,
                          std=1 / math.sqrt(n_state * n_resblocks**2))

    def forward(self, m):
        return m + self.f_2(F.gelu(self.f_1(self.ln(m))))


class TransformerBlock(nn.Module):

    def __init__(self, n_state, n_heads, n_resblocks, causal):
        super().__init__()
        self.f_attn = AttentionResblock(n_state, n_heads, n_resblocks, causal)
        self.f_mlp = FullyConnectedResblock(n_state, n_resblocks)

    def forward(self, x):
        return self.f_mlp(self.f_attn(x))


class TextEmbedding(nn.Module):

    def __init__(self, n_vocab, n_context, n_state):
        super().__init__()
        self.w_voc = nn.Parameter(torch.randn(n_vocab, n_state) * 0.02)
        self.w_pos = nn.Parameter(torch.randn(n_context, n_state) * 0.01)

    def forward(self, tokens):
        return F.embedding(tokens, self.w_voc) + self.w_pos[None]


class ImageEmbedding(nn.Module):
    """Patches of the (noised) image, with a timestep token in front."""

    def __init__(self, image_size, patch_size, n_state, n_timestep):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f'image_size {image_size} is not a multiple of '
                             f'patch_size {patch_size}')
        self.image_size, self.patch_size = image_size, patch_size
        n_patch = image_size // patch_size
        self.w_t = nn.Parameter(
            torch.randn(n_timestep, n_state) / math.sqrt(n_state))
        self.patch_proj = nn.Parameter(
            torch.randn(n_state, 3, patch_size, patch_size) *
            math.sqrt(2 / (n_state * patch_size**2)))
        self.w_pos = nn.Parameter(
            torch.randn(1 + n_patch**2, n_state) / math.sqrt(n_state))
        self.ln = LayerNorm(n_state)
        self.register_buffer('means', torch.tensor(IMAGE_MEANS).view(
            1, 3, 1, 1), persistent=False)
        self.register_buffer('stds', torch.tensor(IMAGE_STDS).view(
            1, 3, 1, 1), persistent=False)

    def forward(self, x, t):
        if x.dim() != 4 or x.shape[1] != 3 or \
                x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f'images must be (B, 3, {self.image_size}, '
                             f'{self.image_size}), got {tuple(x.shape)}')
        x = (x - self.means) / self.stds
        x = F.conv2d(x, self.patch_proj.to(x.dtype), stride=self.patch_size)
        x = x.flatten(2).transpose(1, 2)
        t_token = F.embedding(t.expand(x.shape[0]), self.w_t)[:, None]
        return self.ln(torch.cat([t_token.to(x.dtype), x], dim=1) +
                       self.w_pos[None])


class FeatureExtractor(nn.Module):
    """LayerNorm and projection (no bias) of one token's features."""

    def __init__(self, n_state, n_embd):
        super().__init__()
        self.ln = LayerNorm(n_state)
        self.f = Affine(n_state, n_embd, use_bias=False)

    def forward(self, x):
        return self.f(self.ln(x))


def _tower(embedding: nn.Module, n_state: int, n_embd: int, n_heads: int,
           n_blocks: int, causal: bool) -> nn.ModuleDict:
    """The reference's ``blocks``: input, block_0..N-1, output."""
    blocks = {'input': embedding}
    for i in range(n_blocks):
        blocks[f'block_{i}'] = TransformerBlock(n_state, n_heads,
                                                2 * n_blocks, causal)
    blocks['output'] = FeatureExtractor(n_state, n_embd)
    return nn.ModuleDict(blocks)


def _run_tower(blocks: nn.ModuleDict, h: torch.Tensor) -> torch.Tensor:
    """The transformer blocks of a tower (not its input or output)."""
    for name, block in blocks.items():
        if name.startswith('block_'):
            h = block(h)
    return h


class NoisedCLIPTextEncoder(nn.Module):
    """CLIP's text tower: causal transformer, features of the last token
    (at ``lens - 1``)."""

    def __init__(self, n_vocab=65536, max_text_len=77, n_embd=512, n_heads=8,
                 n_head_state=64, n_blocks=12):
        super().__init__()
        n_state = n_heads * n_head_state
        self.max_text_len = max_text_len
        self.blocks = _tower(TextEmbedding(n_vocab, max_text_len, n_state),
                             n_state, n_embd, n_heads, n_blocks, causal=True)

    def forward(self, tokens, lens):
        h = _run_tower(self.blocks, self.blocks['input'](tokens))
        last = h[torch.arange(len(h), device=h.device), lens - 1]
        return self.blocks['output'](last)


class NoisedCLIPImageEncoder(nn.Module):
    """CLIP's image tower for noised images: ViT with a timestep token."""

    def __init__(self, image_size=64, patch_size=4, n_embd=512, n_heads=12,
                 n_head_state=64, n_blocks=12, n_timestep=1000):
        super().__init__()
        n_state = n_heads * n_head_state
        self.blocks = _tower(
            ImageEmbedding(image_size, patch_size, n_state, n_timestep),
            n_state, n_embd, n_heads, n_blocks, causal=False)

    def forward(self, images, t):
        """Features of images in [0, 255] at timesteps ``t``."""
        h = _run_tower(self.blocks, self.blocks['input'](images, t))
        return self.blocks['output'](h[:, 0])


class CLIPTokenizer:
    """CLIP's BPE (the vocabulary shipped in ``open-clip-torch``): start and
    end tokens, truncated and zero-padded to ``text_ctx``, with the length."""

    def __init__(self, text_ctx: int = 77):
        from open_clip.tokenizer import SimpleTokenizer
        self._bpe = SimpleTokenizer()
        self.text_ctx = text_ctx
        self.start_token = self._bpe.encoder['<start_of_text>']
        self.end_token = self._bpe.encoder['<end_of_text>']

    def encode(self, text: str) -> List[int]:
        return self._bpe.encode(text)

    def __call__(self, prompts: Sequence[str], device='cpu'
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        rows, lens = [], []
        for prompt in prompts:
            toks = [self.start_token] + self.encode(prompt)[:self.text_ctx -
                                                            2] + [
                                                                self.end_token
                                                            ]
            lens.append(len(toks))
            rows.append(toks + [0] * (self.text_ctx - len(toks)))
        return (torch.tensor(rows, dtype=torch.long, device=device),
                torch.tensor(lens, dtype=torch.long, device=device))


@MODELS.register_module()
class NoisedCLIP(nn.Module):
    """The noised CLIP guide of GLIDE (``Glide(classifier=...)``).

    Args:
        text_encoder (dict): :class:`NoisedCLIPTextEncoder` arguments.
        image_encoder (dict): :class:`NoisedCLIPImageEncoder` arguments.
        logit_scale (float): CLIP's temperature, exp of the learned logit
            scale. Defaults to 100.
    """

    def __init__(self, text_encoder: Optional[dict] = None,
                 image_encoder: Optional[dict] = None,
                 logit_scale: float = 100.0):
        super().__init__()
        self.text_encoder = NoisedCLIPTextEncoder(**(text_encoder or {}))
        self.image_encoder = NoisedCLIPImageEncoder(**(image_encoder or {}))
        self.register_buffer('logit_scale',
                             torch.tensor(math.log(logit_scale)),
                             persistent=False)
        self.tokenizer = CLIPTokenizer(self.text_encoder.max_text_len)

    @property
    def image_size(self) -> int:
        return self.image_encoder.blocks['input'].image_size

    def text_embeddings(self, prompts: Sequence[str]) -> torch.Tensor:
        """L2-normalised text embeddings (B, n_embd)."""
        device = self.logit_scale.device
        tokens, lens = self.tokenizer(prompts, device=device)
        z = self.text_encoder(tokens, lens)
        return z / (z.norm(dim=-1, keepdim=True) + 1e-12)

    def image_embeddings(self, x: torch.Tensor, t) -> torch.Tensor:
        """L2-normalised embeddings (B, n_embd) of noised images ``x`` in
        [-1, 1] at original timesteps ``t`` (scalar or (B,))."""
        t = torch.as_tensor(t, device=x.device, dtype=torch.long).reshape(-1)
        z = self.image_encoder((x + 1) * 127.5, t)
        return z / (z.norm(dim=-1, keepdim=True) + 1e-12)

    def guidance_grad(self, z_text: torch.Tensor, x: torch.Tensor, t,
                      scale: float) -> torch.Tensor:
        """``scale * d/dx [exp(logit_scale) * sum(z_text * z_image(x, t))]``.
        """
        with torch.enable_grad():
            x_var = x.detach().float().requires_grad_(True)
            z_image = self.image_embeddings(x_var, t)
            loss = self.logit_scale.exp() * (z_text * z_image).sum()
            grad = torch.autograd.grad(loss, x_var)[0]
        return (grad * scale).to(x.dtype)

    def guidance_fn(self, prompts: Sequence[str], scale: float) -> Callable:
        """A ``(x, t) -> gradient`` function for the samplers, with the
        prompts' text embeddings computed once."""
        with torch.no_grad():
            z_text = self.text_embeddings(prompts)

        def fn(x, t):
            if x.shape[-1] != self.image_size:
                raise ValueError(
                    f'CLIP guidance needs {self.image_size}px images, the '
                    f'stage samples {x.shape[-1]}px')
            return self.guidance_grad(z_text, x, t, scale)

        return fn

    def contrastive_loss(self, x_t: torch.Tensor, t: torch.Tensor,
                         prompts: Sequence[str]) -> torch.Tensor:
        """CLIP's symmetric cross-entropy between noised images and their
        captions (how GLIDE trained its noised CLIP). Images with the same
        caption are all positives of that caption (targets spread evenly).

        Args:
            x_t (Tensor): (B, 3, H, W) noised images, H the guide's size.
            t (Tensor): (B,) their timesteps.
            prompts (Sequence[str]): Their captions.

        Returns:
            Tensor: the scalar loss.
        """
        logits = self.logit_scale.exp() * (
            self.image_embeddings(x_t, t) @ self.text_embeddings(prompts).T)
        same = torch.tensor([[a == b for b in prompts] for a in prompts],
                            dtype=logits.dtype, device=logits.device)
        target = same / same.sum(1, keepdim=True)
        return (nn.functional.cross_entropy(logits, target) +
                nn.functional.cross_entropy(logits.T, target)) / 2
