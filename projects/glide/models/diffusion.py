"""The Gaussian diffusion process GLIDE was trained with, respaced for sampling.

This is the arithmetic the samplers share (they know nothing about networks):
beta schedules, the reference's timestep respacing (``'100'``, ``'fast27'``,
``'ddimN'``, ``'10,10,3,2,2'``), the posterior, x_0/eps conversions and the
learned-range variance. Coefficients are computed in float64 and cast to the
sample's dtype when used, as the reference does.
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

Respacing = Union[int, str, Sequence[int]]


def beta_schedule(name: str, num_timesteps: int = 1000) -> np.ndarray:
    """Betas of the reference's named schedules.

    Args:
        name (str): ``'linear'`` (Ho et al., scaled to ``num_timesteps``) or
            ``'squaredcos_cap_v2'`` (the cosine schedule, betas capped at
            0.999).
        num_timesteps (int): Number of training steps.
    """
    if name == 'linear':
        scale = 1000 / num_timesteps
        return np.linspace(scale * 0.0001, scale * 0.02, num_timesteps,
                           dtype=np.float64)
    if name in ('squaredcos_cap_v2', 'cosine'):

        def alpha_bar(t):
            return math.cos((t + 0.008) / 1.008 * math.pi / 2)**2

        return np.array([
            min(1 - alpha_bar((i + 1) / num_timesteps) /
                alpha_bar(i / num_timesteps), 0.999)
            for i in range(num_timesteps)
        ], dtype=np.float64)
    raise ValueError(f"beta_schedule must be 'linear' or 'squaredcos_cap_v2', "
                     f'got {name!r}')


# The schedulers' ``beta_schedule`` argument shadows the function's name.
beta_schedule_fn = beta_schedule


def space_timesteps(num_timesteps: int, section_counts: Respacing) -> List[int]:
    """The reference's timestep respacing, as a sorted list.

    Args:
        num_timesteps (int): Steps of the original process (1000).
        section_counts: An int N or a string: ``'N'`` (N steps evenly spread,
            first and last included), ``'a,b,c'`` (a, b, c steps in three equal
            sections), ``'ddimN'`` (the DDIM paper's integer stride from 0),
            ``'fast27'`` (``'10,10,3,2,2'`` with 999 replaced by 997); or an
            explicit sequence of timesteps.

    Returns:
        list[int]: the retained timesteps, ascending.
    """
    if isinstance(section_counts, (list, tuple, np.ndarray)):
        steps = sorted({int(t) for t in section_counts})
        if not steps or steps[0] < 0 or steps[-1] >= num_timesteps:
            raise ValueError(f'timesteps must lie in [0, {num_timesteps - 1}]'
                             f', got {section_counts}')
        return steps
    if isinstance(section_counts, (int, np.integer)):
        section_counts = str(int(section_counts))
    if not isinstance(section_counts, str):
        raise TypeError('respacing must be an int, a str or a sequence of '
                        f'timesteps, got {type(section_counts).__name__}')
    if section_counts.startswith('ddim'):
        if not section_counts[len('ddim'):].isdigit():
            raise ValueError("respacing 'ddimN' needs a number of steps N "
                             f"(e.g. 'ddim50'), got {section_counts!r}")
        desired = int(section_counts[len('ddim'):])
        for stride in range(1, num_timesteps):
            if len(range(0, num_timesteps, stride)) == desired:
                return list(range(0, num_timesteps, stride))
        raise ValueError(f'cannot create exactly {desired} steps with an '
                         'integer stride')
    if section_counts == 'fast27':
        steps = set(space_timesteps(num_timesteps, '10,10,3,2,2'))
        steps.remove(num_timesteps - 1)
        steps.add(num_timesteps - 3)
        return sorted(steps)
    try:
        counts = [int(x) for x in section_counts.split(',')]
    except ValueError:
        raise ValueError(
            f"respacing must look like '100', '10,10,3,2,2', 'ddim50' or "
            f"'fast27', got {section_counts!r}") from None
    size_per, extra = divmod(num_timesteps, len(counts))
    start, steps = 0, []
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if count < 1 or size < count:
            raise ValueError(f'cannot divide a section of {size} steps into '
                             f'{count}')
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        cur = 0.0
        for _ in range(count):
            steps.append(start + round(cur))
            cur += stride
        start += size
    return sorted(set(steps))


class GaussianDiffusion:
    """A (possibly respaced) diffusion process over ``betas``.

    Args:
        betas (np.ndarray): Betas of the original process.
        use_timesteps (Sequence[int], optional): Original timesteps to keep
            (ascending); the process is respaced over them as the reference's
            ``SpacedDiffusion``. Defaults to all.
    """

    def __init__(self, betas: np.ndarray,
                 use_timesteps: Optional[Sequence[int]] = None):
        betas = np.asarray(betas, dtype=np.float64)
        self.num_train_timesteps = len(betas)
        if use_timesteps is not None:
            keep = set(int(t) for t in use_timesteps)
            alphas_cumprod = np.cumprod(1.0 - betas)
            new_betas, last, timestep_map = [], 1.0, []
            for i, ac in enumerate(alphas_cumprod):
                if i in keep:
                    new_betas.append(1 - ac / last)
                    last = ac
                    timestep_map.append(i)
            betas = np.array(new_betas)
        else:
            timestep_map = list(range(len(betas)))
        # Original timestep of each respaced index (what the network sees).
        self.timestep_map = np.array(timestep_map, dtype=np.int64)
        self.betas = betas
        self.num_timesteps = len(betas)
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod -
                                                   1)
        self.posterior_variance = (
            betas * (1.0 - self.alphas_cumprod_prev) /
            (1.0 - self.alphas_cumprod))
        # Clipped: the posterior variance is 0 at the start of the chain.
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:])
            if self.num_timesteps > 1 else self.betas)
        self.posterior_mean_coef1 = (
            betas * np.sqrt(self.alphas_cumprod_prev) /
            (1.0 - self.alphas_cumprod))
        self.posterior_mean_coef2 = ((1.0 - self.alphas_cumprod_prev) *
                                     np.sqrt(alphas) /
                                     (1.0 - self.alphas_cumprod))
        self.log_betas = np.log(betas)

    # ---------------------------------------------------------------- utils
    @staticmethod
    def extract(arr: np.ndarray, index: Union[int, torch.Tensor],
                x: torch.Tensor) -> torch.Tensor:
        """``arr[index]`` as float32 broadcastable to ``x`` (as the
        reference's ``_extract_into_tensor``), then cast to ``x``'s dtype if
        that is a wider float."""
        if isinstance(index, torch.Tensor):
            idx = index.to('cpu', torch.long)
            res = torch.from_numpy(arr)[idx].float().to(x.device)
            res = res.view(-1, *([1] * (x.dim() - 1)))
        else:
            res = torch.tensor(float(arr[index]), dtype=torch.float32,
                               device=x.device)
        return res.to(torch.promote_types(res.dtype, x.dtype))

    def index_of(self, timestep: Union[int, torch.Tensor]) -> int:
        """Respaced index of an original timestep."""
        t = int(timestep)
        idx = np.searchsorted(self.timestep_map, t)
        if idx >= len(self.timestep_map) or self.timestep_map[idx] != t:
            raise ValueError(f'timestep {t} is not one of this schedule\'s '
                             f'timesteps')
        return int(idx)

    # --------------------------------------------------------- predictions
    def predict_xstart_from_eps(self, x_t, index, eps):
        return (self.extract(self.sqrt_recip_alphas_cumprod, index, x_t) * x_t
                - self.extract(self.sqrt_recipm1_alphas_cumprod, index, x_t) *
                eps)

    def predict_eps_from_xstart(self, x_t, index, pred_xstart):
        return ((self.extract(self.sqrt_recip_alphas_cumprod, index, x_t) * x_t
                 - pred_xstart) /
                self.extract(self.sqrt_recipm1_alphas_cumprod, index, x_t))

    def q_sample(self, x_start, index, noise):
        """Diffuse ``x_start`` to respaced ``index`` with ``noise``."""
        return (self.extract(self.sqrt_alphas_cumprod, index, x_start) *
                x_start + self.extract(self.sqrt_one_minus_alphas_cumprod,
                                       index, x_start) * noise)

    def q_posterior(self, x_start, x_t, index):
        """Mean and log variance (clipped) of q(x_{t-1} | x_t, x_0)."""
        mean = (self.extract(self.posterior_mean_coef1, index, x_t) * x_start
                + self.extract(self.posterior_mean_coef2, index, x_t) * x_t)
        log_var = self.extract(self.posterior_log_variance_clipped, index,
                               x_t).expand_as(x_t)
        return mean, log_var

    def learned_range_log_variance(self, var_values, index, x):
        """The model's log variance: ``var_values`` in [-1, 1] interpolates
        between the clipped posterior (-1) and beta (+1) log variances."""
        min_log = self.extract(self.posterior_log_variance_clipped, index, x)
        max_log = self.extract(self.log_betas, index, x)
        frac = (var_values + 1) / 2
        return frac * max_log + (1 - frac) * min_log

    def p_mean_variance(self,
                        model_output: torch.Tensor,
                        x: torch.Tensor,
                        index,
                        clip_denoised: bool = True,
                        denoised_fn=None) -> Dict[str, torch.Tensor]:
        """Mean, log variance and x_0 of p(x_{t-1} | x_t) from the network's
        output (eps, then the variance values when it has 2C channels; the
        fixed large variance, beta, when it has C channels)."""
        c = x.shape[1]
        if model_output.shape[1] == 2 * c:
            eps, var_values = model_output.split(c, dim=1)
            log_var = self.learned_range_log_variance(var_values, index, x)
        elif model_output.shape[1] == c:
            eps = model_output
            log_var = self.extract(
                np.log(np.append(self.posterior_variance[1], self.betas[1:])),
                index, x).expand_as(x)
        else:
            raise ValueError(f'model output has {model_output.shape[1]} '
                             f'channels; expected {c} or {2 * c}')
        pred_xstart = self.predict_xstart_from_eps(x, index, eps)
        if denoised_fn is not None:
            pred_xstart = denoised_fn(pred_xstart)
        if clip_denoised:
            pred_xstart = pred_xstart.clamp(-1, 1)
        mean, _ = self.q_posterior(pred_xstart, x, index)
        return dict(mean=mean, log_variance=log_var, pred_xstart=pred_xstart,
                    eps=eps)


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
    """

    def __init__(self,
                 num_train_timesteps: int = 1000,
                 beta_schedule: str = 'squaredcos_cap_v2',
                 variance_type: str = 'learned_range',
                 clip_sample: bool = True,
                 timestep_respacing: Respacing = '100'):
        if variance_type not in ('learned_range', 'fixed_large'):
            raise ValueError("variance_type must be 'learned_range' or "
                             f"'fixed_large', got {variance_type!r}")
        self.num_train_timesteps = num_train_timesteps
        self.beta_schedule = beta_schedule
        self.variance_type = variance_type
        self.clip_sample = clip_sample
        self.default_respacing = timestep_respacing
        self.betas = beta_schedule_fn(beta_schedule, num_train_timesteps)
        self.train_process = GaussianDiffusion(self.betas)
        self.init_noise_sigma = 1.0
        self.set_timesteps(timestep_respacing)

    def set_timesteps(self, num_inference_steps: Respacing = None,
                      device=None) -> None:
        """Respace the process for sampling.

        Args:
            num_inference_steps (int | str | Sequence[int], optional): N (N
                steps evenly spread over the training steps, the last one
                included, as the reference's ``'N'``), or a reference
                respacing string (``'fast27'``, ``'ddim50'``, ``'10,10,3'``),
                or explicit timesteps. None: the configured default.
        """
        spec = (self.default_respacing
                if num_inference_steps is None else num_inference_steps)
        if isinstance(spec, (int, np.integer)) and not (
                0 < spec <= self.num_train_timesteps):
            raise ValueError('num_inference_steps must be in [1, '
                             f'{self.num_train_timesteps}], got {spec}')
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
            denoised_fn=denoised_fn)

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



# -------------------------------------------------------------- training
def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))), elementwise."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) +
                  (mean1 - mean2)**2 * torch.exp(-logvar2))


def _approx_standard_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(
        math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """Log-likelihood of 8-bit images ``x`` in [-1, 1] under a Gaussian
    discretised to bins of width 2/255 (Ho et al.), elementwise."""
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = _approx_standard_normal_cdf(inv_stdv * (centered + 1.0 / 255))
    cdf_min = _approx_standard_normal_cdf(inv_stdv * (centered - 1.0 / 255))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(
        x < -0.999, log_cdf_plus,
        torch.where(x > 0.999, log_one_minus_cdf_min,
                    torch.log(cdf_delta.clamp(min=1e-12))))


def vb_terms_bpd(process: GaussianDiffusion, model_output, x_start, x_t, t):
    """The variational bound term L_t in bits per dimension, per sample:
    KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) for t > 0, the decoder NLL at
    t = 0 (improved DDPM). ``t`` indexes ``process``'s steps."""
    true_mean, true_log_var = process.q_posterior(x_start, x_t, t)
    out = process.p_mean_variance(model_output, x_t, t, clip_denoised=False)
    kl = normal_kl(true_mean, true_log_var, out['mean'], out['log_variance'])
    kl = kl.mean(dim=list(range(1, kl.dim()))) / math.log(2.0)
    nll = -discretized_gaussian_log_likelihood(
        x_start, out['mean'], 0.5 * out['log_variance'])
    nll = nll.mean(dim=list(range(1, nll.dim()))) / math.log(2.0)
    return torch.where(t == 0, nll, kl)
