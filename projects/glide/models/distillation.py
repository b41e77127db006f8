"""Guided distillation (Meng et al., CVPR 2023, "On Distillation of Guided
Diffusion Models"): fewer network passes per image.

Stage 1, ``train_cfg.stage='distill_guidance'``: a student with a guidance
input (``Text2ImUNet(guidance_embed=True)``, zero-initialised, so it starts
as its teacher) learns the teacher's classifier-free-guided output for a
guidance scale w drawn from ``train_cfg.w_range``: one pass per sampling
step instead of two (:func:`guidance_target`).

Stage 2, ``train_cfg.stage='distill_steps'``: progressive distillation
(Salimans & Ho, ICLR 2022) of the deterministic DDIM sampler: the student
takes ``train_cfg.student_steps`` steps over the evenly spread timesteps
(``'N'`` respacing, first and last included) where its teacher (the
previous stage's network) takes ``2 * student_steps - 1`` (the same
timesteps and the midpoints between them), and learns to land in one step
where the teacher lands in two (:func:`two_step_target`). 25 -> 13 -> 7 -> 4
steps: each grid is every other timestep of the one before.

The teacher is a frozen network loaded from ``train_cfg.teacher``'s
checkpoint (:func:`load_teacher`); it is not part of the model's state dict
(a resumed run reloads it from the same file).
"""
from copy import deepcopy
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmagic.registry import MODELS

from .checkpoint import read_state_dict
from .diffusion import space_timesteps
from .sampling import classifier_free_guidance

#: The train_cfg.stage values of the two stages.
DISTILL_STAGES = ('distill_guidance', 'distill_steps')


def load_teacher(unet_cfg: dict, teacher_cfg: dict,
                 device: torch.device) -> nn.Module:
    """The frozen teacher network: ``unet_cfg`` with the teacher's
    ``guidance_embed``, weights from the ``unet.*`` keys of
    ``teacher_cfg['checkpoint']``.

    Args:
        unet_cfg (dict): The student's network config.
        teacher_cfg (dict): ``checkpoint`` (path) and ``guidance_embed``
            (bool: a stage-1 student as the teacher of stage 2).
        device: Where the teacher runs.
    """
    cfg = deepcopy(dict(unet_cfg))
    cfg['guidance_embed'] = bool(teacher_cfg.get('guidance_embed', False))
    teacher = MODELS.build(cfg)
    state = read_state_dict(teacher_cfg['checkpoint'], prefix='unet.')
    missing, unexpected = teacher.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"train_cfg.teacher.checkpoint {teacher_cfg['checkpoint']!r} "
            f'does not fit the teacher network (guidance_embed='
            f"{cfg['guidance_embed']}): missing {missing[:5]}, unexpected "
            f'{unexpected[:5]}')
    return teacher.to(device).eval().requires_grad_(False)


def draw_guidance(batch: int, w_range: Sequence[float],
                  device: torch.device) -> torch.Tensor:
    """Guidance scales w ~ U[w_range], (batch,)."""
    low, high = (float(v) for v in w_range)
    return low + (high - low) * torch.rand(batch, device=device)


@torch.no_grad()
def guidance_target(teacher: nn.Module, x_t: torch.Tensor, t: torch.Tensor,
                    text_pair: dict, w: torch.Tensor) -> torch.Tensor:
    """Stage 1's target: the teacher's classifier-free-guided output at
    ``x_t`` (the prediction ``uncond + w (cond - uncond)`` per sample, the
    variance values of the conditional pass).

    Args:
        teacher: The non-distilled network.
        x_t (Tensor): (B, C, H, W) noisy images.
        t (Tensor): (B,) timesteps.
        text_pair (dict): The teacher's encoded ``[prompts, '']`` (2B rows).
        w (Tensor): (B,) guidance scales.
    """
    out = teacher(torch.cat([x_t, x_t]), torch.cat([t, t]), text=text_pair)
    channels = x_t.shape[1]
    return classifier_free_guidance(out, w.view(-1, 1, 1, 1), channels)


def step_grids(student_steps: int,
               num_timesteps: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The student's timesteps and the teacher's (descending), the teacher's
    being the student's and the midpoints between them.

    Raises:
        ValueError: when the student's grid is not every other timestep of
            a ``2 * student_steps - 1`` grid.
    """
    student = space_timesteps(num_timesteps, str(student_steps))
    teacher = space_timesteps(num_timesteps, str(2 * student_steps - 1))
    if teacher[::2] != student:
        raise ValueError(f'{student_steps} steps are not every other of '
                         f'{2 * student_steps - 1} over {num_timesteps}')
    return (torch.tensor(student[::-1], dtype=torch.long),
            torch.tensor(teacher[::-1], dtype=torch.long))


def draw_steps(student: torch.Tensor, teacher: torch.Tensor, batch: int,
               device: torch.device) -> Tuple[torch.Tensor, ...]:
    """One student step per sample: its timestep ``t``, the teacher's
    midpoint ``t_mid`` and the step's end ``t_end`` (-1: the end of
    sampling, x_0; the last step has no midpoint: ``t_mid`` = -1 too)."""
    k = torch.randint(0, len(student), (batch, ))
    t = student[k]
    t_mid = torch.where(k + 1 < len(student), teacher[(2 * k + 1).clamp(
        max=len(teacher) - 1)], torch.full_like(k, -1))
    t_end = torch.where(k + 1 < len(student),
                        student[(k + 1).clamp(max=len(student) - 1)],
                        torch.full_like(k, -1))
    return t.to(device), t_mid.to(device), t_end.to(device)


def alpha_sigma(alphas_cumprod: torch.Tensor,
                t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """sqrt(abar_t) and sqrt(1 - abar_t) as (B, 1, 1, 1); t = -1 is the
    end of sampling (abar = 1)."""
    abar = torch.where(t >= 0, alphas_cumprod[t.clamp(min=0)],
                       torch.ones_like(alphas_cumprod[:1]))
    return abar.sqrt().view(-1, 1, 1, 1), (1 - abar).sqrt().view(-1, 1, 1, 1)


def x0_from_output(out: torch.Tensor, x_t: torch.Tensor, alpha, sigma,
                   prediction_type: str) -> torch.Tensor:
    """x_0 from a network's prediction channels (eps or v)."""
    pred = out[:, :x_t.shape[1]]
    if prediction_type == 'v':
        return alpha * x_t - sigma * pred
    return (x_t - sigma * pred) / alpha


def prediction_from_x0(x0: torch.Tensor, x_t: torch.Tensor, alpha, sigma,
                       prediction_type: str) -> torch.Tensor:
    """The eps or v that makes ``x0`` at ``x_t``."""
    if prediction_type == 'v':
        return (alpha * x_t - x0) / sigma
    return (x_t - alpha * x0) / sigma


def ddim_step(x_t: torch.Tensor, x0: torch.Tensor, at, st, a_next,
              s_next) -> torch.Tensor:
    """Deterministic DDIM from x_t to the next timestep given x_0 (the
    sampler's arithmetic: eps re-derived from x_0)."""
    eps = (x_t - at * x0) / st
    return a_next * x0 + s_next * eps


@torch.no_grad()
def two_step_target(teacher_fn: Callable, x_t: torch.Tensor,
                    steps: Tuple[torch.Tensor, ...],
                    alphas_cumprod: torch.Tensor, prediction_type: str,
                    clip: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stage 2's target: the x_0 that takes one DDIM step from ``x_t`` to
    where two teacher steps land (Salimans & Ho's Algorithm 2).

    Args:
        teacher_fn (callable): ``(x, t) -> output`` of the teacher.
        x_t (Tensor): (B, C, H, W).
        steps (tuple): ``t``, ``t_mid``, ``t_end`` from :func:`draw_steps`.
        alphas_cumprod (Tensor): The training process's abar, (T,).
        prediction_type (str): ``'eps'`` or ``'v'``.
        clip (bool): Clip the teacher's x_0 predictions to [-1, 1], as the
            sampler does.

    Returns:
        tuple: (x_0 target, the teacher's output at ``x_t``).
    """
    t, t_mid, t_end = steps
    at, st = alpha_sigma(alphas_cumprod, t)
    first = teacher_fn(x_t, t)
    x0 = x0_from_output(first, x_t, at, st, prediction_type)
    x0 = x0.clamp(-1, 1) if clip else x0
    has_mid = t_mid >= 0
    am, sm = alpha_sigma(alphas_cumprod, t_mid)
    x_mid = ddim_step(x_t, x0, at, st, am, sm)
    second = teacher_fn(x_mid, torch.where(has_mid, t_mid, t))
    x0_mid = x0_from_output(second, x_mid, am, sm.clamp(min=1e-12),
                            prediction_type)
    x0_mid = x0_mid.clamp(-1, 1) if clip else x0_mid
    ae, se = alpha_sigma(alphas_cumprod, t_end)
    x_end = ddim_step(x_mid, x0_mid, am, sm.clamp(min=1e-12), ae, se)
    x_end = torch.where(has_mid.view(-1, 1, 1, 1), x_end, x0)
    ratio = se / st
    target = (x_end - ratio * x_t) / (ae - ratio * at)
    return target, first


def distillation_loss(student_out: torch.Tensor,
                      target_out: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample over every channel (the prediction
    and the variance values), averaged over the batch."""
    return ((student_out.float() - target_out.float())**2).mean()


def student_target(teacher_fn: Callable, x_t: torch.Tensor,
                   steps: Tuple[torch.Tensor, ...],
                   alphas_cumprod: torch.Tensor,
                   prediction_type: str) -> torch.Tensor:
    """Stage 2's target in the network's output space: the prediction
    (eps or v) that makes :func:`two_step_target`'s x_0 at ``x_t``, and
    the teacher's variance values."""
    x0, first = two_step_target(teacher_fn, x_t, steps, alphas_cumprod,
                                prediction_type)
    at, st = alpha_sigma(alphas_cumprod, steps[0])
    pred = prediction_from_x0(x0, x_t, at, st, prediction_type)
    return torch.cat([pred, first[:, x_t.shape[1]:]], dim=1)


def distill_loss(model, x_start: torch.Tensor, prompts: list) -> dict:
    """A distillation stage's loss for :meth:`Glide.loss`: the
    student's output against the teacher's guided output
    (``'distill_guidance'``) or against the output that lands where two
    teacher DDIM steps land (``'distill_steps'``), for images noised at
    random timesteps and guidance scales w ~ U[``train_cfg.w_range``].

    Returns:
        dict: ``loss_distill``.
    """
    cfg, device = model.train_cfg, x_start.device
    batch = len(x_start)
    drop = torch.rand(batch) < float(cfg.get('p_uncond', 0.1))
    prompts = ['' if d else p for d, p in zip(drop.tolist(), prompts)]
    process = model.diffusion_scheduler.train_process
    abar = torch.as_tensor(process.alphas_cumprod, dtype=torch.float32,
                           device=device)
    w = draw_guidance(batch, cfg.get('w_range', (1.0, 8.0)), device)
    tokens, mask = model.tokenizer(prompts, device=device)
    if cfg['stage'] == 'distill_guidance':
        t = torch.randint(0, process.num_timesteps, (batch, ),
                          device=device)
    else:
        steps = draw_steps(*step_grids(cfg['student_steps'],
                                       process.num_timesteps), batch,
                           device)
        t = steps[0]
    x_t = process.q_sample(x_start, t, torch.randn_like(x_start))
    teacher = model.teacher
    if cfg['stage'] == 'distill_guidance':
        pair_tokens, pair_mask = model.tokenizer(
            prompts + [''] * batch, device=device)
        target = guidance_target(
            teacher, x_t, t, teacher.encode_text(pair_tokens, pair_mask),
            w)
    else:
        text = teacher.encode_text(tokens, mask)
        target = student_target(
            lambda x, s: teacher(x, s, text=text, guidance=w), x_t,
            steps, abar, model.diffusion_scheduler.prediction_type)
    out = model.unet(x_t, t, tokens=tokens, mask=mask, guidance=w)
    return dict(loss_distill=distillation_loss(out, target))


def check_distill_cfg(cfg: dict, unet: nn.Module,
                      num_timesteps: Optional[int] = None) -> None:
    """Check a distillation stage's ``train_cfg``: the teacher's checkpoint,
    the guidance range, the steps; an error names the key."""
    stage = cfg.get('stage')
    teacher = cfg.get('teacher')
    if not isinstance(teacher, dict) or not teacher.get('checkpoint'):
        raise ValueError(f"train_cfg.stage={stage!r} needs train_cfg.teacher"
                         "=dict(checkpoint=PATH, guidance_embed=bool)")
    if unet.guidance_embedding is None:
        raise ValueError(f'train_cfg.stage={stage!r} trains a guidance-'
                         'distilled student: set model.unet.guidance_embed='
                         'True')
    low, high = cfg.get('w_range', (1.0, 8.0))
    if not 0 <= float(low) <= float(high):
        raise ValueError('train_cfg.w_range must be (low, high) with 0 <= '
                         f'low <= high, got {cfg.get("w_range")}')
    if stage == 'distill_steps':
        steps = cfg.get('student_steps')
        if not isinstance(steps, int) or steps < 2:
            raise ValueError('train_cfg.student_steps must be an int >= 2, '
                             f'got {steps!r}')
        if not teacher.get('guidance_embed'):
            raise ValueError("train_cfg.stage='distill_steps' distils a "
                             'guidance-distilled teacher: set '
                             'train_cfg.teacher.guidance_embed=True')
        step_grids(steps, num_timesteps or 1000)
