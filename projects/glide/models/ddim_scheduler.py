"""The reference's DDIM sampler (``ddim_sample``) for GLIDE's networks."""
from mmagic.registry import DIFFUSION_SCHEDULERS

from .base_scheduler import GlideBaseScheduler


@DIFFUSION_SCHEDULERS.register_module()
class GlideDDIMScheduler(GlideBaseScheduler):
    """DDIM (Song et al.) over respaced timesteps, exactly as OpenAI's
    ``ddim_sample``: eps is re-derived from the clipped x_0; ``eta`` scales the
    stochastic part (0: deterministic). Classifier guidance folds into eps
    (``eps - sqrt(1 - abar) * grad``). GLIDE's upsampler recipe: ``'fast27'``,
    eta 0.

    Args:
        eta (float): Stochasticity in [0, 1]. Defaults to 0.
        **kwargs: See :class:`GlideBaseScheduler`.
    """

    def __init__(self, eta: float = 0.0, **kwargs):
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f'eta must be in [0, 1], got {eta}')
        self.eta = eta
        super().__init__(**kwargs)

    def step(self, model_output, timestep, sample, noise=None,
             generator=None, denoised_fn=None, guidance_grad=None, eta=None):
        eta = self.eta if eta is None else eta
        d = self.diffusion
        index = d.index_of(timestep)
        out = self._mean_variance(model_output, index, sample, denoised_fn)
        pred_xstart = out['pred_xstart']
        abar = d.extract(d.alphas_cumprod, index, sample)
        if guidance_grad is not None:
            pred_xstart = d.condition_score(sample, index, pred_xstart,
                                            guidance_grad)
        eps = d.predict_eps_from_xstart(sample, index, pred_xstart)
        abar_prev = d.extract(d.alphas_cumprod_prev, index, sample)
        sigma = (eta * ((1 - abar_prev) / (1 - abar)).sqrt() *
                 (1 - abar / abar_prev).sqrt())
        prev = (pred_xstart * abar_prev.sqrt() +
                (1 - abar_prev - sigma**2).sqrt() * eps)
        if index != 0 and eta > 0:
            prev = prev + sigma * self._noise_like(sample, noise, generator)
        return dict(prev_sample=prev.to(sample.dtype), pred_xstart=pred_xstart)
