"""DPM-Solver++(2M) for GLIDE's eps + learned-variance networks."""
import math

from mmagic.registry import DIFFUSION_SCHEDULERS

from .base_scheduler import GlideBaseScheduler


@DIFFUSION_SCHEDULERS.register_module()
class GlideDPMSolverScheduler(GlideBaseScheduler):
    """DPM-Solver++(2M) (Lu et al., 2022), the multistep second-order solver
    of the diffusion ODE in data (x_0) prediction.

    The learned variance is not needed by an ODE solver and is ignored; x_0
    predictions are clipped (``clip_sample``) and pass through
    ``denoised_fn`` like in the reference samplers, so inpainting and
    classifier guidance (folded into eps, as DDIM) work unchanged. The first
    step is first order (DDIM), and the last one returns x_0. Deterministic:
    ``noise``/``generator`` are accepted and unused. Typical: 20-25 steps.

    See :class:`GlideBaseScheduler` for the arguments.
    """

    def reset(self):
        self._prev_x0 = None
        self._prev_h = None

    def step(self, model_output, timestep, sample, noise=None,
             generator=None, denoised_fn=None, guidance_grad=None):
        d = self.diffusion
        index = d.index_of(timestep)
        out = self._mean_variance(model_output, index, sample, denoised_fn)
        x0 = out['pred_xstart']
        if guidance_grad is not None:
            x0 = d.condition_score(sample, index, x0, guidance_grad)
        if index == 0:  # the next "timestep" is clean data
            self.reset()
            return dict(prev_sample=x0.to(sample.dtype), pred_xstart=x0)
        abar_t = float(d.alphas_cumprod[index])
        abar_s = float(d.alphas_cumprod_prev[index])
        alpha_s, sigma_t, sigma_s = (math.sqrt(abar_s), math.sqrt(1 - abar_t),
                                     math.sqrt(1 - abar_s))
        lam_t = 0.5 * math.log(abar_t / (1 - abar_t))
        lam_s = 0.5 * math.log(abar_s / (1 - abar_s))
        h = lam_s - lam_t
        if self._prev_x0 is None:
            d_x0 = x0
        else:
            r = self._prev_h / h
            d_x0 = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * self._prev_x0
        prev = (sigma_s / sigma_t) * sample - alpha_s * math.expm1(-h) * d_x0
        self._prev_x0, self._prev_h = x0, h
        return dict(prev_sample=prev.to(sample.dtype), pred_xstart=x0)
