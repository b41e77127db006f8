"""The Gaussian diffusion process GLIDE was trained with, respaced for sampling.

This is the arithmetic the samplers and the training loss share (none of it
knows about networks): beta schedules, the reference's timestep respacing
(``'100'``, ``'fast27'``, ``'ddimN'``, ``'10,10,3,2,2'``), the posterior,
x_0/eps/v conversions, classifier guidance, the learned-range variance, and
the training objective (the hybrid loss, its variational bound term and the
Min-SNR weights). Coefficients are computed in float64 and cast to the
sample's dtype when used, as the reference does.
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

Respacing = Union[int, str, Sequence[int]]


def get_betas(name: str, num_timesteps: int = 1000) -> np.ndarray:
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

    def predict_xstart_from_v(self, x_t, index, v):
        return (self.extract(self.sqrt_alphas_cumprod, index, x_t) * x_t -
                self.extract(self.sqrt_one_minus_alphas_cumprod, index, x_t) *
                v)

    def predict_eps_from_v(self, x_t, index, v):
        return (self.extract(self.sqrt_one_minus_alphas_cumprod, index, x_t) *
                x_t + self.extract(self.sqrt_alphas_cumprod, index, x_t) * v)

    def v_target(self, x_start, index, noise):
        """The velocity ``sqrt(abar) eps - sqrt(1 - abar) x_0`` (Salimans and
        Ho, 2022) of ``x_start`` diffused with ``noise``."""
        return (self.extract(self.sqrt_alphas_cumprod, index, x_start) *
                noise - self.extract(self.sqrt_one_minus_alphas_cumprod,
                                     index, x_start) * x_start)

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

    def condition_score(self, x_t, index, pred_xstart, grad):
        """Classifier guidance folded into the score (Dhariwal and Nichol's
        ``condition_score``; the DDIM-like samplers): eps becomes ``eps -
        sqrt(1 - abar) * grad``; returns that eps' x_0."""
        abar = self.extract(self.alphas_cumprod, index, x_t)
        eps = self.predict_eps_from_xstart(x_t, index, pred_xstart)
        eps = eps - (1 - abar).sqrt() * grad
        return self.predict_xstart_from_eps(x_t, index, eps)

    @staticmethod
    def condition_mean(mean, log_variance, grad):
        """Classifier guidance on an ancestral step (Dhariwal and Nichol's
        ``condition_mean``): the mean moves by ``variance * grad``, in float32
        at least."""
        dtype = torch.promote_types(mean.dtype, torch.float32)
        return mean.to(dtype) + log_variance.exp().to(dtype) * grad.to(dtype)

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
                        denoised_fn=None,
                        prediction_type: str = 'eps'
                        ) -> Dict[str, torch.Tensor]:
        """Mean, log variance and x_0 of p(x_{t-1} | x_t) from the network's
        output (the prediction, eps or v, then the variance values when it
        has 2C channels; the fixed large variance, beta, when it has C
        channels)."""
        c = x.shape[1]
        if model_output.shape[1] == 2 * c:
            pred, var_values = model_output.split(c, dim=1)
            log_var = self.learned_range_log_variance(var_values, index, x)
        elif model_output.shape[1] == c:
            pred = model_output
            log_var = self.extract(
                np.log(np.append(self.posterior_variance[1], self.betas[1:])),
                index, x).expand_as(x)
        else:
            raise ValueError(f'model output has {model_output.shape[1]} '
                             f'channels; expected {c} or {2 * c}')
        if prediction_type == 'v':
            eps = self.predict_eps_from_v(x, index, pred)
            pred_xstart = self.predict_xstart_from_v(x, index, pred)
        else:
            eps = pred
            pred_xstart = self.predict_xstart_from_eps(x, index, eps)
        if denoised_fn is not None:
            pred_xstart = denoised_fn(pred_xstart)
        if clip_denoised:
            pred_xstart = pred_xstart.clamp(-1, 1)
        mean, _ = self.q_posterior(pred_xstart, x, index)
        return dict(mean=mean, log_variance=log_var, pred_xstart=pred_xstart,
                    eps=eps)


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


def vb_terms_bpd(process: GaussianDiffusion, model_output, x_start, x_t, t,
                 prediction_type: str = 'eps'):
    """The variational bound term L_t in bits per dimension, per sample:
    KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) for t > 0, the decoder NLL at
    t = 0 (improved DDPM). ``t`` indexes ``process``'s steps."""
    true_mean, true_log_var = process.q_posterior(x_start, x_t, t)
    out = process.p_mean_variance(model_output, x_t, t, clip_denoised=False,
                                  prediction_type=prediction_type)
    kl = normal_kl(true_mean, true_log_var, out['mean'], out['log_variance'])
    kl = kl.mean(dim=list(range(1, kl.dim()))) / math.log(2.0)
    nll = -discretized_gaussian_log_likelihood(
        x_start, out['mean'], 0.5 * out['log_variance'])
    nll = nll.mean(dim=list(range(1, nll.dim()))) / math.log(2.0)
    return torch.where(t == 0, nll, kl)

def hybrid_loss(process: GaussianDiffusion, model_output, x_start, x_t, t,
                noise, prediction_type: str = 'eps', mse_weight=None):
    """Improved DDPM's hybrid objective, per sample: the MSE of the
    prediction (eps, or v) and the variational bound term, in which the
    prediction is frozen so that the bound trains only the variance.

    Args:
        process (GaussianDiffusion): The training process.
        model_output (Tensor): (B, 2C, H, W): prediction, variance values.
        x_start, x_t (Tensor): The images and their diffused versions.
        t (Tensor): (B,) timesteps.
        noise (Tensor): The noise that made ``x_t``.
        prediction_type (str): ``'eps'`` or ``'v'``.
        mse_weight (Tensor, optional): (B,) weights of the MSE
            (:func:`min_snr_weight`).

    Returns:
        tuple[Tensor, Tensor]: the (B,) MSE and VB terms.
    """
    c = x_start.shape[1]
    pred = model_output[:, :c]
    target = (process.v_target(x_start, t, noise)
              if prediction_type == 'v' else noise)
    mse = ((target - pred)**2).mean(dim=(1, 2, 3))
    if mse_weight is not None:
        mse = mse * mse_weight
    frozen = torch.cat([pred.detach(), model_output[:, c:]], dim=1)
    vb = vb_terms_bpd(process, frozen, x_start, x_t, t, prediction_type)
    return mse, vb


def min_snr_weight(process, t: torch.Tensor, gamma: Optional[float],
                   prediction_type: str = 'eps',
                   floor: float = 0.0) -> torch.Tensor:
    """Min-SNR-gamma weight of the prediction's MSE: ``min(SNR, gamma) /
    SNR`` for eps, ``min(SNR, gamma) / (SNR + 1)`` for v, with
    ``SNR(t) = abar_t / (1 - abar_t)``; either way the x_0 error is weighted
    ``min(SNR, gamma)``.

    With a ``floor`` the x_0 error is weighted ``max(min(SNR, gamma),
    floor)``: the noisiest steps, where a caption's place words decide
    where the shape goes, keep a weight, instead of one that vanishes with
    the SNR (for v only: eps' weight would be unbounded).

    Args:
        process: The training process (its ``alphas_cumprod``).
        t (Tensor): Timesteps, (B,).
        gamma (float, optional): The SNR cap, > 0 (5 in the paper); None
            for no cap.
        prediction_type (str): ``'eps'`` or ``'v'``.
        floor (float): The least weight of the x_0 error, >= 0.

    Returns:
        Tensor: (B,) weights.
    """
    if gamma is not None and not gamma > 0:
        raise ValueError(f'train_cfg.min_snr_gamma must be > 0, got {gamma}')
    abar = torch.as_tensor(process.alphas_cumprod, dtype=torch.float64,
                           device=t.device)[t]
    snr = abar / (1 - abar)
    x0_weight = snr if gamma is None else snr.clamp(max=float(gamma))
    x0_weight = x0_weight.clamp(min=float(floor))
    denominator = snr + 1 if prediction_type == 'v' else snr
    return (x0_weight / denominator).float()


def training_losses(process: GaussianDiffusion, model_fn, x_start, t, noise,
                    prediction_type: str = 'eps',
                    min_snr_gamma: Optional[float] = None,
                    min_snr_floor: float = 0.0,
                    vb_weight: float = 0.001) -> Dict[str, torch.Tensor]:
    """GLIDE's training objective for one batch (guided-diffusion's
    ``training_losses``): diffuse ``x_start`` to ``t`` with ``noise``, run
    the network, and return the hybrid loss's two terms, averaged.

    Args:
        process (GaussianDiffusion): The training process.
        model_fn (callable): ``(x_t, t) -> (B, 2C, H, W)`` network output
            (prediction, variance values), the conditioning already bound.
        x_start (Tensor): (B, C, H, W) images in [-1, 1].
        t (Tensor): (B,) timesteps.
        noise (Tensor): The noise of ``x_t``, like ``x_start``.
        prediction_type (str): ``'eps'`` or ``'v'``.
        min_snr_gamma (float, optional): Min-SNR cap (None: the paper's
            unweighted MSE); see :func:`min_snr_weight`.
        min_snr_floor (float): Least x_0 weight (v only).
        vb_weight (float): The bound's weight per step; the bound is
            weighted ``vb_weight`` x T, as improved DDPM's hybrid loss.

    Returns:
        dict: ``loss_mse`` and ``loss_vb`` (scalars).
    """
    x_t = process.q_sample(x_start, t, noise)
    out = model_fn(x_t, t).float()
    weight = None
    if min_snr_gamma is not None or min_snr_floor:
        weight = min_snr_weight(process, t, min_snr_gamma, prediction_type,
                                min_snr_floor or 0)
    mse, vb = hybrid_loss(process, out, x_start, x_t, t, noise,
                          prediction_type, weight)
    return dict(loss_mse=mse.mean(),
                loss_vb=vb_weight * process.num_timesteps * vb.mean())
