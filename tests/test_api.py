"""projects/glide/api.py: the helpers the tools and the web page share."""
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine import Config
from PIL import Image

from projects.glide import api
from projects.glide.models import (GlideAncestralScheduler,
                                   GlideDDIMScheduler)
from projects.glide.shapes import make_scenes
from tests.conftest import TEST_CONFIGS

TINY = str(TEST_CONFIGS / 'glide_tiny_16-32.py')


def test_demo_files_and_tables():
    assert os.path.isfile(api.DEMO_CONFIG)
    assert os.path.isfile(api.DEMO_CHECKPOINT)
    assert Config.fromfile(api.DEMO_CONFIG).model.get('unet_up') is not None
    assert set(api.SAMPLERS) == {'ancestral', 'ddim', 'dpm++2m'}
    assert api.DTYPES == ('float32', 'bfloat16', 'float16')


def test_build_model_from_a_file_or_a_config_left_unchanged():
    model = api.build_model(TINY, sampler='ddim', dtype='bfloat16')
    assert type(model.diffusion_scheduler).__name__ == 'GlideDDIMScheduler'
    assert next(model.unet.parameters()).dtype == torch.bfloat16
    assert not model.training and model.cfg.filename == TINY
    cfg = Config.fromfile(TINY)
    before = cfg.model.diffusion_scheduler.type
    model = api.build_model(cfg, sampler='dpm++2m')
    assert type(model.diffusion_scheduler).__name__ == \
        'GlideDPMSolverScheduler'
    assert cfg.model.diffusion_scheduler.type == before  # a copy was changed
    assert next(model.unet.parameters()).dtype == torch.float32


def test_build_model_loads_the_checkpoint(tmp_path):
    from projects.glide.models.checkpoint import save_state_dict
    weights = api.build_model(TINY).state_dict()
    key = next(k for k in weights if k.startswith('unet.'))
    weights[key] = torch.full_like(weights[key], 0.25)
    path = str(tmp_path / 'w.safetensors')
    save_state_dict(weights, path)
    loaded = api.build_model(TINY, path).state_dict()[key]
    assert (loaded == 0.25).all()


@pytest.mark.parametrize('kwargs,match', [
    (dict(sampler='euler'), "sampler must be one of ancestral, ddim, "
     "dpm\\+\\+2m, got 'euler'"),
    (dict(dtype='int8'), "dtype must be one of float32, bfloat16, float16, "
     "got 'int8'"),
])
def test_build_model_refuses_unknown_names(kwargs, match):
    with pytest.raises(ValueError, match=match):
        api.build_model(TINY, **kwargs)


def test_read_image_resizes_a_square_image(tmp_path):
    Image.new('RGB', (8, 8), (255, 0, 0)).save(tmp_path / 'red.png')
    image = api.read_image(str(tmp_path / 'red.png'), 4)
    assert image.shape == (1, 3, 4, 4) and image.dtype == torch.float32
    assert (image[:, 0] == 1).all() and (image[:, 1:] == 0).all()
    pixels = np.zeros((8, 8), np.uint8)
    pixels[:4] = 255  # top half white
    Image.fromarray(pixels).save(tmp_path / 'a.png')
    mask = api.read_image(str(tmp_path / 'a.png'), 16, 'L', '--mask')
    assert mask.shape == (1, 1, 16, 16)
    assert set(mask.unique().tolist()) == {0.0, 1.0}  # nearest: no blend


def test_read_image_refuses_what_it_cannot_use(tmp_path):
    Image.new('RGB', (200, 120)).save(tmp_path / 'wide.png')
    with pytest.raises(ValueError, match='--init-image .*wide.png is '
                       '200x120: the model needs a square image'):
        api.read_image(str(tmp_path / 'wide.png'), 32, name='--init-image')
    (tmp_path / 'text.png').write_text('not an image')
    with pytest.raises(ValueError, match='not an image Pillow can read'):
        api.read_image(str(tmp_path / 'text.png'), 32)
    with pytest.raises(FileNotFoundError, match='none.png: no such file'):
        api.read_image(str(tmp_path / 'none.png'), 32)


def test_save_png_writes_the_settings_and_no_temporary_file(tmp_path):
    path = tmp_path / 'x.png'
    api.save_png(Image.new('RGB', (4, 4), 'red'), str(path), {'seed': 3})
    assert json.loads(Image.open(path).text['glide']) == {'seed': 3}
    api.save_png(Image.new('RGB', (2, 2)), str(path), {'seed': 4})
    assert Image.open(path).size == (2, 2)  # replaced
    assert os.listdir(tmp_path) == ['x.png']


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'x.png'
    api.save_png(Image.new('RGB', (4, 4)), str(path), {'seed': 1})
    image = Image.new('RGB', (4, 4))

    def fail_halfway(target, **kwargs):
        with open(target, 'wb') as f:
            f.write(b'\x89PNG partial')
        raise OSError('disk full')

    monkeypatch.setattr(image, 'save', fail_halfway)
    with pytest.raises(OSError, match='disk full'):
        api.save_png(image, str(path), {'seed': 2})
    assert json.loads(Image.open(path).text['glide']) == {'seed': 1}
    assert os.listdir(tmp_path) == ['x.png']


def _model(up=False, classifier=False, classifier_scale=0.0):
    """A stand-in with the attributes sampling_settings reads."""
    return SimpleNamespace(
        diffusion_scheduler=GlideAncestralScheduler(timestep_respacing='25'),
        unet_up=object() if up else None,
        diffusion_scheduler_up=GlideDDIMScheduler(
            timestep_respacing='fast27') if up else None,
        upsample_temp=0.997,
        classifier=object() if classifier else None,
        classifier_scale=classifier_scale)


def test_sampling_settings_record_only_what_was_used():
    settings = api.sampling_settings(_model(), 1.0, 'blurry')
    assert settings == dict(guidance=1.0, sampler='GlideAncestralScheduler',
                            steps='25', num_steps=25)
    settings = api.sampling_settings(_model(), 0.0, 'blurry', steps=10)
    assert settings['negative_prompt'] == 'blurry'  # guidance 0: used
    assert settings['steps'] == 10
    settings = api.sampling_settings(_model(up=True), 3.0, None)
    assert 'negative_prompt' not in settings
    assert settings['sampler_up'] == 'GlideDDIMScheduler'
    assert settings['steps_up'] == 'fast27'
    assert settings['num_steps_up'] == 27
    assert settings['upsample_temp'] == 0.997


def test_sampling_settings_record_clip_guidance_only_when_on():
    off = _model(classifier=True)
    assert 'classifier_scale' not in api.sampling_settings(off, 3.0)
    assert api.sampling_settings(off, 3.0, classifier_scale=2.0)[
        'classifier_scale'] == 2.0
    on = _model(classifier=True, classifier_scale=5.0)
    assert api.sampling_settings(on, 3.0)['classifier_scale'] == 5.0
    assert 'classifier_scale' not in api.sampling_settings(
        on, 3.0, classifier_scale=0)


def test_shapes_vocabulary_holds_every_caption_word_and_nothing_else():
    vocabulary = api.shapes_vocabulary()
    captions = [s['caption'] for s in make_scenes(300, seed=0)]
    assert all(api.unknown_words(c, vocabulary) == [] for c in captions)
    seen = {w for c in captions for w in api.unknown_words(c, ())}
    assert seen == vocabulary  # no word the captions never use


def test_unknown_words():
    vocabulary = api.shapes_vocabulary()
    assert api.unknown_words('A dog, a RED circle; a dog!', vocabulary) == \
        ['dog']
    assert api.unknown_words('a big grey circles', vocabulary) == [
        'big', 'grey', 'circles']
    assert api.unknown_words("the dog's ball", vocabulary) == ["dog's",
                                                               'ball']
    assert api.unknown_words('a dog', None) == []


def test_prompt_vocabulary_is_declared_by_the_config():
    assert api.prompt_vocabulary(Config(dict(model=dict()))) is None
    cfg = Config(dict(prompt_vocabulary='shapes'))
    assert api.prompt_vocabulary(cfg) == api.shapes_vocabulary()
    with pytest.raises(ValueError, match="prompt_vocabulary must be one of "
                       "shapes or unset, got 'animals'"):
        api.prompt_vocabulary(Config(dict(prompt_vocabulary='animals')))
