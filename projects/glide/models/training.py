"""What a GLIDE training step draws and how ``train_cfg`` is checked: the
training noise, the inpainting masks, the per-step random state.

The objective itself is :func:`.diffusion.training_losses` (beside the
process) and, for the CLIP guide, :func:`.noised_clip.contrastive_loss`.
"""
import math
from contextlib import contextmanager

import torch
import torch.nn as nn

from ..checks import check_float, check_seed

# train_cfg keys (Glide.loss, step_random_state, checkpoint matching).
TRAIN_CFG_KEYS = ('stage', 'p_uncond', 'vb_weight', 'seed', 'min_snr_gamma',
                  'min_snr_floor', 'low_freq_noise', 'init_from_base',
                  'teacher', 'w_range', 'student_steps')
# The network (Glide attribute) each train_cfg.stage trains.
STAGE_NETWORKS = dict(base='unet', upsample='unet_up', clip='classifier',
                      distill_guidance='unet', distill_steps='unet')


def check_train_cfg(model, cfg: dict) -> None:
    """Check ``train_cfg`` against ``model`` (its networks and schedulers);
    an error names the key and what it accepts."""
    unknown = sorted(set(cfg) - set(TRAIN_CFG_KEYS))
    if unknown:
        raise ValueError(f'unknown train_cfg keys {unknown}; known: '
                         f'{list(TRAIN_CFG_KEYS)}')
    stage = cfg.get('stage', 'base')
    if stage not in STAGE_NETWORKS:
        raise ValueError(f'train_cfg.stage must be one of '
                         f'{list(STAGE_NETWORKS)}, got {stage!r}')
    if stage.startswith('distill'):
        from .distillation import check_distill_cfg
        check_distill_cfg(cfg, model.unet,
                          model.diffusion_scheduler.num_train_timesteps)
    if stage == 'upsample' and model.unet_up is None:
        raise ValueError("train_cfg.stage='upsample' needs unet_up")
    if stage == 'clip' and model.classifier is None:
        raise ValueError("train_cfg.stage='clip' needs a classifier (a "
                         'NoisedCLIP)')
    check_float(cfg.get('p_uncond', 0.2), 'train_cfg.p_uncond', 0, 1)
    check_float(cfg.get('vb_weight', 0.001), 'train_cfg.vb_weight', 0)
    check_seed(cfg.get('seed', 0), 'train_cfg.seed')
    if cfg.get('min_snr_gamma') is not None:
        check_float(cfg['min_snr_gamma'], 'train_cfg.min_snr_gamma', 0,
                    low_open=True)
    check_float(cfg.get('low_freq_noise', 0.0), 'train_cfg.low_freq_noise',
                0, 1)
    if cfg.get('min_snr_floor') and stage != 'clip':
        check_float(cfg['min_snr_floor'], 'train_cfg.min_snr_floor', 0)
        scheduler = (model.diffusion_scheduler if stage == 'base' else
                     model.diffusion_scheduler_up)
        if scheduler.prediction_type != 'v':
            raise ValueError(
                'train_cfg.min_snr_floor needs a v-predicting network '
                f"(the {stage} scheduler's prediction_type='v'): with eps "
                'its weight grows as 1 / SNR, without bound at high noise')


@contextmanager
def step_random_state(seed: int, device: torch.device):
    """Draw a training step's randomness (timesteps, noise, caption dropout,
    masks, dropout layers) from a seed derived from ``seed`` (train_cfg's),
    the iteration and the rank, so that a resumed run continues exactly as
    an uninterrupted one."""
    from mmengine import MessageHub
    from mmengine.dist import get_rank
    it = MessageHub.get_current_instance().get_info('iter', 0)
    step_seed = (int(seed) * 1_000_003 + int(it) * 1009 + get_rank()) % 2**63
    devices = [device] if device.type == 'cuda' else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(step_seed)
        yield


def low_frequency_noise(shape, device, strength: float) -> torch.Tensor:
    """Training noise with extra low frequencies, of unit variance.

    White noise plus ``strength`` x standard normal noise constant over the
    blocks of each grid of 1x1, 2x2, 4x4 ... (side/2)x(side/2) blocks (the
    "pyramid" or multi-resolution noise of Whitaker, 2023, with equal
    weights), the sum divided by ``sqrt(1 + levels * strength**2)``.

    Args:
        shape (tuple): (B, C, H, W) with H == W.
        device: Where to draw.
        strength (float): Standard deviation of each coarse level, >= 0;
            0 gives plain white noise.

    Returns:
        Tensor: noise of ``shape``.
    """
    noise = torch.randn(shape, device=device)
    if strength <= 0:
        return noise
    batch, channels, side = shape[0], shape[1], shape[-1]
    levels, grid = 0, 1
    while grid < side:
        coarse = torch.randn(batch, channels, grid, grid, device=device)
        noise = noise + strength * nn.functional.interpolate(
            coarse, size=tuple(shape[-2:]), mode='nearest')
        levels, grid = levels + 1, grid * 2
    return noise / math.sqrt(1 + levels * strength**2)


def random_rectangle_masks(batch: int, size: int, device) -> torch.Tensor:
    """Inpainting training masks (B, 1, size, size): 1 = keep, with one
    random rectangle (10-60 % of each side) to fill."""
    masks = torch.ones(batch, 1, size, size, device=device)
    for i in range(batch):
        h, w = (int(v) for v in torch.randint(max(1, size // 10),
                                              max(2, size * 6 // 10), (2, )))
        top = int(torch.randint(0, size - h + 1, (1, )))
        left = int(torch.randint(0, size - w + 1, (1, )))
        masks[i, :, top:top + h, left:left + w] = 0
    return masks
