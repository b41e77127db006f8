"""The diffusion process: schedules and the reference's respacing."""
import numpy as np
import pytest
import torch

from projects.glide.models.diffusion import (GaussianDiffusion, get_betas,
                                             min_snr_weight, space_timesteps,
                                             training_losses, vb_terms_bpd)

FAST27 = [0, 22, 44, 66, 88, 111, 133, 155, 177, 199, 200, 222, 244, 266, 288,
          311, 333, 355, 377, 399, 400, 500, 599, 600, 799, 800, 997]


def test_respacing_matches_reference_timesteps(manifest):
    for case in manifest['cases'].values():
        sample = case['sample']
        assert space_timesteps(1000, sample['respacing']) == \
            sample['timesteps_used']


def test_named_respacings():
    assert space_timesteps(1000, 'fast27') == FAST27
    hundred = space_timesteps(1000, '100')
    assert len(hundred) == 100 and hundred[0] == 0 and hundred[-1] == 999
    assert space_timesteps(1000, 100) == hundred
    assert space_timesteps(1000, 'ddim50') == list(range(0, 1000, 20))
    assert space_timesteps(1000, '10,10,3,2,2')[:3] == [0, 22, 44]
    assert space_timesteps(1000, [5, 1, 5]) == [1, 5]


@pytest.mark.parametrize('bad', ['fast', '0', '300,300,300,300', 'ddim999',
                                 [1000], [-1]])
def test_bad_respacing_is_a_clear_error(bad):
    with pytest.raises(ValueError):
        space_timesteps(1000, bad)


def test_beta_schedules():
    cos = get_betas('squaredcos_cap_v2')
    lin = get_betas('linear')
    assert cos.shape == lin.shape == (1000, )
    assert cos.max() == pytest.approx(0.999) and lin[0] == pytest.approx(1e-4)
    with pytest.raises(ValueError, match='beta_schedule'):
        get_betas('quadratic')


def test_respaced_process_keeps_the_cumulative_alphas():
    betas = get_betas('squaredcos_cap_v2')
    full = GaussianDiffusion(betas)
    steps = space_timesteps(1000, 'fast27')
    spaced = GaussianDiffusion(betas, steps)
    np.testing.assert_allclose(spaced.alphas_cumprod,
                               full.alphas_cumprod[steps], rtol=1e-12)
    assert spaced.timestep_map.tolist() == steps
    assert spaced.index_of(997) == 26
    with pytest.raises(ValueError, match='not one of'):
        spaced.index_of(998)


def test_learned_range_variance_spans_posterior_to_beta():
    d = GaussianDiffusion(get_betas('linear'), space_timesteps(1000, 10))
    x = torch.zeros(1, 3, 2, 2)
    lo = d.learned_range_log_variance(-torch.ones_like(x), 5, x)
    hi = d.learned_range_log_variance(torch.ones_like(x), 5, x)
    assert torch.allclose(lo, torch.tensor(d.posterior_log_variance_clipped[5],
                                           dtype=torch.float32))
    assert torch.allclose(hi, torch.tensor(np.log(d.betas[5]),
                                           dtype=torch.float32))


def test_v_prediction_recovers_x0_and_eps():
    """v = sqrt(abar) eps - sqrt(1 - abar) x_0 (Salimans and Ho, 2022): from
    x_t and v the process gets x_0 and eps back, on the full and on a
    respaced process, and p(x_{t-1} | x_t) from v equals the one from eps."""
    betas = get_betas('squaredcos_cap_v2')
    full = GaussianDiffusion(betas)
    spaced = GaussianDiffusion(betas, space_timesteps(1000, 25))
    x0 = torch.rand(3, 3, 4, 4, dtype=torch.float64) * 2 - 1
    noise = torch.randn_like(x0)
    values = torch.rand_like(x0) * 2 - 1
    for process, index in ((full, torch.tensor([0, 500, 900])),
                           (spaced, torch.tensor([0, 12, 22]))):
        x_t = process.q_sample(x0, index, noise)
        v = process.v_target(x0, index, noise)
        x0_back = process.predict_xstart_from_v(x_t, index, v)
        torch.testing.assert_close(x0_back, x0, rtol=0, atol=1e-6)
        torch.testing.assert_close(process.predict_eps_from_v(x_t, index, v),
                                   noise, rtol=0, atol=1e-6)
        from_v = process.p_mean_variance(torch.cat([v, values], 1), x_t, index,
                                         clip_denoised=False,
                                         prediction_type='v')
        from_eps = process.p_mean_variance(torch.cat([noise, values], 1), x_t,
                                           index, clip_denoised=False)
        for key in ('mean', 'log_variance', 'pred_xstart', 'eps'):
            torch.testing.assert_close(from_v[key], from_eps[key], rtol=0,
                                       atol=1e-4)


@pytest.mark.parametrize('prediction_type', ['eps', 'v'])
def test_training_losses_against_a_hand_computation(prediction_type):
    """A predictor off by exactly 1 everywhere has MSE 1 per sample, weighted
    by Min-SNR; the bound term is the variational bound of that output,
    weighted vb_weight x T."""
    process = GaussianDiffusion(get_betas('linear', 1000))
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x = x * 2 - 1
    t = torch.tensor([0, 10, 500, 999])
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    target = (noise if prediction_type == 'eps' else
              process.v_target(x, t, noise))
    output = torch.cat([target + 1, torch.zeros_like(x)], dim=1)
    seen = {}

    def model_fn(x_t, tt):
        seen.update(x_t=x_t, t=tt)
        return output

    out = training_losses(process, model_fn, x, t, noise, prediction_type,
                          min_snr_gamma=5.0, vb_weight=0.001)
    torch.testing.assert_close(seen['x_t'], process.q_sample(x, t, noise))
    weight = min_snr_weight(process, t, 5.0, prediction_type)
    torch.testing.assert_close(out['loss_mse'], weight.mean())
    vb = vb_terms_bpd(process, output, x, seen['x_t'], t, prediction_type)
    torch.testing.assert_close(out['loss_vb'], 0.001 * 1000 * vb.mean())
    plain = training_losses(process, lambda *_: output, x, t, noise,
                            prediction_type)
    torch.testing.assert_close(plain['loss_mse'], torch.tensor(1.0))
