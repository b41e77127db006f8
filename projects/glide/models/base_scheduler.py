"""What GLIDE's samplers share: the training process, its respacing for
sampling and the step interface. Schedulers turn a network output into the
next sample; they never call a network."""
from copy import deepcopy
from typing import Optional

import numpy as np
import torch

from .diffusion import (GaussianDiffusion, Respacing, get_betas,
                        space_timesteps)


class GlideBaseScheduler:
    """What GLIDE's samplers share: the training process and its respacing.

    A scheduler turns a network output into the next sample; it never calls
    a network. Use: ``set_timesteps(n)``, then for ``t`` in ``timesteps``
    (original timesteps, descending) feed the network ``t`` and pass its
    output to :meth:`step`.

    Args:
        num_train_timesteps (int): Steps of the training process. Defaults
            to 1000.
        beta_schedule (str): ``'squaredcos_cap_v2'`` (base models) or
            ``'linear'`` (upsamplers).
        variance_type (str): ``'learned_range'`` (GLIDE) uses the network's
            variance channels; ``'fixed_large'`` ignores them.
        clip_sample (bool): Clip each x_0 prediction to [-1, 1]. Defaults to
            True (the reference's ``clip_denoised``).
        timestep_respacing (int | str): Default respacing, used until
            :meth:`set_timesteps` is called.
        prediction_type (str): What the network's first C output channels
            predict: ``'eps'``, the noise (GLIDE and every released
            checkpoint), or ``'v'``, the velocity ``sqrt(abar) eps -
            sqrt(1 - abar) x_0`` (Salimans and Ho, 2022), which a network
            trained from scratch predicts well at high noise, where eps
            predictions turn into poor x_0 (see the shapes config).
    """

    def __init__(self,
                 num_train_timesteps: int = 1000,
                 beta_schedule: str = 'squaredcos_cap_v2',
                 variance_type: str = 'learned_range',
                 clip_sample: bool = True,
                 timestep_respacing: Respacing = '100',
                 prediction_type: str = 'eps'):
        if prediction_type not in ('eps', 'v'):
            raise ValueError("prediction_type must be 'eps' or 'v', got "
                             f'{prediction_type!r}')
        if variance_type not in ('learned_range', 'fixed_large'):
            raise ValueError("variance_type must be 'learned_range' or "
                             f"'fixed_large', got {variance_type!r}")
        self.num_train_timesteps = num_train_timesteps
        self.beta_schedule = beta_schedule
        self.variance_type = variance_type
        self.clip_sample = clip_sample
        self.prediction_type = prediction_type
        self.default_respacing = timestep_respacing
        self.betas = get_betas(beta_schedule, num_train_timesteps)
        self.train_process = GaussianDiffusion(self.betas)
        self.set_timesteps(timestep_respacing)

    def set_timesteps(self, num_inference_steps: Respacing = None,
                      device=None) -> None:
        """Respace the process for sampling.

        Args:
            num_inference_steps (int | str | Sequence[int], optional): N (N
                steps evenly spread over the training steps, the last one
                included, as the reference's ``'N'``; 1: the last timestep
                alone), a reference respacing string (``'fast27'``,
                ``'ddim50'``, ``'10,10,3'``) or explicit timesteps. None: the
                configured default.
        """
        spec = (self.default_respacing
                if num_inference_steps is None else num_inference_steps)
        if isinstance(spec, (int, np.integer)) and not (
                0 < spec <= self.num_train_timesteps):
            raise ValueError('num_inference_steps must be in [1, '
                             f'{self.num_train_timesteps}], got {spec}')
        if isinstance(spec, (int, np.integer)) and spec == 1:
            # one step from pure noise: the last timestep (the reference's
            # '1' is t = 0, where a sample from noise stays noise)
            spec = [self.num_train_timesteps - 1]
        steps = space_timesteps(self.num_train_timesteps, spec)
        self.diffusion = GaussianDiffusion(self.betas, steps)
        self.timesteps = torch.tensor(steps[::-1], dtype=torch.long)
        self.reset()

    @property
    def num_inference_steps(self) -> int:
        return len(self.timesteps)

    def reset(self) -> None:
        """Forget the state of a previous sampling run (multistep solvers)."""

    def _mean_variance(self, model_output, index, sample, denoised_fn):
        if self.variance_type == 'fixed_large':
            model_output = model_output[:, :sample.shape[1]]
        return self.diffusion.p_mean_variance(
            model_output, sample, index, clip_denoised=self.clip_sample,
            denoised_fn=denoised_fn, prediction_type=self.prediction_type)

    @staticmethod
    def _noise_like(sample, noise, generator):
        if noise is not None:
            if noise.shape != sample.shape:
                raise ValueError(f'noise has shape {tuple(noise.shape)}, the '
                                 f'sample {tuple(sample.shape)}')
            return noise.to(sample)
        return torch.randn(sample.shape, generator=generator,
                           device=sample.device, dtype=sample.dtype)

    def step(self, model_output: torch.Tensor, timestep,
             sample: torch.Tensor, noise: Optional[torch.Tensor] = None,
             generator: Optional[torch.Generator] = None,
             denoised_fn=None,
             guidance_grad: Optional[torch.Tensor] = None) -> dict:
        """One sampling step from ``timestep`` to the previous one.

        Args:
            model_output (Tensor): The network's output at ``sample``: eps
                (C channels) then, for learned variance, the variance values.
            timestep (int | Tensor): The original timestep of ``sample`` (an
                element of :attr:`timesteps`).
            sample (Tensor): x_t.
            noise (Tensor, optional): The noise to add (stochastic samplers);
                drawn from ``generator`` when None.
            generator (torch.Generator, optional): Source of that noise.
            denoised_fn (callable, optional): Applied to each x_0 prediction
                before clipping (inpainting pastes the known region here).
            guidance_grad (Tensor, optional): Gradient of log p(y | x_t), the
                classifier guidance, already scaled.

        Returns:
            dict: ``prev_sample`` (x_{t-1}) and ``pred_xstart``.
        """
        raise NotImplementedError


# MMagic's release configs name mmagic's own DDIM scheduler; GLIDE samples
# with ours, which reproduces the reference.
SCHEDULER_ALIASES = {'EditDDIMScheduler': 'GlideDDIMScheduler'}
FOREIGN_SCHEDULER_ARGS = ('set_alpha_to_one', 'steps_offset', 'trained_betas',
                          'beta_start', 'beta_end', 'rescale_betas_zero_snr')


def build_scheduler(cfg) -> GlideBaseScheduler:
    """Build a GLIDE sampler from its config (or check a built one).

    MMagic's released configs name ``EditDDIMScheduler`` with diffusers'
    DDIM arguments (:data:`FOREIGN_SCHEDULER_ARGS`); the alias is mapped to
    ``GlideDDIMScheduler`` and those arguments, meaningless to GLIDE's own
    process, are dropped for every sampler type, so that a config's ``type``
    can be swapped for another sampler (``--sampler``, the web page).

    Args:
        cfg (dict | GlideBaseScheduler): A ``DIFFUSION_SCHEDULERS`` config,
            or a built scheduler.

    Returns:
        GlideBaseScheduler: The sampler.
    """
    from mmagic.registry import DIFFUSION_SCHEDULERS
    if not isinstance(cfg, dict):
        scheduler = cfg
    else:
        cfg = deepcopy(cfg)
        cfg['type'] = SCHEDULER_ALIASES.get(cfg.get('type'), cfg.get('type'))
        for key in FOREIGN_SCHEDULER_ARGS:
            cfg.pop(key, None)
        scheduler = DIFFUSION_SCHEDULERS.build(cfg)
    if not isinstance(scheduler, GlideBaseScheduler):
        raise TypeError('GLIDE needs one of its own schedulers '
                        '(GlideAncestralScheduler, GlideDDIMScheduler, '
                        'GlideDPMSolverScheduler), got '
                        f'{type(scheduler).__name__}')
    return scheduler
