"""projects/glide/models/sampling_inputs.py: infer's checks raise, and
draw nothing."""
import pytest
import torch
from mmagic.apis import init_model

from projects.glide.models import *  # noqa: F401,F403
from projects.glide.models.sampling_inputs import (check_inputs,
                                                   check_test_cfg)
from tests.conftest import TEST_CONFIGS

TINY = str(TEST_CONFIGS / 'glide_tiny_16-32.py')


@pytest.fixture(scope='module')
def model():
    return init_model(TINY, None, device='cpu')


def test_checking_draws_no_noise(model):
    """Checking is apart from the noise draw: neither torch's global random
    state nor the caller's generator moves."""
    gen = torch.Generator().manual_seed(3)
    gen_state, global_state = gen.get_state(), torch.get_rng_state()
    a = check_inputs(model, prompt='a cat', batch_size=2, generator=gen)
    assert torch.equal(gen.get_state(), gen_state)
    assert torch.equal(torch.get_rng_state(), global_state)
    assert a.latents is None and a.shape == (2, 3, 16, 16)
    assert a.shape_up == (2, 3, 32, 32) and a.generator is gen


def test_normalised_inputs(model):
    a = model.check_inputs(prompt=['a', 'b'], guidance_scale=2,
                           negative_prompt='blurry', seed=5,
                           num_inference_steps='ddim5')
    assert a.prompts == ['a', 'b'] and a.uncond == ['blurry', 'blurry']
    assert a.batch == 2 and a.guidance_scale == 2.0
    assert a.steps == 'ddim5' and a.steps_up is None
    assert a.upsample_temp == model.upsample_temp
    assert a.out_size == 32 and a.inpaint is None
    assert torch.equal(a.generator.get_state(),
                       torch.Generator().manual_seed(5).get_state())


@pytest.mark.parametrize('cfg,match', [
    (dict(guidance_scale=-1), r'test_cfg.guidance_scale must be a finite '
     'number >= 0'),
    (dict(num_inference_steps=0), r'test_cfg.num_inference_steps must be an '
     r'int in \[1, 1000\]'),
    (dict(upsample_temp=0), r'test_cfg.upsample_temp must be a number in '
     r'\(0, 1\]'),
    (dict(steps=3), r"unknown test_cfg keys \['steps'\]"),
])
def test_test_cfg_errors_name_the_key(model, cfg, match):
    with pytest.raises(ValueError, match=match):
        check_test_cfg(model, cfg)
