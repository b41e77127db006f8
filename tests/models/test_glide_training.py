"""Glide's training objective (forward(mode='loss')) and predict mode."""
import math

import pytest
import torch

from mmagic.apis import init_model
from mmagic.structures import DataSample
from projects.glide.models.diffusion import (GaussianDiffusion, get_betas,
                                             min_snr_weight, normal_kl,
                                             vb_terms_bpd)
from projects.glide.models.training import (check_train_cfg,
                                            low_frequency_noise,
                                            random_rectangle_masks,
                                            step_random_state)
from tests.conftest import TEST_CONFIGS
from tests.models.test_glide import randomize

TINY = str(TEST_CONFIGS / 'glide_tiny_16-32.py')


def samples(*prompts):
    return [DataSample(prompt=p) for p in prompts]


def at_iteration(i):
    """Set the runner's iteration, from which a step's draws are seeded."""
    from mmengine import MessageHub
    MessageHub.get_current_instance().update_info('iter', i)


@pytest.fixture
def model():
    return randomize(init_model(TINY, None, device='cpu'))


def test_loss_terms_and_gradients(model):
    model.train_cfg = dict(stage='base', p_uncond=0.2, vb_weight=0.001)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    torch.manual_seed(0)
    losses = model(x, samples('a red cube', 'a cat'), mode='loss')
    assert set(losses) == {'loss_mse', 'loss_vb'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert model.unet.out.conv.weight.grad.abs().sum() > 0
    assert model.unet.transformer_proj.weight.grad.abs().sum() > 0
    assert model.unet_up.out.conv.weight.grad is None  # base stage only


def test_variational_bound_only_trains_the_variance(model):
    """The vb term sees the eps output frozen (improved DDPM)."""
    model.train_cfg = dict(stage='base', p_uncond=0.0, vb_weight=1.0)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = {}

    def grab(module, args, output):
        output.retain_grad()
        out['y'] = output

    handle = model.unet.out.register_forward_hook(grab)
    torch.manual_seed(0)
    model(x, samples('a', 'b'), mode='loss')['loss_vb'].backward()
    handle.remove()
    grad = out['y'].grad
    assert grad[:, :3].abs().max() == 0 and grad[:, 3:].abs().max() > 0


def test_vb_term_is_kl_and_decoder_nll():
    process = GaussianDiffusion(get_betas('linear'))
    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 500])
    x_t = process.q_sample(x0, t, noise)
    # A model predicting the true noise and the posterior variance
    # (var value -1) has KL 0 at t>0.
    out = torch.cat([noise, -torch.ones_like(x0)], dim=1)
    vb = vb_terms_bpd(process, out, x0, x_t, t)
    assert vb[1].abs() < 1e-4
    assert vb[0] > 0  # the decoder NLL in bits/dim
    assert normal_kl(torch.zeros(1), torch.zeros(1), torch.ones(1),
                     torch.zeros(1)).item() == pytest.approx(0.5)


def test_min_snr_weight():
    """min(SNR, gamma) / SNR: 1 where SNR <= gamma (noisy steps), gamma/SNR
    on the clean ones."""
    process = GaussianDiffusion(get_betas('squaredcos_cap_v2'))
    abar = torch.tensor(process.alphas_cumprod)
    snr = abar / (1 - abar)
    t = torch.arange(1000)
    w = min_snr_weight(process, t, 5.0)
    noisy = snr <= 5
    assert noisy.any() and (~noisy).any()
    assert torch.allclose(w[noisy], torch.ones(int(noisy.sum())))
    assert torch.allclose(w[~noisy], (5 / snr[~noisy]).float())
    assert (w[1:] >= w[:-1]).all() and w[0] < 0.01  # rises with noise
    with pytest.raises(ValueError, match='min_snr_gamma'):
        min_snr_weight(process, t, 0.0)


def test_min_snr_weight_of_the_velocity():
    """For v: min(SNR, gamma) / (SNR + 1), the same weight on the x_0
    error as eps' min(SNR, gamma) / SNR."""
    process = GaussianDiffusion(get_betas('squaredcos_cap_v2'))
    abar = torch.tensor(process.alphas_cumprod)
    snr = abar / (1 - abar)
    t = torch.arange(1000)
    w_v = min_snr_weight(process, t, 5.0, 'v')
    w_eps = min_snr_weight(process, t, 5.0)
    assert torch.allclose(w_v, (snr.clamp(max=5) / (snr + 1)).float())
    # x_0 error = eps error / sqrt(SNR) = v error / sqrt(SNR + 1)
    assert torch.allclose(w_v * (snr + 1), w_eps * snr, rtol=1e-5)


@pytest.mark.parametrize('prediction_type', ['eps', 'v'])
def test_mse_is_on_the_predicted_quantity(model, prediction_type):
    """The MSE compares the network's first 3 channels with the noise (eps)
    or with the velocity sqrt(abar) eps - sqrt(1 - abar) x_0 (v) of the very
    x_t it saw; the VB term reads the output the same way."""
    model.diffusion_scheduler.prediction_type = prediction_type
    model.train_cfg = dict(stage='base', p_uncond=0.0)
    seen = {}

    def grab(module, args, kwargs, output):
        seen.update(x_t=args[0], t=args[1], out=output)

    handle = model.unet.register_forward_hook(grab, with_kwargs=True)
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    losses = model(x0, samples('a', 'b', 'c', 'd'), mode='loss')
    handle.remove()
    process = model.diffusion_scheduler.train_process
    abar = torch.tensor(process.alphas_cumprod).float()[seen['t']]
    abar = abar.view(-1, 1, 1, 1)
    noise = (seen['x_t'] - abar.sqrt() * x0) / (1 - abar).sqrt()
    target = (noise if prediction_type == 'eps' else
              abar.sqrt() * noise - (1 - abar).sqrt() * x0)
    expected = ((target - seen['out'][:, :3])**2).mean()
    torch.testing.assert_close(losses['loss_mse'], expected, rtol=1e-4,
                               atol=1e-6)
    vb = vb_terms_bpd(process, seen['out'], x0, seen['x_t'], seen['t'],
                      prediction_type)
    torch.testing.assert_close(losses['loss_vb'], vb.mean(), rtol=1e-4,
                               atol=1e-6)


def test_min_snr_loss_weighting_is_opt_in(model):
    """Off by default (the paper's objective); with ``min_snr_gamma`` each
    sample's eps MSE is multiplied by its weight, the VB term unchanged."""
    n = 16
    x = torch.rand(n, 3, 16, 16) * 2 - 1
    prompts = samples(*'abcdefghijklmnop')
    torch.manual_seed(0)
    torch.rand(n)  # loss() draws the caption dropout, then the timesteps
    t = torch.randint(0, 1000, (n, ))
    w = min_snr_weight(model.diffusion_scheduler.train_process, t, 5.0)
    assert w.min() < 1  # the draw holds clean steps, so the test can fail
    model.train_cfg = dict(stage='base', p_uncond=0.0)
    torch.manual_seed(0)
    plain = model(x, prompts, mode='loss')
    model.train_cfg = dict(stage='base', p_uncond=0.0, min_snr_gamma=5)
    torch.manual_seed(0)
    weighted = model(x, prompts, mode='loss')
    assert torch.allclose(weighted['loss_vb'], plain['loss_vb'])
    assert weighted['loss_mse'] < plain['loss_mse']


def test_step_draws_come_from_the_iteration_not_the_global_rng(model):
    """forward(mode='loss') (what a DDP-wrapped model runs too) seeds its
    draws from (train_cfg.seed, iteration, rank), so a resumed run repeats
    them; the global random state is left as it was."""
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    prompts = samples('a', 'b', 'c', 'd')
    at_iteration(7)
    torch.manual_seed(1)
    first = model(x, prompts, mode='loss')['loss_mse']
    after = torch.rand(1)
    torch.manual_seed(2)
    again = model(x, prompts, mode='loss')['loss_mse']
    at_iteration(8)
    other = model(x, prompts, mode='loss')['loss_mse']
    at_iteration(0)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(1), after)  # global state untouched
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_low_frequency_noise():
    """Unit variance; per-image means and quadrant means as noisy as the
    strength says (white noise: 1/32 and 1/16 at 32 px); 0 is white."""
    torch.manual_seed(0)
    white = torch.randn(256, 3, 32, 32)
    torch.manual_seed(0)
    assert torch.equal(low_frequency_noise((256, 3, 32, 32), 'cpu', 0.0),
                       white)
    noise = low_frequency_noise((256, 3, 32, 32), 'cpu', 0.3)
    norm = math.sqrt(1 + 5 * 0.3**2)  # levels 1, 2, 4, 8, 16
    assert noise.std().item() == pytest.approx(1.0, abs=0.02)
    # A level of g x g blocks adds s^2 / (blocks averaged) to a mean's
    # variance: the image averages 1, 4, 16, 64, 256 blocks of the levels.
    image_means = noise.mean(dim=(2, 3)).std().item()
    expected = math.sqrt(1 / 1024 + 0.3**2 * sum(4.0**-k for k in range(5)))
    assert image_means == pytest.approx(expected / norm, rel=0.1)
    assert white.mean(dim=(2, 3)).std().item() < 0.05
    quadrant = noise[..., :16, :16].mean(dim=(2, 3)).std().item()
    expected = math.sqrt(1 / 256 + 0.3**2 * (1 + sum(4.0**-k
                                                     for k in range(4))))
    assert quadrant == pytest.approx(expected / norm, rel=0.1)


def test_low_freq_noise_option(model):
    """Off by default; the training loss uses it; out of range is an
    error naming it."""
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    prompts = samples('a', 'b', 'c', 'd')
    model.train_cfg = dict(stage='base', p_uncond=0.0)
    plain = model(x, prompts, mode='loss')['loss_mse']
    model.train_cfg = dict(stage='base', p_uncond=0.0, low_freq_noise=0.3)
    check_train_cfg(model, model.train_cfg)
    assert not torch.equal(model(x, prompts, mode='loss')['loss_mse'], plain)
    model.train_cfg = dict(low_freq_noise=-0.1)
    with pytest.raises(ValueError, match='low_freq_noise'):
        check_train_cfg(model, model.train_cfg)


def test_caption_dropout_empties_prompts(model, monkeypatch):
    seen = []
    original = model.tokenizer.__call__

    def spy(prompts, device='cpu'):
        seen.extend(prompts)
        return original(prompts, device)

    monkeypatch.setattr(model, 'tokenizer', spy)
    model.train_cfg = dict(p_uncond=0.5)
    for i in range(10):
        at_iteration(i)
        model(torch.zeros(4, 3, 16, 16), samples(*['x'] * 4), mode='loss')
    at_iteration(0)
    dropped = seen.count('') / len(seen)
    assert 0.3 < dropped < 0.7
    seen.clear()
    model.train_cfg = dict(p_uncond=0.0)
    model(torch.zeros(4, 3, 16, 16), samples(*['x'] * 4), mode='loss')
    assert '' not in seen


def test_upsampler_stage_trains_unet_up_from_downsampled_images(
        monkeypatch):
    from mmengine import Config
    cfg = Config.fromfile(TINY)
    cfg.model.train_cfg = dict(stage='upsample')
    model = randomize(init_model(cfg, None, device='cpu'))
    # Only the stage's network is trained (DDP sees no unused parameters).
    assert not any(p.requires_grad for p in model.unet.parameters())
    assert all(p.requires_grad for p in model.unet_up.parameters())
    seen = {}
    original = model.unet_up.forward

    def spy(x, t, **kw):
        seen.update(kw)
        return original(x, t, **kw)

    monkeypatch.setattr(model.unet_up, 'forward', spy)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    losses = model(x, samples('a', 'b'), mode='loss')
    sum(losses.values()).backward()
    low = seen['low_res']
    assert low.shape == (2, 3, 16, 16)
    expected = torch.nn.functional.avg_pool2d(x, 2)
    assert (low - expected).abs().max() <= 1 / 127.5 + 1e-6  # 8-bit rounded
    assert model.unet_up.out.conv.weight.grad.abs().sum() > 0
    assert model.unet.out.conv.weight.grad is None


def test_wrong_stage_or_size_is_a_clear_error(model):
    model.train_cfg = dict(stage='both')
    with pytest.raises(ValueError, match=r"stage must be one of \['base', 'upsample', 'clip', 'distill_guidance', 'distill_steps'\], got 'both'"):
        model(torch.zeros(1, 3, 16, 16), samples('a'), mode='loss')
    model.train_cfg = dict(stage='base')
    with pytest.raises(ValueError, match='32px; the base network takes 16px'):
        model(torch.zeros(1, 3, 32, 32), samples('a'), mode='loss')
    with pytest.raises(ValueError, match='str `prompt`'):
        model(torch.zeros(1, 3, 16, 16), [DataSample()], mode='loss')
    with pytest.raises(ValueError, match="mode must be"):
        model(torch.zeros(1, 3, 16, 16), samples('a'), mode='sample')


def test_random_masks_keep_most_of_the_image():
    torch.manual_seed(0)
    masks = random_rectangle_masks(64, 16, 'cpu')
    assert masks.shape == (64, 1, 16, 16)
    assert set(masks.unique().tolist()) == {0.0, 1.0}
    holes = 1 - masks.mean(dim=(1, 2, 3))
    assert (holes > 0).all() and (holes < 0.5).all()


def test_predict_returns_samples_and_ground_truth(model):
    model.test_cfg = dict(num_inference_steps=3, num_inference_steps_up=2,
                          guidance_scale=2.0, seed=1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = model(x, samples('a red cube', 'a dog'), mode='predict')
    assert [o.prompt for o in out] == ['a red cube', 'a dog']
    assert out[0].fake_img.shape == (3, 32, 32)
    assert 0 <= out[0].fake_img.min() and out[0].fake_img.max() <= 255
    torch.testing.assert_close(out[1].gt_img, (x[1] + 1) * 127.5)
    again = model(x, samples('a red cube', 'a dog'), mode='predict')
    assert torch.equal(out[0].fake_img, again[0].fake_img)


def test_inpaint_finetuning_loads_a_base_checkpoint(tmp_path):
    """``train_cfg.init_from_base``: the first convs get zero weights for the
    extra channels, so the inpainting model starts as the base model."""
    from mmengine import Config
    from projects.glide.models.checkpoint import save_state_dict
    base = randomize(init_model(TINY, None, device='cpu'))
    path = str(tmp_path / 'base.pth')
    save_state_dict(base.state_dict(), path)
    cfg = Config.fromfile(str(TEST_CONFIGS / 'glide_tiny_16-32-inpaint.py'))
    with pytest.raises(KeyError, match='in_blocks.0.0.weight'):
        init_model(cfg, path, device='cpu')
    cfg.model.train_cfg = dict(init_from_base=True)
    inpaint = init_model(cfg, path, device='cpu')
    w = inpaint.unet.in_blocks[0][0].weight
    assert torch.equal(w[:, :3], base.unet.in_blocks[0][0].weight)
    assert (w[:, 3:] == 0).all()
    w_up = inpaint.unet_up.in_blocks[0][0].weight  # x, image+mask, low_res
    base_up = base.unet_up.in_blocks[0][0].weight
    assert torch.equal(w_up[:, :3], base_up[:, :3])
    assert torch.equal(w_up[:, 7:], base_up[:, 3:]) and (w_up[:, 3:7] == 0
                                                          ).all()
    x = torch.randn(1, 3, 16, 16)
    tokens, mask = base.tokenizer(['a cat'])
    with torch.no_grad():
        a = base.unet(x, 10, tokens, mask)
        b = inpaint.unet(x, 10, tokens, mask,
                         inpaint_image=torch.rand(1, 3, 16, 16),
                         inpaint_mask=torch.ones(1, 1, 16, 16))
    torch.testing.assert_close(a, b)
    assert math.isfinite(b.sum().item())


def assert_tensors_in(part, whole):
    """Every tensor of the state dict ``part`` is in ``whole``, equal."""
    for key, value in part.items():
        assert torch.equal(value, whole[key]), key


def test_cascade_and_base_checkpoints_load_where_each_makes_sense(tmp_path):
    """A cascade checkpoint (unet.* + unet_up.*) loads into a base-only model,
    which takes its base network; a base checkpoint loads into a cascade
    that trains its upsampler (train_cfg.stage='upsample'), whose unet_up
    keeps its initialisation. Anywhere else a missing network is an error."""
    from mmengine import Config
    from projects.glide.models.checkpoint import save_state_dict
    cascade = randomize(init_model(TINY, None, device='cpu'))
    cascade_path = str(tmp_path / 'cascade.safetensors')
    save_state_dict(cascade.state_dict(), cascade_path)
    base_cfg = Config.fromfile(TINY)
    base_cfg.model.unet_up = None
    base_cfg.model.diffusion_scheduler_up = None
    base = init_model(base_cfg, cascade_path, device='cpu')
    assert base.unet_up is None
    assert_tensors_in(base.state_dict(), cascade.state_dict())
    base_path = str(tmp_path / 'base.safetensors')
    save_state_dict(base.state_dict(), base_path)

    with pytest.raises(KeyError, match='missing keys.*unet_up'):
        init_model(TINY, base_path, device='cpu')  # sampling needs unet_up
    up_cfg = Config.fromfile(TINY)
    up_cfg.model.train_cfg = dict(stage='upsample')
    trainee = init_model(up_cfg, base_path, device='cpu')
    assert_tensors_in(base.unet.state_dict(), trainee.unet.state_dict())
    w = trainee.unet_up.in_blocks[0][0].weight
    assert not torch.equal(w, cascade.unet_up.in_blocks[0][0].weight)


def test_clip_stage_trains_the_guide_contrastively():
    """train_cfg.stage='clip' trains only the noised CLIP, with CLIP's
    symmetric cross-entropy between captions and noised images (images that
    share a caption are all its positives); a few steps on four images
    raise the similarity of each image to its own caption above the
    others'. (With CLIP's largest temperature, logit scale 100, from the
    first step, both towers collapse to one direction: measured on this
    case, similarities equal to 1e-3 after 100 steps; 10 learns.)"""
    from mmengine import Config
    cfg = Config.fromfile(str(TEST_CONFIGS / 'glide_tiny_16-32-clip.py'))
    cfg.model.train_cfg = dict(stage='clip')
    cfg.model.classifier.logit_scale = 10.0
    torch.manual_seed(0)
    model = init_model(cfg, None, device='cpu')
    assert all(p.requires_grad for p in model.classifier.parameters())
    assert not any(p.requires_grad for p in model.unet.parameters())
    assert not any(p.requires_grad for p in model.unet_up.parameters())
    clip = model.classifier
    prompts = ['a red circle', 'a blue square', 'a green triangle',
               'a red circle']
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    x[3] = x[0]
    at_iteration(0)
    loss = model(x, samples(*prompts), mode='loss')
    assert set(loss) == {'loss_clip'}

    # the loss as written out: t and noise are the step's seeded draws
    with step_random_state(model.train_cfg.get('seed', 0), model.device):
        t = torch.randint(0, 1000, (4, ))
        x_t = model.diffusion_scheduler.train_process.q_sample(
            x, t, torch.randn_like(x))
    logits = 10 * clip.image_embeddings(x_t, t) @ clip.text_embeddings(
        prompts).T
    target = torch.tensor([[.5, 0, 0, .5], [0, 1, 0, 0], [0, 0, 1, 0],
                           [.5, 0, 0, .5]])
    expected = (-(target * logits.log_softmax(1)).sum(1).mean() -
                (target * logits.T.log_softmax(1)).sum(1).mean()) / 2
    torch.testing.assert_close(loss['loss_clip'], expected)

    def margin():
        with torch.no_grad():
            sim = clip.image_embeddings(x, torch.zeros(4, dtype=torch.long)) \
                @ clip.text_embeddings(prompts[:3]).T
        own = sim[[0, 1, 2], [0, 1, 2]]
        other = sim[:3].masked_fill(torch.eye(3, dtype=torch.bool), -2)
        return (own - other.amax(1)).min().item()

    before = margin()
    opt = torch.optim.Adam(clip.parameters(), lr=1e-3)
    for i in range(100):
        at_iteration(i)
        opt.zero_grad()
        model(x, samples(*prompts), mode='loss')['loss_clip'].backward()
        opt.step()
    assert margin() > max(before, 0), (before, margin())
    assert model.unet.out.conv.weight.grad is None


def test_clip_stage_needs_a_guide(model):
    model.train_cfg = dict(stage='clip')
    with pytest.raises(ValueError, match="stage='clip' needs a classifier"):
        model(torch.zeros(1, 3, 16, 16), samples('a'), mode='loss')


def test_a_checkpoint_with_a_clip_guide_loads_where_it_makes_sense(tmp_path):
    """The shapes file holds a CLIP guide (classifier.*) beside the
    cascade: a model without a guide loads the rest; a model that trains its
    guide (stage='clip') loads a checkpoint without one."""
    from mmengine import Config
    from projects.glide.models.checkpoint import save_state_dict
    clip_config = str(TEST_CONFIGS / 'glide_tiny_16-32-clip.py')
    full = randomize(init_model(clip_config, None, device='cpu'))
    path = str(tmp_path / 'full.safetensors')
    save_state_dict(full.state_dict(), path)
    plain = init_model(TINY, path, device='cpu')
    assert plain.classifier is None
    assert_tensors_in(plain.state_dict(), full.state_dict())
    no_guide = str(tmp_path / 'cascade.safetensors')
    save_state_dict(plain.state_dict(), no_guide)
    with pytest.raises(KeyError, match='missing keys.*classifier'):
        init_model(clip_config, no_guide, device='cpu')
    cfg = Config.fromfile(clip_config)
    cfg.model.train_cfg = dict(stage='clip')
    trainee = init_model(cfg, no_guide, device='cpu')
    assert torch.equal(trainee.unet.out.conv.weight,
                       plain.unet.out.conv.weight)
