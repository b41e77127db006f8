"""What every GLIDE sampler promises (as diffusers' SchedulerCommonTest), and
DPM-Solver++(2M) against an independent formulation of the same solver.

The samplers' exactness to OpenAI's reference is in
test_samplers_reference.py; here a smooth stand-in for the network (eps and
variance values as fixed functions of x_t and t) drives them.
"""
import math

import pytest
import torch

from projects.glide.models import (GlideAncestralScheduler,
                                   GlideDDIMScheduler, GlideDPMSolverScheduler)

SCHEDULERS = {
    'ancestral': lambda **kw: GlideAncestralScheduler(**kw),
    'ddim': lambda **kw: GlideDDIMScheduler(**kw),
    'ddim_eta1': lambda **kw: GlideDDIMScheduler(eta=1.0, **kw),
    'dpm++2m': lambda **kw: GlideDPMSolverScheduler(**kw),
}
STOCHASTIC = ('ancestral', 'ddim_eta1')
SHAPE = (2, 3, 8, 8)


def network(x, t):
    """A stand-in for GLIDE's UNet: eps (3 channels) and variance values in
    [-1, 1] (3 channels), smooth in x and t."""
    s = float(t) / 1000
    eps = 0.8 * torch.tanh(x) + 0.1 * s * torch.sin(3 * x)
    values = torch.tanh(0.5 * x + s) * 0.9
    return torch.cat([eps, values], dim=1)


def run(scheduler, x, noises=None, generator=None, guidance=None):
    """Sample from ``x`` over ``scheduler.timesteps``; returns the x_0."""
    for i, t in enumerate(scheduler.timesteps.tolist()):
        out = scheduler.step(network(x, t), t, x, generator=generator,
                             noise=None if noises is None else noises[i],
                             guidance_grad=guidance)
        x = out['prev_sample']
    return x


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


@pytest.fixture(params=sorted(SCHEDULERS))
def name(request):
    return request.param


def make(name, steps=10):
    return SCHEDULERS[name](timestep_respacing=str(steps))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_step_keeps_shape_and_dtype(name, dtype):
    scheduler = make(name)
    x = torch.randn(SHAPE, dtype=dtype)
    t = int(scheduler.timesteps[0])
    out = scheduler.step(network(x, t), t, x,
                         generator=torch.Generator().manual_seed(0))
    assert out['prev_sample'].shape == SHAPE
    assert out['prev_sample'].dtype == dtype
    assert out['pred_xstart'].shape == SHAPE


def test_timesteps_descend_and_end_at_zero(name):
    scheduler = make(name, 7)
    steps = scheduler.timesteps.tolist()
    assert len(steps) == scheduler.num_inference_steps == 7
    assert steps == sorted(steps, reverse=True) and steps[-1] == 0


def test_one_step_starts_from_the_last_timestep(name):
    """One step (a distilled student's single pass) is x_0 predicted at
    t = T - 1 from pure noise, not the reference's '1' (t = 0, where a
    sample of noise stays noise)."""
    scheduler = make(name)
    scheduler.set_timesteps(1)
    assert scheduler.timesteps.tolist() == [999]
    x = torch.randn(SHAPE)
    out = scheduler.step(network(x, 999), 999, x, noise=torch.randn(SHAPE))
    torch.testing.assert_close(out['prev_sample'], out['pred_xstart'],
                               rtol=0, atol=1e-5)


def test_set_timesteps_resets_the_state(name):
    """A second run after set_timesteps is the same as a fresh scheduler's
    (the multistep solver forgets its previous x_0)."""
    x = torch.randn(SHAPE)
    noises = [torch.randn(SHAPE) for _ in range(10)]
    used = make(name)
    for t in used.timesteps.tolist()[:3]:  # a run left half-way
        used.step(network(x, t), t, x, noise=noises[0])
    used.set_timesteps(10)
    assert torch.equal(run(used, x, noises), run(make(name), x, noises))


def test_zero_guidance_gradient_changes_nothing(name):
    """In float64: DDIM and DPM-Solver++ fold the gradient into eps through
    x_0 -> eps -> x_0, which in float32 loses up to ~5e-4 near t = T (as the
    reference's ``condition_score`` does), and nothing else."""
    x = torch.randn(SHAPE, dtype=torch.float64)
    noises = [torch.randn(SHAPE, dtype=torch.float64) for _ in range(10)]
    plain = run(make(name), x, noises)
    guided = run(make(name), x, noises,
                 guidance=torch.zeros(SHAPE, dtype=torch.float64))
    torch.testing.assert_close(guided, plain, rtol=0, atol=1e-9)


def test_a_guidance_gradient_moves_the_sample(name):
    x = torch.randn(SHAPE)
    noises = [torch.randn(SHAPE) for _ in range(10)]
    plain = run(make(name), x, noises)
    guided = run(make(name), x, noises, guidance=torch.full(SHAPE, 0.5))
    assert (guided - plain).mean() > 1e-3  # towards the gradient


def test_last_step_returns_the_x0_prediction(name):
    scheduler = make(name)
    x = torch.randn(SHAPE)
    out = scheduler.step(network(x, 0), 0, x, noise=torch.randn(SHAPE))
    torch.testing.assert_close(out['prev_sample'], out['pred_xstart'],
                               rtol=0, atol=1e-5)
    assert out['prev_sample'].abs().max() <= 1  # clipped x_0


def test_injected_noise_is_used_and_deterministic(name):
    x = torch.randn(SHAPE)
    noises = [torch.randn(SHAPE) for _ in range(10)]
    first = run(make(name), x, noises)
    assert torch.equal(run(make(name), x, noises), first)
    seeded = [run(make(name), x, generator=torch.Generator().manual_seed(3))
              for _ in range(2)]
    assert torch.equal(*seeded)
    other = run(make(name), x, [torch.randn(SHAPE) for _ in range(10)])
    if name in STOCHASTIC:
        assert not torch.allclose(other, first)
    else:  # deterministic solvers ignore the noise
        assert torch.equal(other, first)


def test_noise_of_the_wrong_shape_is_refused(name):
    if name not in STOCHASTIC:
        return
    scheduler = make(name)
    x = torch.randn(SHAPE)
    t = int(scheduler.timesteps[0])
    with pytest.raises(ValueError, match='noise has shape'):
        scheduler.step(network(x, t), t, x, noise=torch.randn(1, 3, 8, 8))


def test_v_prediction_steps_as_the_matching_eps(name):
    """With ``prediction_type='v'`` a sampler fed the velocity that matches
    an eps output (same x_0) takes the same steps."""
    x = torch.randn(SHAPE, dtype=torch.float64)
    noises = [torch.randn(SHAPE, dtype=torch.float64) for _ in range(10)]
    eps_s, v_s = make(name), SCHEDULERS[name](timestep_respacing='10',
                                               prediction_type='v')
    x_eps = x_v = x
    for i, t in enumerate(eps_s.timesteps.tolist()):
        out = network(x_v, t)
        process, index = v_s.diffusion, v_s.diffusion.index_of(t)
        x0 = process.predict_xstart_from_eps(x_v, index, out[:, :3])
        abar = float(process.alphas_cumprod[index])
        v = math.sqrt(abar) * out[:, :3] - math.sqrt(1 - abar) * x0
        x_eps = eps_s.step(network(x_eps, t), t, x_eps,
                           noise=noises[i])['prev_sample']
        x_v = v_s.step(torch.cat([v, out[:, 3:]], 1), t, x_v,
                       noise=noises[i])['prev_sample']
    torch.testing.assert_close(x_v, x_eps, rtol=0, atol=1e-5)


def test_unknown_prediction_type_is_refused(name):
    with pytest.raises(ValueError, match="prediction_type must be 'eps' or "
                       "'v', got 'x0'"):
        SCHEDULERS[name](prediction_type='x0')


def dpmpp_2m_sigma_space(x, timesteps, abar):
    """DPM-Solver++(2M) written in the variance-exploding form of
    k-diffusion's ``sample_dpmpp_2m``: sigma = sqrt((1 - abar) / abar),
    x_ve = x / sqrt(abar), log-SNR half t = -log(sigma), x_0 predictions
    from the stand-in network (clipped), and the last step to sigma = 0
    returning the x_0 prediction."""
    sigmas = [math.sqrt((1 - abar[t]) / abar[t]) for t in timesteps] + [0.0]
    x_ve = x / math.sqrt(abar[timesteps[0]])
    old = None
    for i, t in enumerate(timesteps):
        a = abar[t]
        x_vp = x_ve * math.sqrt(a)
        eps = network(x_vp, t)[:, :3]
        denoised = ((x_vp - math.sqrt(1 - a) * eps) / math.sqrt(a)).clamp(-1, 1)
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        if sigma_next == 0:
            return denoised
        h = math.log(sigma) - math.log(sigma_next)
        if old is None:
            d = denoised
        else:
            h_last = math.log(sigmas[i - 1]) - math.log(sigma)
            r = h_last / h
            d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
        x_ve = (sigma_next / sigma) * x_ve - math.expm1(-h) * d
        old = denoised
    raise AssertionError('the schedule did not end at sigma = 0')


@pytest.mark.parametrize('steps', ['10', '25', 'ddim20'])
def test_dpm_solver_matches_the_sigma_space_formulation(steps):
    scheduler = GlideDPMSolverScheduler(timestep_respacing=steps)
    abar = scheduler.train_process.alphas_cumprod
    timesteps = scheduler.timesteps.tolist()
    x = torch.randn(SHAPE, dtype=torch.float64)
    ours = run(scheduler, x)
    theirs = dpmpp_2m_sigma_space(x, timesteps, [float(a) for a in abar])
    # The process's coefficients are float32 (as the reference's), so the
    # two agree to float32 precision (~2e-6 measured), not float64's; a
    # wrong coefficient or order moves x_0 by more than 1e-3.
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
