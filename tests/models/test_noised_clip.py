"""The noised CLIP guide and CLIP guidance, against the reference."""
import pytest
import torch

from mmagic.apis import init_model
from mmagic.registry import MODELS
from projects.glide.models import NoisedCLIP
from projects.glide.models.noised_clip import CLIPTokenizer
from tests.conftest import (CONFIGS, TEST_CONFIGS, read_json, read_key_list,
                            reference_path)
from tests.models.test_glide import randomize
from tests.reference import reference_state_dict

TINY_CLIP = str(TEST_CONFIGS / 'glide_tiny_16-32-clip.py')


@pytest.fixture(scope='module')
def reference():
    """The golden CLIP case's stored tensors and its manifest."""
    from safetensors.torch import load_file
    data = load_file(str(reference_path('clip_tiny.safetensors')))
    return data, read_json('clip_manifest.json')


def reference_clip():
    """The tiny CLIP config of this project, with the reference's weights."""
    from mmengine import Config
    clip = MODELS.build(Config.fromfile(TINY_CLIP).model.classifier)
    clip.load_state_dict(reference_state_dict('clip'), strict=True)
    return clip


def test_tokenizer_agrees_with_reference():
    cases = read_json('clip_tokenizer_cases.json.gz')['cases']
    tok = CLIPTokenizer()
    assert [tok.encode(c['prompt']) for c in cases] == \
        [c['tokens'] for c in cases]
    tokens, lens = tok([c['prompt'] for c in cases])
    assert tokens.tolist() == [c['padded_77'] for c in cases]
    assert lens.tolist() == [c['len_77'] for c in cases]


def test_embeddings_and_gradient_match_reference(reference):
    data, meta = reference
    clip = reference_clip()
    tokens, lens = clip.tokenizer(meta['prompts'])
    assert torch.equal(tokens, data['text.tokens'])
    assert torch.equal(lens, data['text.lens'])
    with torch.no_grad():
        z_text = clip.text_embeddings(meta['prompts'])
        z_image = clip.image_embeddings(data['image.x'], data['image.t'])
    errs = dict(
        text=(z_text - data['text.embeddings']).abs().max().item(),
        image=(z_image - data['image.embeddings']).abs().max().item())
    grad = clip.guidance_grad(z_text, data['image.x'], data['image.t'], 2.0)
    errs['grad'] = (grad - data['cond_fn.grad_scale_2']).abs().max().item()
    print('noised CLIP max abs diffs:', errs)
    assert torch.allclose(clip.logit_scale.exp(), data['logit_scale'].exp())
    assert max(errs.values()) <= 1e-5


def test_full_size_keys_equal_openai_release():
    from mmengine import Config
    cfg = Config.fromfile(str(CONFIGS / 'glide_clip-guided_laion-64x64.py'))
    with torch.device('meta'):
        clip = MODELS.build(cfg.model.classifier)
    for part, name, params in (
            ('text_encoder', 'keys_openai_clip_text_enc.txt.gz',
             71_679_488),
            ('image_encoder', 'keys_openai_clip_image_enc.txt.gz',
             86_443_776)):
        net = getattr(clip, part)
        assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == \
            read_key_list(name)
        assert sum(p.numel() for p in net.parameters()) == params


@pytest.fixture(scope='module')
def clip_model():
    model = randomize(init_model(TINY_CLIP, None, device='cpu'))
    model.classifier.load_state_dict(reference_clip().state_dict())
    return model


def test_scale_zero_is_exactly_unguided(clip_model, tmp_path):
    kw = dict(prompt='a corgi', batch_size=2, num_inference_steps=6,
              num_inference_steps_up=3, seed=0)
    guided0 = clip_model.infer(classifier_scale=0.0, **kw)['samples']
    plain = init_model(str(TEST_CONFIGS / 'glide_tiny_16-32.py'), None,
                       device='cpu')
    plain.load_state_dict({k: v for k, v in clip_model.state_dict().items()
                           if not k.startswith('classifier.')})
    assert torch.equal(guided0, plain.infer(**kw)['samples'])


@pytest.mark.parametrize('sampler,scales', [
    ('GlideAncestralScheduler', (0.0, 3.0, 10.0, 30.0)),
    # Folded into eps, guidance saturates the (clipped) x_0 sooner.
    ('GlideDDIMScheduler', (0.0, 0.1, 0.3, 1.0)),
    ('GlideDPMSolverScheduler', (0.0, 0.1, 0.3, 1.0)),
])
def test_clip_similarity_rises_with_scale(clip_model, sampler, scales,
                                          monkeypatch):
    """The paper's CLIP guidance: samples move towards the prompt's CLIP
    embedding, the more so the larger the scale (with classifier-free
    guidance on as well)."""
    from mmagic.registry import DIFFUSION_SCHEDULERS
    monkeypatch.setattr(clip_model, 'diffusion_scheduler',
                        DIFFUSION_SCHEDULERS.build(dict(type=sampler)))
    prompt = 'an oil painting of a corgi'
    z_text = clip_model.classifier.text_embeddings([prompt])
    sims = []
    for scale in scales:
        out = clip_model.infer(prompt=prompt, batch_size=8, seed=0,
                               num_inference_steps=20,
                               num_inference_steps_up=2,
                               classifier_scale=scale, return_low_res=True)
        with torch.no_grad():
            z = clip_model.classifier.image_embeddings(
                out['low_res'], torch.zeros(8, dtype=torch.long))
        sims.append((z @ z_text.T).mean().item())
    print(sampler, f'CLIP similarity at scales {scales}:',
          [round(s, 4) for s in sims])
    assert sims == sorted(sims) and sims[-1] - sims[0] > 0.02


def test_clip_guidance_composes_with_inpainting(reference):
    from mmengine import Config
    cfg = Config.fromfile(TINY_CLIP)
    cfg.model.unet.type = 'InpaintText2ImUNet'
    cfg.model.unet_up.type = 'SuperResInpaintText2ImUNet'
    model = randomize(init_model(cfg, None, device='cpu'))
    image = torch.rand(1, 3, 16, 16) * 2 - 1
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :8] = 1
    out = model.infer(prompt='a corgi', init_image=image, mask=mask,
                      classifier_scale=5.0, num_inference_steps=5,
                      num_inference_steps_up=2, seed=0, return_low_res=True)
    assert (out['low_res'] - image)[..., :8].abs().max() < 1e-5
