"""Image-to-image editing (SDEdit): Glide.infer's ``strength``."""
import pytest
import torch

from mmagic.apis import init_model
from tests.conftest import TEST_CONFIGS
from tests.models.test_glide import randomize

TINY_BASE = str(TEST_CONFIGS / 'glide_tiny_train-16.py')  # no upsampler


@pytest.fixture(scope='module')
def model():
    return randomize(init_model(TINY_BASE, None, device='cpu'))


def image():
    """A 16 px image: a red square on gray, in [-1, 1]."""
    img = torch.full((1, 3, 16, 16), -0.5)
    img[:, 0, 4:12, 4:12] = 0.9
    img[:, 1:, 4:12, 4:12] = -0.9
    return img


def edit(model, strength, **kwargs):
    return model.infer(init_image=image(), strength=strength,
                       prompt='a blue square', num_inference_steps=20,
                       seed=0, **kwargs)['samples']


def test_strength_one_is_sampling_from_noise(model):
    """At t = T the image is (nearly) all noise: the same noise as latents
    gives the same samples as plain sampling."""
    gen = torch.Generator().manual_seed(3)
    noise = torch.randn(1, 3, 16, 16, generator=gen)
    plain = model.infer(prompt='a blue square', num_inference_steps=20,
                        latents=noise, seed=0)['samples']
    edited = edit(model, 1.0, latents=noise)
    torch.testing.assert_close(edited, plain, rtol=0, atol=1e-3)


def test_small_strength_keeps_the_image_and_runs_fewer_steps(model):
    calls = []
    small = edit(model, 0.15, callback=lambda done, total: calls.append(total))
    timesteps = model.diffusion_scheduler.timesteps  # this run's, cut
    large = edit(model, 0.9)
    near = (small - image()).abs().mean()
    far = (large - image()).abs().mean()
    assert near < far / 2, (near, far)
    assert 1 < len(timesteps) < 20 and int(timesteps.max()) <= 150
    assert calls == [len(timesteps)] * len(timesteps)


def test_one_image_edits_a_batch(model):
    out = model.infer(init_image=image(), strength=0.5, prompt=['a', 'b'],
                      seed=0, num_inference_steps=10)['samples']
    assert out.shape == (2, 3, 16, 16) and not torch.equal(out[0], out[1])


def test_without_strength_init_image_stays_the_starting_noise(model):
    gen = torch.Generator().manual_seed(4)
    noise = torch.randn(1, 3, 16, 16, generator=gen)
    a = model.infer(init_image=noise, prompt='x', num_inference_steps=5,
                    seed=0)['samples']
    b = model.infer(latents=noise, prompt='x', num_inference_steps=5,
                    seed=0)['samples']
    assert torch.equal(a, b)


@pytest.mark.parametrize('kwargs, match', [
    (dict(strength=0), r'strength must be a number in \(0, 1\], got 0'),
    (dict(strength=1.5), r'strength must be a number in \(0, 1\], got 1.5'),
    (dict(strength=float('nan')), r'strength must be a number in \(0, 1\]'),
    (dict(strength='0.5'), r'strength must be a number in \(0, 1\]'),
    (dict(strength=0.5, init_image=None), 'strength needs init_image'),
    (dict(strength=0.5, init_image=torch.zeros(1, 3, 8, 8)),
     r'init_image \(the image to edit\) must be \(B or 1, 3, H, H\)'),
    (dict(strength=0.5, init_image=torch.full((1, 3, 16, 16), 2.0)),
     r'init_image values must be finite and in \[-1, 1\]'),
    (dict(strength=0.5, mask=torch.ones(1, 1, 16, 16)),
     'strength .* and mask .* cannot be combined'),
])
def test_bad_editing_input_is_a_clear_error(model, kwargs, match):
    args = dict(init_image=image(), prompt='x', seed=0)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        model.infer(**args)
