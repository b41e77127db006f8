"""The reference's ancestral sampler (``p_sample``) with learned variance."""
from mmagic.registry import DIFFUSION_SCHEDULERS

from .base_scheduler import GlideBaseScheduler


@DIFFUSION_SCHEDULERS.register_module()
class GlideAncestralScheduler(GlideBaseScheduler):
    """Ancestral sampling over respaced timesteps, exactly as OpenAI's
    ``p_sample``: x_{t-1} ~ N(mu(x_t, x_0), exp(model log variance)), no noise
    at the last step; classifier guidance shifts the mean by
    ``variance * guidance_grad``. GLIDE's base recipe: respacing ``'100'``.

    See :class:`GlideBaseScheduler` for the arguments.
    """

    def step(self, model_output, timestep, sample, noise=None,
             generator=None, denoised_fn=None, guidance_grad=None):
        index = self.diffusion.index_of(timestep)
        out = self._mean_variance(model_output, index, sample, denoised_fn)
        mean, log_var = out['mean'], out['log_variance']
        if guidance_grad is not None:
            mean = self.diffusion.condition_mean(mean, log_var, guidance_grad)
        if index == 0:
            prev = mean
        else:
            noise = self._noise_like(sample, noise, generator)
            prev = mean + (0.5 * log_var).exp() * noise
        return dict(prev_sample=prev.to(sample.dtype),
                    pred_xstart=out['pred_xstart'])
