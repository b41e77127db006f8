"""GLIDE's sampling loop as free functions: what one stage of the cascade
does with a network, a scheduler and the encoded prompts.

The schedulers know nothing about networks; these functions are the only
place that calls a network while sampling (k-diffusion's and diffusers'
shape: ``denoise(unet, scheduler, x, text, ..., callback)``).
"""
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .base_scheduler import GlideBaseScheduler


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round images in [-1, 1] to the 256 levels of an 8-bit image, as the
    reference does before handing the base sample to the upsampler."""
    return ((x + 1) * 127.5).round() / 127.5 - 1


def classifier_free_guidance(out: torch.Tensor, scale: float,
                             channels: int) -> torch.Tensor:
    """Combine the network's outputs for a ``[cond, uncond]`` batch: the
    prediction (eps or v, the first ``channels``) becomes ``uncond + scale *
    (cond - uncond)``, the variance values are the conditional half's.

    Args:
        out (Tensor): (2B, 2C, H, W), conditional rows first.
        scale (float): The guidance scale (1: the conditional output).
        channels (int): C, the image channels.

    Returns:
        Tensor: (B, 2C, H, W).
    """
    cond_out, uncond_out = out.chunk(2)
    pred = uncond_out[:, :channels] + scale * (
        cond_out[:, :channels] - uncond_out[:, :channels])
    return torch.cat([pred, cond_out[:, channels:]], dim=1)


def denoise(unet: nn.Module,
            scheduler: GlideBaseScheduler,
            x: torch.Tensor,
            text: dict,
            guidance_scale: Optional[float] = None,
            cond: Optional[Dict[str, torch.Tensor]] = None,
            denoised_fn: Optional[Callable] = None,
            generator: Optional[torch.Generator] = None,
            step_noise: Optional[Sequence[torch.Tensor]] = None,
            guidance_fn: Optional[Callable] = None,
            callback: Optional[Callable] = None,
            guidance_input: Optional[float] = None) -> torch.Tensor:
    """Run one stage's sampling loop over ``scheduler.timesteps``.

    Args:
        unet: The stage's network.
        scheduler: The stage's sampler (timesteps already set).
        x (Tensor): x_T, (B, C, H, W).
        text (dict): The network's encoded prompts (``Glide.encode_prompts``):
            batch B without guidance, 2B ``[cond, uncond]`` with guidance.
        guidance_scale (float, optional): Classifier-free guidance on the
            prediction (variance channels of the conditional half passed
            through); None for no guidance.
        cond (dict, optional): Extra network inputs of batch B (``low_res``,
            ``inpaint_image``, ``inpaint_mask``).
        denoised_fn (callable, optional): Applied to each x_0 prediction.
        generator (torch.Generator, optional): Source of step noise.
        step_noise (Sequence[Tensor], optional): Explicit noise for each step,
            counted from the noisiest (tests inject the reference's).
        guidance_fn (callable, optional): ``(x, t) -> grad`` classifier
            guidance gradient, already scaled.
        callback (callable, optional): Called after each step as
            ``callback(i, t, x, pred_xstart)`` (step index, timestep, the new
            sample, the step's x_0 prediction): progress bars, previews,
            trajectories.
        guidance_input (float, optional): The guidance scale w of a
            guidance-distilled network (``guidance_embed``), given to it as
            an input: one pass per step (``text`` has batch B).

    Returns:
        Tensor: x_0, (B, C, H, W).

    Raises:
        FloatingPointError: when a step produces NaN/Inf.
    """
    cond = dict(cond or {})
    if guidance_input is not None:
        cond['guidance'] = torch.full((x.shape[0], ), float(guidance_input),
                                      device=x.device)
    guided = guidance_scale is not None
    if guided:
        cond = {k: torch.cat([v, v]) for k, v in cond.items()}
    for i, t in enumerate(scheduler.timesteps.tolist()):
        if guided:
            out = classifier_free_guidance(
                unet(torch.cat([x, x]), t, text=text, **cond), guidance_scale,
                x.shape[1])
        else:
            out = unet(x, t, text=text, **cond)
        grad = guidance_fn(x, t) if guidance_fn is not None else None
        noise = step_noise[i] if step_noise is not None else None
        step = scheduler.step(out, t, x, noise=noise, generator=generator,
                              denoised_fn=denoised_fn, guidance_grad=grad)
        x = step['prev_sample']
        if not torch.isfinite(x).all():
            raise FloatingPointError(
                f'sampling produced NaN/Inf at step {i + 1} (timestep {t}); '
                'try float32, fewer guidance or another sampler')
        if callback is not None:
            callback(i, t, x, step['pred_xstart'])
    return x


def inpaint_inputs(inpaint: Optional[Tuple[torch.Tensor, torch.Tensor]],
                   size: int) -> Tuple[dict, Optional[Callable]]:
    """An inpainting stage's network inputs and its x_0 paste-back.

    Args:
        inpaint (tuple, optional): (image, mask) of the batch, image in
            [-1, 1], mask 1 = keep; None when not inpainting.
        size (int): The stage's resolution (image and mask are resized to
            it: bicubic and nearest).

    Returns:
        tuple: (``inpaint_image``/``inpaint_mask`` inputs, the function that
        pastes the known region onto an x_0 prediction), or ({}, None).
    """
    if inpaint is None:
        return {}, None
    image, mask = inpaint
    if image.shape[-1] != size:
        image = nn.functional.interpolate(
            image, (size, size), mode='bicubic',
            align_corners=False).clamp(-1, 1)
    if mask.shape[-1] != size:
        mask = nn.functional.interpolate(mask, (size, size), mode='nearest')

    def paste(x0):
        return x0 * (1 - mask) + image * mask

    return dict(inpaint_image=image, inpaint_mask=mask), paste


def start_noise(latents: Optional[torch.Tensor], shape: tuple,
                generator: Optional[torch.Generator],
                device: torch.device) -> torch.Tensor:
    """A stage's x_T: the given ``latents`` (as float32 on ``device``), or
    standard normal noise of ``shape`` drawn from ``generator``."""
    if latents is None:
        return torch.randn(shape, generator=generator, device=device)
    return latents.to(device=device, dtype=torch.float32)
