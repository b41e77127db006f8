"""GLIDE's text-conditional UNets, as mmagic registry modules.

The networks subclass mmagic's :class:`DenoisingUnet`, whose blocks compute
exactly what OpenAI's reference computes and whose parameter names are those
of MMagic's released GLIDE checkpoints (``unet.*`` / ``unet_up.*``). What we
add or replace:

* the text side (token/positional/padding embeddings, a pre-LN transformer,
  ``transformer_proj`` of the last token into the timestep embedding);
* :class:`GlideAttentionBlock`, a drop-in for mmagic's
  ``MultiHeadAttentionBlock`` that takes its text keys/values precomputed and
  attends on (batch, heads, tokens, channels): ``scaled_dot_product_attention``
  or, on CPUs in low precision, :func:`chunked_attention`;
* :meth:`Text2ImUNet.encode_text`, separate from :meth:`forward`, so that a
  sampler encodes the prompts (and every block's text K/V) once per call;
* a GroupNorm computing in float32 whatever the weights' and activations'
  dtype (on CPUs reading bfloat16/float16 activations directly).

Every layer works in contiguous and channels-last memory format
(``Glide(channels_last=...)``).

Variants (the ``in_channels`` argument is always the image's channels):

========================== ==========================================
``Text2ImUNet``            ``x``
``SuperResText2ImUNet``    ``x``, bilinear-upsampled ``low_res``
``InpaintText2ImUNet``     ``x``, ``inpaint_image * inpaint_mask``, mask
``SuperResInpaintText2ImUNet`` the inpaint inputs, then ``low_res``
========================== ==========================================
"""
from copy import deepcopy
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmagic.models.editors.ddpm.denoising_unet import SiLU as MMagicSiLU
from mmagic.models.editors.ddpm.denoising_unet import (DenoisingResBlock,
                                                       DenoisingUnet)
from mmagic.registry import MODELS

from .attention import GlideAttentionBlock
from .group_norm import glide_norm_cfg
from .text_transformer import LayerNorm32, Transformer

TextCondition = Dict[str, Union[torch.Tensor, List[torch.Tensor]]]
#: A guidance scale w is embedded as the timestep ``w * 100`` would be (the
#: scales of use, 1 to 10, then span the sinusoids' frequencies as the
#: timesteps do).
GUIDANCE_EMBED_SCALE = 100.0


@MODELS.register_module()
class Text2ImUNet(DenoisingUnet):
    """GLIDE's text-conditional UNet (the 64x64 base model by default).

    Args:
        image_size (int): Input resolution.
        in_channels (int): Image channels. Defaults to 3.
        out_channels (int, optional): Output channels; defaults to
            ``2 * in_channels`` (eps and the learned-range variance value).
        base_channels (int): Width of the first level. Defaults to 192.
        resblocks_per_downsample (int): Residual blocks per level. Defaults
            to 3.
        channels_cfg (list[float], optional): Channel multiplier per level;
            defaults to mmagic's per-resolution table ((1, 2, 3, 4) at 64 px,
            (1, 1, 2, 2, 4, 4) at 256 px).
        attention_res (Sequence[int]): Resolutions with attention.
        num_heads (int): Heads when ``num_head_channels`` is -1.
        num_head_channels (int): Channels per head. Defaults to 64.
        dropout (float): Dropout in the residual blocks. Defaults to 0.1.
        text_ctx (int): Number of text tokens. Defaults to 128.
        xf_width (int): Text transformer width (0 for no text). Defaults to
            512.
        xf_layers (int): Text transformer depth. Defaults to 16.
        xf_heads (int): Text transformer heads. Defaults to 8.
        xf_final_ln (bool): LayerNorm after the transformer. Defaults to True.
        xf_padding (bool): Learned per-position embedding for padded tokens.
            Defaults to True.
        n_vocab (int): Token vocabulary size. Defaults to 50257 (GPT-2).
        use_fp16 (bool): Build the network in float16. Defaults to False.
        attention_cfg (dict, optional): mmagic attention config; type
            ``MultiHeadAttentionBlock`` (as in MMagic's release configs) is
            served by :class:`GlideAttentionBlock`.
        guidance_embed (bool): A guidance-distilled student (Meng et al.
            2023): ``forward`` takes the guidance scale w, embedded into the
            timestep embedding, and one pass predicts the guided output.
            Defaults to False.
        **kwargs: Other :class:`DenoisingUnet` arguments (``norm_cfg``,
            ``use_scale_shift_norm``, ``resblock_updown``, ...).
    """

    #: What the network takes besides x_t and the prompt (a variant's
    #: capabilities, read by :class:`Glide`): the low-res image to upsample,
    #: and the known image and mask to inpaint.
    takes_low_res = False
    takes_inpaint = False

    def __init__(self,
                 image_size: int = 64,
                 in_channels: int = 3,
                 out_channels: Optional[int] = None,
                 base_channels: int = 192,
                 resblocks_per_downsample: int = 3,
                 channels_cfg: Optional[Sequence[float]] = None,
                 attention_res: Sequence[int] = (32, 16, 8),
                 num_heads: int = 1,
                 num_head_channels: int = 64,
                 dropout: float = 0.1,
                 text_ctx: int = 128,
                 xf_width: int = 512,
                 xf_layers: int = 16,
                 xf_heads: int = 8,
                 xf_final_ln: bool = True,
                 xf_padding: bool = True,
                 n_vocab: int = 50257,
                 use_fp16: bool = False,
                 attention_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='GlideGN32', num_groups=32),
                 use_scale_shift_norm: bool = True,
                 resblock_updown: bool = True,
                 guidance_embed: bool = False,
                 **kwargs):
        kwargs.pop('tokenizer', None)  # MMagic's configs may name one
        kwargs.pop('output_cfg', None)  # GLIDE always predicts eps + var
        norm_cfg = glide_norm_cfg(norm_cfg)
        attention_cfg = _attention_cfg(attention_cfg, num_heads,
                                       num_head_channels, xf_width, norm_cfg)
        self.image_channels = in_channels
        self.text_ctx = text_ctx
        self.xf_width = xf_width
        self.xf_padding = xf_padding
        super().__init__(
            image_size=image_size,
            in_channels=self.network_in_channels(in_channels),
            out_channels=out_channels or 2 * in_channels,
            base_channels=base_channels,
            resblocks_per_downsample=resblocks_per_downsample,
            channels_cfg=list(channels_cfg) if channels_cfg else None,
            attention_res=list(attention_res),
            dropout=dropout,
            attention_cfg=attention_cfg,
            norm_cfg=norm_cfg,
            use_scale_shift_norm=use_scale_shift_norm,
            resblock_updown=resblock_updown,
            **kwargs)

        if xf_width:
            self._build_text_side(xf_layers, xf_heads, xf_final_ln, n_vocab,
                                  base_channels)
        #: A guidance-distilled student's embedding of the guidance scale w
        #: (added to the timestep embedding; its last layer starts at zero,
        #: so the student starts as its teacher): :mod:`.distillation`.
        self.guidance_embedding = nn.Sequential(
            nn.Linear(base_channels, base_channels * 4), nn.SiLU(),
            nn.Linear(base_channels * 4, base_channels * 4)) \
            if guidance_embed else None
        self._zero_guidance_embedding()
        self._use_torch_silu()
        self.attention_blocks = [
            m for m in self.modules() if isinstance(m, GlideAttentionBlock)
        ]
        if use_fp16:
            self.half()

    def _build_text_side(self, layers: int, heads: int, final_ln: bool,
                         n_vocab: int, base_channels: int) -> None:
        """The token/positional/padding embeddings, the transformer and the
        projection of its last token into the timestep embedding."""
        width, ctx = self.xf_width, self.text_ctx
        self.transformer = Transformer(width, layers, heads)
        self.final_ln = LayerNorm32(width) if final_ln else None
        self.token_embedding = nn.Embedding(n_vocab, width)
        self.positional_embedding = nn.Parameter(torch.zeros(ctx, width))
        self.transformer_proj = nn.Linear(width, base_channels * 4)
        if self.xf_padding:
            self.padding_embedding = nn.Parameter(torch.zeros(ctx, width))
        self._init_text_weights()

    # ------------------------------------------------------------ weights
    def _use_torch_silu(self):
        """mmagic's ``SiLU`` parses the torch version string at every call
        (slow, and it breaks ``torch.compile``): use ``nn.SiLU``, the same
        function with no parameters."""
        for module in list(self.modules()):
            for name, child in module.named_children():
                if isinstance(child, MMagicSiLU):
                    setattr(module, name, nn.SiLU(inplace=child.inplace))

    @staticmethod
    def network_in_channels(image_channels: int) -> int:
        """Channels the first conv sees, from the image's channels."""
        return image_channels

    def set_sdpa(self, enabled: bool = True) -> 'Text2ImUNet':
        """Attention of this network's blocks: the fast path (the default:
        :func:`token_qkv_attention`) or the reference's einsum (the
        benchmark's baseline)."""
        for block in self.attention_blocks:
            block.use_sdpa = bool(enabled)
        return self

    def init_weights(self, pretrained=None):
        """Reference initialisation: mmagic's zero-init of each residual
        block's last conv, the attention output and the output conv, and
        small normal draws for the text embeddings."""
        super().init_weights(pretrained)
        if pretrained is None and getattr(self, 'xf_width', 0) and hasattr(
                self, 'transformer'):
            self._init_text_weights()
        if pretrained is None:
            self._zero_guidance_embedding()

    def _zero_guidance_embedding(self):
        if getattr(self, 'guidance_embedding', None) is not None:
            nn.init.zeros_(self.guidance_embedding[-1].weight)
            nn.init.zeros_(self.guidance_embedding[-1].bias)

    def _init_text_weights(self):
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        if self.xf_padding:
            nn.init.normal_(self.padding_embedding, std=0.01)

    @property
    def param_dtype(self) -> torch.dtype:
        return self.in_blocks[0][0].weight.dtype

    # --------------------------------------------------------------- text
    def encode_text(self, tokens: torch.Tensor,
                    mask: Optional[torch.Tensor] = None) -> TextCondition:
        """Run the text side once: everything the UNet needs from the prompt.

        Args:
            tokens (Tensor): (B, text_ctx) token ids.
            mask (Tensor, optional): (B, text_ctx) bool, True for real tokens;
                required when ``xf_padding``.

        Returns:
            dict: ``xf_proj`` (B, 4 * base_channels) added to the timestep
            embedding, ``xf_out`` (B, xf_width, text_ctx) the token features,
            and ``kv`` the text keys/values of every attention block, in
            execution order.
        """
        if not self.xf_width:
            return dict(xf_proj=None, xf_out=None,
                        kv=[None] * len(self.attention_blocks))
        if tokens is None:
            raise ValueError('tokens are required by a text-conditional UNet')
        if tokens.dim() != 2 or tokens.shape[1] != self.text_ctx:
            raise ValueError(f'tokens must be (B, {self.text_ctx}), got '
                             f'{tuple(tokens.shape)}')
        xf_in = self.token_embedding(tokens.long())
        xf_in = xf_in + self.positional_embedding[None]
        if self.xf_padding:
            if mask is None:
                raise ValueError('mask is required when xf_padding=True')
            xf_in = torch.where(mask.bool()[..., None], xf_in,
                                self.padding_embedding[None])
        xf_out = self.transformer(xf_in.to(self.param_dtype))
        if self.final_ln is not None:
            xf_out = self.final_ln(xf_out)
        xf_proj = self.transformer_proj(xf_out[:, -1])
        xf_out = xf_out.permute(0, 2, 1)  # NLC -> NCL
        kv = [blk.project_text(xf_out) for blk in self.attention_blocks]
        return dict(xf_proj=xf_proj, xf_out=xf_out, kv=kv)

    # ------------------------------------------------------------ forward
    def prepare_input(self, x: torch.Tensor, **cond) -> torch.Tensor:
        """The network input from ``x`` and the variant's conditioning."""
        if cond:
            raise TypeError(f'{type(self).__name__} takes no '
                            f'{sorted(cond)} inputs')
        return x

    def forward(self,
                x: torch.Tensor,
                timesteps: Union[torch.Tensor, int],
                tokens: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None,
                text: Optional[TextCondition] = None,
                guidance: Optional[torch.Tensor] = None,
                **cond) -> torch.Tensor:
        """Predict eps and the variance value for noisy images ``x``.

        Args:
            x (Tensor): (B, C, H, W) noisy images.
            timesteps (Tensor | int): (B,) or scalar, on the 1000-step scale.
            tokens, mask (Tensor, optional): Prompt tokens; ignored when
                ``text`` (from :meth:`encode_text`) is given.
            text (dict, optional): Precomputed text condition with batch B
                (or 1, broadcast).
            guidance (Tensor | float, optional): The classifier-free
                guidance scale w, (B,) or scalar: required by a
                guidance-distilled network (``guidance_embed=True``), refused
                by the others.
            **cond: The variant's extra inputs (``low_res``,
                ``inpaint_image``, ``inpaint_mask``).

        Returns:
            Tensor: (B, out_channels, H, W) in ``x``'s dtype.
        """
        batch = x.shape[0]
        h = self.prepare_input(x, **cond).to(self.param_dtype)
        timesteps = torch.as_tensor(timesteps, device=x.device)
        if timesteps.dim() == 0:
            timesteps = timesteps[None]
        timesteps = timesteps.expand(batch)
        emb = self._embed_time(timesteps, guidance)
        if text is None:
            text = self.encode_text(tokens, mask)
        kv = text['kv']
        if self.xf_width:
            if text['xf_proj'].shape[0] not in (1, batch):
                raise ValueError(
                    f'text condition has batch {text["xf_proj"].shape[0]}, '
                    f'images have batch {batch}')
            emb = emb + text['xf_proj'].to(emb)
            kv = [t.expand(batch, -1, -1) for t in kv]
        emb = emb.to(self.param_dtype)
        kv_iter = iter(kv)
        hs = []
        for block in self.in_blocks:
            h = self._run_block(block, h, emb, kv_iter)
            hs.append(h)
        h = self._run_block(self.mid_blocks, h, emb, kv_iter)
        for block in self.out_blocks:
            h = self._run_block(block, torch.cat([h, hs.pop()], dim=1), emb,
                                kv_iter)
        return self.out(h).to(x.dtype)

    def _embed_time(self, timesteps: torch.Tensor,
                    guidance) -> torch.Tensor:
        """The timestep embedding, plus the guidance scale's for a
        guidance-distilled network (w on the scale of the timesteps:
        ``GUIDANCE_EMBED_SCALE`` * w through the same sinusoids)."""
        time_embed = self.time_embedding
        dtype = time_embed.blocks[0].weight.dtype
        emb = time_embed.blocks(time_embed.embedding_fn(timesteps).to(dtype))
        if (guidance is None) != (self.guidance_embedding is None):
            raise ValueError(
                'a guidance-distilled network (guidance_embed=True) needs '
                'guidance=w' if guidance is None else
                'guidance=w is for guidance-distilled networks; this one '
                'takes classifier-free guidance from two passes')
        if guidance is not None:
            w = torch.as_tensor(guidance, dtype=torch.float32,
                                device=timesteps.device).expand(
                                    timesteps.shape[0])
            emb = emb + self.guidance_embedding(time_embed.embedding_fn(
                w * GUIDANCE_EMBED_SCALE).to(dtype))
        return emb

    @staticmethod
    def _run_block(block: nn.Module, h, emb, kv_iter):
        for layer in block:
            if isinstance(layer, DenoisingResBlock):
                h = layer(h, emb)
            elif isinstance(layer, GlideAttentionBlock):
                h = layer(h, next(kv_iter))
            else:
                h = layer(h)
        return h


def _attention_cfg(attention_cfg: Optional[dict], num_heads: int,
                   num_head_channels: int, xf_width: int,
                   norm_cfg: dict) -> dict:
    """mmagic's ``attention_cfg`` for GLIDE: always
    :class:`GlideAttentionBlock` (``MultiHeadAttentionBlock``, as MMagic's
    release configs name it, is accepted), attending to the text."""
    attention_cfg = deepcopy(attention_cfg) or {}
    if attention_cfg.get('type', 'MultiHeadAttentionBlock') not in (
            'MultiHeadAttentionBlock', 'GlideAttentionBlock'):
        raise ValueError('attention_cfg.type must be GlideAttentionBlock '
                         f'(or MultiHeadAttentionBlock), got '
                         f'{attention_cfg["type"]!r}')
    attention_cfg['type'] = 'GlideAttentionBlock'
    attention_cfg.setdefault('num_heads', num_heads)
    attention_cfg.setdefault('num_head_channels', num_head_channels)
    attention_cfg['encoder_channels'] = xf_width or None
    attention_cfg['norm_cfg'] = glide_norm_cfg(
        attention_cfg.get('norm_cfg', norm_cfg))
    return attention_cfg


def _upsample_like(low_res: Optional[torch.Tensor],
                   x: torch.Tensor) -> torch.Tensor:
    if low_res is None:
        raise ValueError('low_res is required by a super-resolution UNet')
    return F.interpolate(
        low_res.to(x.dtype), x.shape[-2:], mode='bilinear',
        align_corners=False)


def _inpaint_inputs(x: torch.Tensor, inpaint_image: Optional[torch.Tensor],
                    inpaint_mask: Optional[torch.Tensor]) -> List[torch.Tensor]:
    # As the reference: a missing image/mask means "nothing known".
    if inpaint_image is None:
        inpaint_image = torch.zeros_like(x)
    if inpaint_mask is None:
        inpaint_mask = torch.zeros_like(x[:, :1])
    inpaint_image = inpaint_image.to(x.dtype)
    inpaint_mask = inpaint_mask.to(x.dtype)
    return [inpaint_image * inpaint_mask, inpaint_mask]


@MODELS.register_module()
class SuperResText2ImUNet(Text2ImUNet):
    """GLIDE's super-resolution UNet (64->256 by default): the low-res image,
    bilinearly resized to the output size, is concatenated to ``x``."""

    takes_low_res = True

    def __init__(self, image_size: int = 256,
                 resblocks_per_downsample: int = 2, **kwargs):
        super().__init__(image_size=image_size,
                         resblocks_per_downsample=resblocks_per_downsample,
                         **kwargs)

    @staticmethod
    def network_in_channels(image_channels: int) -> int:
        return image_channels * 2

    def prepare_input(self, x, low_res=None, **cond):
        super().prepare_input(x, **cond)
        return torch.cat([x, _upsample_like(low_res, x)], dim=1)


@MODELS.register_module()
class InpaintText2ImUNet(Text2ImUNet):
    """GLIDE's inpainting UNet: ``x``, the masked known image and the mask
    (1 = keep, 0 = fill) are concatenated."""

    takes_inpaint = True

    @staticmethod
    def network_in_channels(image_channels: int) -> int:
        return image_channels * 2 + 1

    def prepare_input(self, x, inpaint_image=None, inpaint_mask=None, **cond):
        super().prepare_input(x, **cond)
        return torch.cat([x, *_inpaint_inputs(x, inpaint_image, inpaint_mask)],
                         dim=1)


@MODELS.register_module()
class SuperResInpaintText2ImUNet(SuperResText2ImUNet):
    """GLIDE's super-resolution inpainting UNet: the inpainting inputs, then
    the upsampled low-res image."""

    takes_inpaint = True

    @staticmethod
    def network_in_channels(image_channels: int) -> int:
        return image_channels * 3 + 1

    def prepare_input(self, x, inpaint_image=None, inpaint_mask=None,
                      low_res=None, **cond):
        Text2ImUNet.prepare_input(self, x, **cond)
        return torch.cat([
            x, *_inpaint_inputs(x, inpaint_image, inpaint_mask),
            _upsample_like(low_res, x)
        ], dim=1)
