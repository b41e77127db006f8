"""Checks of :meth:`Glide.infer`'s arguments (and of ``test_cfg``, which
holds the same settings for validation), apart from sampling: each raises an
error naming the argument and what it accepts, and none draws noise.
"""
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import torch

from ..checks import (check_float, check_int, check_prompts, check_scale,
                      check_seed, check_steps, describe)
from .editing import EditInputs, check_edit

# infer's arguments that test_cfg may set (predict passes the prompts).
TEST_CFG_KEYS = ('guidance_scale', 'num_inference_steps',
                 'num_inference_steps_up', 'classifier_scale', 'seed',
                 'upsample_temp', 'negative_prompt', 'show_progress')


@dataclass
class SamplingInputs:
    """:meth:`Glide.infer`'s arguments, checked and normalised by
    :func:`check_inputs`."""
    prompts: List[str]
    uncond: List[str]  # the unconditional half's prompts
    batch: int
    guidance_scale: float
    classifier_scale: float
    steps: Optional[Union[int, str]]  # None: the scheduler's default
    steps_up: Optional[Union[int, str]]
    upsample_temp: float
    out_size: int
    generator: Optional[torch.Generator]
    shape: tuple  # the base stage's (B, C, H, W)
    latents: Optional[torch.Tensor]  # None: drawn by the sampler
    latents_up: Optional[torch.Tensor]  # None: drawn after the base stage
    shape_up: Optional[tuple]
    inpaint: Optional[tuple]  # (image, mask), expanded to the batch
    edit: Optional[EditInputs] = None  # SDEdit's image and strength


def check_inputs(model, init_image=None, prompt=None, batch_size=None,
                 guidance_scale=3.0, num_inference_steps=None, labels=None,
                 classifier_scale=None, num_inference_steps_up=None,
                 mask=None, latents=None, latents_up=None, seed=None,
                 generator=None, upsample_temp=None, negative_prompt=None,
                 height=None, width=None, strength=None) -> SamplingInputs:
    """Check :meth:`Glide.infer`'s arguments (see there) for ``model``.

    Raises an error naming the first bad argument and what it accepts, so
    that sampling itself no longer fails on an input.

    Returns:
        SamplingInputs: the normalised arguments.
    """
    if batch_size is not None:
        batch_size = check_int(batch_size, 'batch_size', 1)
    guidance_scale = check_scale(guidance_scale, 'guidance_scale')
    guided = guidance_scale != 1.0
    if batch_size is not None:  # before building a list of prompts
        check_memory(model, batch_size, guided)
    prompts = check_prompts(prompt, batch_size, 'prompt')
    batch = len(prompts)
    if negative_prompt is not None and \
            getattr(model.unet, 'guidance_embedding', None) is not None:
        raise ValueError('negative_prompt: this guidance-distilled model '
                         'learnt guidance against the empty prompt and '
                         'takes no other')
    uncond = (check_prompts(negative_prompt, batch, 'negative_prompt')
              if negative_prompt is not None else [''] * batch)
    classifier_scale = _check_classifier(model, classifier_scale, labels)
    steps, steps_up, upsample_temp = _check_stages(
        model, num_inference_steps, num_inference_steps_up, latents_up,
        upsample_temp)
    out_size = _check_output_size(model, height, width)
    generator = check_generator(generator, seed, model.device)
    check_memory(model, batch, guided)
    base_size = model.unet.image_size
    shape = (batch, model.unet.image_channels, base_size, base_size)
    edit = None
    if strength is not None:  # SDEdit: init_image is the image to edit
        edit = check_edit(model, init_image, strength, mask, batch,
                          (base_size, out_size))
        init_image = None
    if mask is None and init_image is not None:
        latents = init_image_as_latents(init_image, latents, shape)
        init_image = None
    latents = check_latents(latents, 'latents', shape)
    shape_up = None
    if model.unet_up is not None:  # checked now, not after the base stage
        shape_up = (batch, model.unet_up.image_channels, out_size, out_size)
        latents_up = check_latents(latents_up, 'latents_up', shape_up)
    inpaint = check_inpaint(model, init_image, mask, batch,
                            (base_size, out_size))
    return SamplingInputs(
        prompts=prompts, uncond=uncond, batch=batch,
        guidance_scale=guidance_scale, classifier_scale=classifier_scale,
        steps=steps, steps_up=steps_up, upsample_temp=upsample_temp,
        out_size=out_size, generator=generator, shape=shape,
        latents=latents, latents_up=latents_up, shape_up=shape_up,
        inpaint=inpaint, edit=edit)


def _check_classifier(model, classifier_scale, labels) -> float:
    """The CLIP-guidance scale (the model's by default)."""
    classifier_scale = check_scale(
        model.classifier_scale if classifier_scale is None else
        classifier_scale, 'classifier_scale')
    if classifier_scale > 0 and model.classifier is None:
        raise ValueError('classifier_scale > 0 needs a model with a '
                         '`classifier` (CLIP guidance); this one has none')
    if labels is not None:
        raise ValueError('labels are not used: CLIP guidance guides '
                         'towards the prompt (pass labels=None)')
    return classifier_scale


def _check_stages(model, steps, steps_up, latents_up, upsample_temp
                  ) -> Tuple[Optional[Union[int, str]],
                             Optional[Union[int, str]], float]:
    """Each stage's steps and the upsampler's settings (refused without an
    upsampler)."""
    steps = check_steps(steps, 'num_inference_steps',
                        model.diffusion_scheduler.num_train_timesteps)
    if model.unet_up is None:
        for name, value in (('num_inference_steps_up', steps_up),
                            ('latents_up', latents_up),
                            ('upsample_temp', upsample_temp)):
            if value is not None:
                raise ValueError(f'{name} is set but this model has no '
                                 'upsampler (unet_up)')
    steps_up = check_steps(steps_up, 'num_inference_steps_up',
                           (model.diffusion_scheduler_up or
                            model.diffusion_scheduler).num_train_timesteps)
    upsample_temp = check_float(
        model.upsample_temp if upsample_temp is None else upsample_temp,
        'upsample_temp', 0, 1, low_open=True)
    return steps, steps_up, upsample_temp


def _check_output_size(model, height, width) -> int:
    """The output's side; ``height``/``width`` may only repeat it."""
    out_size = (model.unet_up.image_size if model.unet_up is not None
                else model.unet.image_size)
    for name, value in (('height', height), ('width', width)):
        if value is None:
            continue
        try:
            same = check_int(value, name, 1) == out_size
        except ValueError:
            same = False
        if not same:
            raise ValueError(f'{name} must be {out_size} for this model '
                             f'(or None), got {describe(value)}')
    return out_size


def check_generator(generator, seed, device: torch.device
                    ) -> Optional[torch.Generator]:
    """The generator to sample with: ``generator``, or one seeded with
    ``seed``, or None (torch's global one)."""
    if generator is None:
        if seed is None:
            return None
        return torch.Generator(device).manual_seed(check_seed(seed))
    if not isinstance(generator, torch.Generator):
        raise TypeError('generator must be a torch.Generator (or None: '
                        f'use seed), got {describe(generator)}')
    if generator.device.type != device.type:
        raise ValueError(f'generator is on {generator.device} but the '
                         f'model on {device}: make it with '
                         f"torch.Generator('{device.type}')")
    return generator


def device_memory(device: torch.device) -> Optional[int]:
    """Bytes of memory of ``device`` (None when unknown)."""
    if device.type == 'cuda':
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == 'cpu':
        try:
            return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
        except (ValueError, OSError, AttributeError):
            return None
    return None


def check_memory(model, batch: int, guided: bool) -> None:
    """Refuse a batch whose samples and text features alone outgrow the
    device's memory, before anything is allocated."""
    per_sample = 0
    for i, net in enumerate((model.unet, model.unet_up)):
        if net is None:
            continue
        rows = 2 if guided and i == 0 else 1  # [cond, uncond]
        per_sample += 4 * rows * (net.image_channels * net.image_size**2 +
                                  net.text_ctx * net.xf_width)
    total = device_memory(model.device)
    need = batch * per_sample
    if total is not None and need > total:
        raise MemoryError(
            f'batch_size={batch} needs at least {need / 2**30:,.1f} GiB '
            'for its samples and text features alone, more than the '
            f'{total / 2**30:,.1f} GiB of {model.device}: sample in '
            'smaller batches')


def check_latents(latents, name: str, shape: tuple
                  ) -> Optional[torch.Tensor]:
    """None or a finite floating-point tensor of ``shape``."""
    if latents is None:
        return None
    if not torch.is_tensor(latents):
        hint = (' (torch.from_numpy converts an array)'
                if hasattr(latents, '__array__') else '')
        raise TypeError(f'{name} must be a torch.Tensor of shape {shape}'
                        f', got {describe(latents)}{hint}')
    if tuple(latents.shape) != shape:
        raise ValueError(f'{name} must be a tensor of shape {shape}, got '
                         f'shape {tuple(latents.shape)}')
    if latents.device.type == 'meta':
        raise ValueError(f'{name} is on the meta device: it has no data')
    if not latents.is_floating_point():
        raise TypeError(f'{name} must be floating-point noise, got '
                        f'{latents.dtype}')
    if not torch.isfinite(latents).all():
        raise ValueError(f'{name} contains NaN/Inf')
    return latents


def init_image_as_latents(init_image, latents, shape: tuple):
    """MMagic's meaning of ``init_image`` without ``mask``: the starting
    noise, (B, C, H, W) or MMagic's [cond, uncond] (2B, C, H, W)."""
    if latents is not None:
        return latents
    batch = shape[0]
    if torch.is_tensor(init_image) and init_image.dim() == 4 and \
            init_image.shape[0] == 2 * batch:
        init_image = init_image[:batch]
    if not torch.is_tensor(init_image) or tuple(init_image.shape) != shape:
        raise ValueError(
            'init_image without mask is the starting noise (as latents) and '
            f'must be a tensor of shape {shape}, got {describe(init_image)}; '
            'to inpaint an image, pass mask too (inpainting configs)')
    return init_image


def check_inpaint(model, image, mask, batch: int, sizes: Tuple[int, int]
                  ) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """The image to inpaint and its mask, expanded to the batch, as float32
    on the model's device; None without a mask.

    Args:
        sizes (tuple): The base and output resolutions (either is accepted).
    """
    if mask is None:
        return None
    if not model.is_inpainting:
        raise ValueError('mask is given but this model is not an '
                         'inpainting model (use an inpainting config)')
    if image is None:
        raise ValueError('mask needs init_image, the image to inpaint')
    for name, t, c in (('init_image', image, 3), ('mask', mask, 1)):
        _check_image_tensor(t, name, c, batch, sorted(set(sizes)))
    if image.min() < -1 or image.max() > 1:
        raise ValueError('init_image values must be in [-1, 1], got '
                         f'[{image.min():.3g}, {image.max():.3g}]')
    if mask.min() < 0 or mask.max() > 1:
        raise ValueError('mask values must be in [0, 1] (1 = keep), got '
                         f'[{mask.min():.3g}, {mask.max():.3g}]')
    device = model.device
    return (image.float().to(device).expand(batch, -1, -1, -1),
            mask.float().to(device).expand(batch, -1, -1, -1))


def _check_image_tensor(t, name: str, channels: int, batch: int,
                        sizes: List[int]) -> None:
    """A finite (B or 1, channels, H, H) tensor with H in ``sizes``."""
    if not torch.is_tensor(t) or t.dim() != 4 or t.shape[1] != channels \
            or t.shape[0] not in (1, batch) or t.shape[2] != t.shape[3] \
            or t.shape[2] not in sizes:
        raise ValueError(
            f'{name} must be (B or 1, {channels}, H, H) with B={batch} and H '
            f'in {sizes}, got {describe(t)}')
    if t.device.type == 'meta':
        raise ValueError(f'{name} is on the meta device: it has no data')
    if not torch.isfinite(t).all():
        raise ValueError(f'{name} contains NaN/Inf')


def check_test_cfg(model, cfg: dict) -> None:
    """The sampling settings of validation and test (``test_cfg``), checked
    when the model is built."""
    unknown = sorted(set(cfg) - set(TEST_CFG_KEYS))
    if unknown:
        raise ValueError(f'unknown test_cfg keys {unknown}; known: '
                         f'{list(TEST_CFG_KEYS)} (infer arguments)')
    for key in ('guidance_scale', 'classifier_scale'):
        if key in cfg:
            check_scale(cfg[key], f'test_cfg.{key}')
    if cfg.get('classifier_scale', 0) and model.classifier is None:
        raise ValueError('test_cfg.classifier_scale > 0 needs a '
                         '`classifier` (CLIP guidance)')
    for key in ('num_inference_steps', 'num_inference_steps_up'):
        check_steps(cfg.get(key), f'test_cfg.{key}')
    if cfg.get('seed') is not None:
        check_seed(cfg['seed'], 'test_cfg.seed')
    if model.unet_up is None:
        for key in ('num_inference_steps_up', 'upsample_temp'):
            if cfg.get(key) is not None:
                raise ValueError(f'test_cfg.{key} is set but this model '
                                 'has no upsampler (unet_up)')
    if cfg.get('upsample_temp') is not None:
        check_float(cfg['upsample_temp'], 'test_cfg.upsample_temp', 0, 1,
                    low_open=True)
