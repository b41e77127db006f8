"""projects/glide/models/sampling.py: the pieces of one sampling stage."""
import torch

from projects.glide.models.sampling import (classifier_free_guidance,
                                            inpaint_inputs, quantize_8bit,
                                            start_noise)


def test_guidance_moves_the_prediction_and_keeps_the_conditional_variance():
    cond = torch.tensor([1.0, 2.0, 10.0, 20.0]).reshape(1, 4, 1, 1)
    uncond = torch.tensor([0.0, 4.0, -1.0, -2.0]).reshape(1, 4, 1, 1)
    out = classifier_free_guidance(torch.cat([cond, uncond]), 3.0, 2)
    # uncond + 3 (cond - uncond) on the 2 prediction channels.
    assert out.flatten().tolist() == [3.0, -2.0, 10.0, 20.0]
    one = classifier_free_guidance(torch.cat([cond, uncond]), 1.0, 2)
    assert torch.equal(one, cond)


def test_quantize_8bit_gives_the_256_levels_of_a_png():
    x = torch.linspace(-1, 1, 10_001)
    q = quantize_8bit(x)
    levels = ((q + 1) * 127.5).round()
    assert torch.allclose((q + 1) * 127.5, levels, atol=1e-4)
    assert len(levels.unique()) == 256
    assert (q - x).abs().max() <= 1 / 255 + 1e-6


def test_inpaint_inputs_resize_to_the_stage_and_paste_the_known_region():
    image = torch.rand(2, 3, 8, 8) * 2 - 1
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :4] = 1  # keep the left half
    cond, paste = inpaint_inputs((image, mask), 16)
    assert cond['inpaint_image'].shape == (2, 3, 16, 16)
    assert cond['inpaint_mask'].shape == (2, 1, 16, 16)
    x0 = torch.full((2, 3, 16, 16), 0.5)
    pasted = paste(x0)
    assert torch.equal(pasted[..., 8:], x0[..., 8:])
    assert torch.equal(pasted[..., :8], cond['inpaint_image'][..., :8])
    assert inpaint_inputs(None, 16) == ({}, None)


def test_start_noise_draws_from_the_generator_or_takes_the_latents():
    gen = torch.Generator().manual_seed(7)
    drawn = start_noise(None, (2, 3, 4, 4), gen, torch.device('cpu'))
    assert torch.equal(drawn, torch.randn(
        2, 3, 4, 4, generator=torch.Generator().manual_seed(7)))
    given = torch.ones(1, 3, 4, 4, dtype=torch.float64)
    out = start_noise(given, (1, 3, 4, 4), gen, torch.device('cpu'))
    assert out.dtype == torch.float32 and torch.equal(out, given.float())
