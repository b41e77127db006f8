"""The shapes evaluation network: its committed weights, its measurements."""
from pathlib import Path

import numpy as np
import pytest
import torch

from projects.glide.shapes import evaluator as ev
from projects.glide.shapes.scenes import make_caption, render

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / ev.DEFAULT_PATH
GLIDE = ROOT / 'checkpoints' / 'glide_shapes-32.safetensors'
#: Scene seed of these tests' held-out scenes (training: ev.TRAIN_SEED).
SEED = 4242


@pytest.fixture(scope='module')
def net():
    return ev.load_evaluator(str(WEIGHTS))


def test_weights_are_small_and_not_the_guides():
    """A float16 file under 1 MB whose keys are all the evaluator's and
    none of the GLIDE checkpoint's (UNet, CLIP guide, upsampler)."""
    from safetensors import safe_open
    assert WEIGHTS.stat().st_size < 1024 * 1024
    with safe_open(str(WEIGHTS), 'pt') as f:
        keys = set(f.keys())
        assert {f.get_tensor(k).dtype for k in keys} == {torch.float16}
    assert keys == set(ev.ShapesEvaluator().state_dict())
    with safe_open(str(GLIDE), 'pt') as f:
        assert not keys & set(f.keys())


def test_accuracy_on_fresh_held_out_scenes(net):
    """Every head (shape, colour, size, position, background, texture) on
    200 freshly rendered scenes of a seed it never saw: at least 0.98
    (docs/tradeoff.md: 1.00 on 2000 scenes of another seed)."""
    images, attributes = ev.render_scenes(200, SEED)
    acc = ev.attribute_accuracy(ev.predict(net, images), attributes)
    assert min(acc.values()) >= 0.98, acc


def test_caption_match_prefers_the_right_caption(net):
    """The mean probability of a caption's attributes is high for the
    scene's own caption and lower for one with two attributes changed."""
    images, attributes = ev.render_scenes(40, SEED + 1)
    right = [make_caption(a) for a in attributes]
    wrong = [make_caption(dict(a, colour='green' if a['colour'] != 'green'
                               else 'red',
                               background='white' if a['background'] !=
                               'white' else 'black')) for a in attributes]
    pred = ev.predict(net, images)
    own = ev.caption_scores(pred, right)
    other = ev.caption_scores(pred, wrong)
    assert own['match'].mean() > 0.85
    assert own['match'].mean() - other['match'].mean() > 0.3
    assert other['accuracy']['all'] < 0.1


def test_features_have_the_stated_size(net):
    images, _ = ev.render_scenes(3, SEED + 2)
    assert ev.predict(net, images)['features'].shape == (3, ev.FEATURE_DIM)


def test_background_grain_of_the_textures():
    """0 levels for a plain background, about the texture's amplitude for
    noise (std 0.03 * 255 = 7.65) on gray, where nothing clips."""
    base = dict(shape='square', colour='red', size='small',
                position='top left', background='gray', texture_seed=3)
    images = [render(dict(base, texture=t), 32) for t in ('plain', 'noise')]
    captions = [make_caption(base)] * 2
    plain, noise = ev.background_grain(images, captions)
    assert plain == 0.0
    assert 6.0 < noise < 9.5


def test_jitter_offsets_read_the_jitter_back():
    """The judge's centroid less the quadrant centre is the scene's jitter
    (a triangle's centroid corrected), within half a pixel at 32 px."""
    from projects.glide.shapes import judge_image
    for shape in ('circle', 'square', 'triangle'):
        a = dict(shape=shape, colour='yellow', size='small',
                 position='bottom right', background='black',
                 jitter=[0.05, -0.04])
        (offset,) = ev.jitter_offsets([judge_image(render(a, 32))])
        assert np.abs(offset - a['jitter']).max() < 0.5 / 32, shape


def test_render_for_captions_keeps_the_caption_and_bounds_the_jitter():
    captions = [make_caption(dict(shape='circle', colour='blue',
                                  size=size, position='top right',
                                  background='white'))
                for size in ('large', 'small')]
    images, attributes = ev.render_for_captions(captions, 8, seed=1)
    assert images.shape == (16, 3, 32, 32)
    assert {a['size'] for a in attributes[:8]} == {'large'}
    for a in attributes:
        limit = ev._jitter_limit(a['size'])
        assert max(abs(v) for v in a['jitter']) <= limit + 1e-9
