"""Image-to-image editing (SDEdit, Meng et al. 2021): noise a given image to
timestep ``strength x T`` and sample it back under the prompt.

``Glide.infer(init_image=image, strength=s, prompt=...)``: the base stage's
sampler keeps its timesteps at or below ``s * T`` (T = the training steps,
1000), starts from ``q_sample(image, t_start, noise)`` at the first of them
and runs the remaining steps; the upsampler (if any) runs as usual. Small
strengths keep the image's layout and colours, large ones follow the prompt
(strength 1 is sampling from noise). Without ``strength``, ``init_image``
keeps MMagic's meaning (the starting noise).
"""
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from ..checks import check_float, describe
from .base_scheduler import GlideBaseScheduler


@dataclass
class EditInputs:
    """The checked editing arguments: the image at the base resolution,
    (B, 3, h, h) float32 in [-1, 1] on the model's device, and the
    strength."""
    image: torch.Tensor
    strength: float


def check_edit(model, init_image, strength, mask, batch: int,
               sizes: Sequence[int]) -> EditInputs:
    """Check the editing arguments of :meth:`Glide.infer`.

    Args:
        model (Glide): The model.
        init_image: The image to edit, (B or 1, 3, H, H) in [-1, 1], H the
            base or the output resolution.
        strength: In (0, 1].
        mask: Must be None (editing is not inpainting).
        batch (int): The batch size.
        sizes (Sequence[int]): The accepted H.

    Returns:
        EditInputs: The image (expanded to the batch, at the base
        resolution) and the strength.
    """
    strength = check_float(strength, 'strength', 0, 1, low_open=True)
    if mask is not None:
        raise ValueError('strength (image-to-image editing) and mask '
                         '(inpainting) cannot be combined: pass one')
    if init_image is None:
        raise ValueError('strength needs init_image, the image to edit '
                         '(B or 1, 3, H, H) in [-1, 1]')
    sizes = sorted(set(sizes))
    if not torch.is_tensor(init_image) or init_image.dim() != 4 or \
            init_image.shape[0] not in (1, batch) or \
            init_image.shape[1] != 3 or \
            init_image.shape[2] != init_image.shape[3] or \
            init_image.shape[2] not in sizes:
        raise ValueError(f'init_image (the image to edit) must be (B or 1, '
                         f'3, H, H) with B={batch} and H in {sizes}, got '
                         f'{describe(init_image)}')
    if not torch.isfinite(init_image).all() or init_image.min() < -1 or \
            init_image.max() > 1:
        raise ValueError('init_image values must be finite and in [-1, 1], '
                         f'got [{init_image.min():.3g}, '
                         f'{init_image.max():.3g}]')
    image = init_image.float().to(model.device)
    base = model.unet.image_size
    if image.shape[-1] != base:
        image = F.interpolate(image, (base, base), mode='area')
    return EditInputs(image.expand(batch, -1, -1, -1), strength)


def cut_timesteps(scheduler: GlideBaseScheduler, strength: float) -> None:
    """Keep ``scheduler``'s timesteps (already set) that are <= ``strength
    x T``; timestep 0 always remains."""
    limit = strength * scheduler.num_train_timesteps
    scheduler.timesteps = scheduler.timesteps[scheduler.timesteps <= limit]


def noise_image(scheduler: GlideBaseScheduler, edit: EditInputs,
                noise: torch.Tensor) -> torch.Tensor:
    """The image to edit noised to the first of ``scheduler``'s (cut)
    timesteps: ``q_sample(image, t_start, noise)``.

    Args:
        scheduler: The base stage's sampler, after :func:`cut_timesteps`.
        edit (EditInputs): From :func:`check_edit`.
        noise (Tensor): Standard normal noise of the image's shape.

    Returns:
        Tensor: x_t at t_start.
    """
    t_start = int(scheduler.timesteps[0])
    return scheduler.train_process.q_sample(edit.image, t_start, noise)
