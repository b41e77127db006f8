"""The pixel-based judge: accuracy on clean, noisy and mismatched pairs."""
import itertools
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from projects.glide.shapes import (BACKGROUNDS, CAPTION_KEYS, COLOURS,
                                   POSITIONS, SHAPES, SIZES, caption_accuracy,
                                   diversity, generate_dataset, judge_image,
                                   make_caption, render, to_uint8_images)
from projects.glide.shapes.judge import reading

VALUES = {'shape': SHAPES, 'colour': tuple(COLOURS), 'size': SIZES,
          'position': POSITIONS, 'background': tuple(BACKGROUNDS)}


@pytest.fixture(scope='module', autouse=True)
def _registered():
    """Override tests/conftest.py's: these tests need no MMagic registry."""


@pytest.fixture(scope='module', params=[32, 64])
def dataset(request):
    images, scenes = generate_dataset(300, seed=11, size=request.param)
    return images, [s['caption'] for s in scenes], scenes


def degrade(images, std=0.05, blur=0.7, seed=0):
    """Blur (Gaussian, radius ``blur`` px), then add noise (std in [0, 1])."""
    rng = np.random.default_rng(seed)
    out = []
    for image in images:
        blurred = Image.fromarray(image).filter(ImageFilter.GaussianBlur(blur))
        noisy = np.asarray(blurred) + rng.normal(0, std * 255, image.shape)
        out.append(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    return out


def test_clean_accuracy(dataset):
    images, captions, scenes = dataset
    scores = caption_accuracy(images, captions)
    print('clean', images.shape[1], scores)
    assert scores['n'] == len(images)
    for key in CAPTION_KEYS + ('all',):
        assert scores[key] >= 0.98, (key, scores)
    judged = judge_image(images[0])
    assert {k: judged[k] for k in CAPTION_KEYS} == {
        k: scenes[0]['attributes'][k] for k in CAPTION_KEYS}


def test_noisy_blurred_accuracy(dataset):
    images, captions, _ = dataset
    noisy = degrade(images)
    # The degradation is real (noise is clipped on black and white).
    assert np.abs(np.stack(noisy).astype(int) - images).mean() > 5
    scores = caption_accuracy(noisy, captions)
    print('noisy', images.shape[1], scores)
    for key in CAPTION_KEYS + ('all',):
        assert scores[key] >= 0.9, (key, scores)


def test_shuffled_captions_score_low(dataset):
    images, captions, _ = dataset
    shuffled = [captions[i] for i in
                np.random.default_rng(0).permutation(len(captions))]
    scores = caption_accuracy(images, shuffled)
    assert scores['all'] <= 0.05, scores
    for key in CAPTION_KEYS:  # about chance: 1 / (number of values)
        assert scores[key] <= 1.5 / len(VALUES[key]) + 0.1, (key, scores)


@pytest.mark.parametrize('key', CAPTION_KEYS)
def test_one_wrong_attribute_is_caught(dataset, key):
    images, _, scenes = dataset
    images, scenes = images[:100], scenes[:100]
    wrong = []
    for i, scene in enumerate(scenes):
        attributes = dict(scene['attributes'])
        others = [v for v in VALUES[key] if v != attributes[key]]
        attributes[key] = others[i % len(others)]
        wrong.append(make_caption(attributes, i % 5))
    scores = caption_accuracy(images, wrong)
    assert scores[key] <= 0.02 and scores['all'] <= 0.02, scores
    for other in CAPTION_KEYS:
        if other != key:
            assert scores[other] >= 0.98, (other, scores)


def test_tensor_inputs_match_uint8(dataset):
    images, captions, _ = dataset
    images, captions = images[:40], captions[:40]
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    for converted in to_uint8_images(tensor), to_uint8_images(tensor.numpy()):
        np.testing.assert_array_equal(np.stack(converted), images)
    assert caption_accuracy(tensor, captions) == caption_accuracy(
        list(images), captions)
    assert judge_image(tensor[3]) == judge_image(images[3])
    # Values beyond [-1, 1] (as a sampler may give) are clipped.
    assert to_uint8_images(tensor * 3)[0].max() == 255


def test_no_foreground():
    for name, rgb in BACKGROUNDS.items():
        blank = np.full((32, 32, 3), rgb, np.uint8)
        judged = judge_image(blank)
        assert judged['background'] == name
        assert all(judged[k] is None
                   for k in ('shape', 'colour', 'size', 'position'))
        caption = f'a small red circle at the top left on a {name} background'
        scores = caption_accuracy([blank], [caption])
        assert scores['background'] == 1 and scores['all'] == 0


def test_foreground_whose_median_is_the_background():
    """Pixels far from a gray background on both sides: their median colour
    is the background's. The judge must still answer, without NaN or a
    division warning."""
    image = np.full((32, 32, 3), 128, np.uint8)
    kinds = np.array([[255, 0, 128], [0, 255, 128], [128, 128, 255],
                      [128, 128, 0]], np.uint8)
    for y in range(4, 12):
        for x in range(4, 12):
            image[y, x] = kinds[(y % 2) * 2 + x % 2]
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        judged = judge_image(image)
    assert judged['background'] == 'gray'
    assert judged['position'] == 'top left'
    assert judged['shape'] == 'square'
    assert all(np.isfinite(v) for v in judged['features']['errors'].values())


def test_speck_is_not_a_shape():
    image = np.zeros((64, 64, 3), np.uint8)
    image[10, 50] = COLOURS['red']
    assert judge_image(image)['shape'] is None


def test_resize_and_partial_captions():
    attributes = {'shape': 'triangle', 'colour': 'yellow', 'size': 'large',
                  'position': 'bottom left', 'background': 'gray'}
    judged = judge_image(render(attributes, 128), size=64)
    assert {k: judged[k] for k in CAPTION_KEYS} == attributes
    scores = caption_accuracy([render(attributes, 32)],
                              ['a yellow triangle'])
    assert scores['shape'] == scores['colour'] == scores['all'] == 1
    assert scores['size'] is None
    with pytest.raises(ValueError):
        caption_accuracy([render(attributes, 32)], [])


def test_diversity():
    base = {'shape': 'circle', 'colour': 'red', 'size': 'small',
            'position': 'top left', 'background': 'black'}
    same = [render(base, 32)] * 4
    assert diversity(same) == 0.0  # differences of equal pixels: exact
    assert diversity(same[:1]) == 0.0
    moved = [render(dict(base, position=p), 32) for p in POSITIONS]
    images, _ = generate_dataset(8, seed=1, size=32)
    # Brute force: mean over pairs of the RMS difference in [0, 1].
    x = images.astype(np.float64) / 255
    expected = np.mean([np.sqrt(((x[i] - x[j])**2).mean())
                        for i in range(8) for j in range(i + 1, 8)])
    assert diversity(images) == pytest.approx(expected, rel=1e-6)
    assert diversity(moved) > 0.1
    assert diversity(images) > diversity(moved[:1] + same[:3])
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2) / 127.5 - 1
    assert diversity(tensor) == pytest.approx(diversity(images), rel=1e-6)


def test_new_concepts_are_read_only_inside_reading():
    """A purple cross (concepts the data never shows) is read back inside
    ``reading('purple', 'cross')`` and as the nearest data colour/shape
    outside it; leaving the block restores the data's vocabulary."""
    attributes = {'shape': 'cross', 'colour': 'purple', 'size': 'large',
                  'position': 'top right', 'background': 'gray'}
    image = render(attributes, 32)
    with reading('purple', 'cross'):
        judged = judge_image(image)
        assert caption_accuracy([image], ['a large purple cross in the top '
                                          'right corner, gray background'
                                          ])['all'] == 1
    assert {k: judged[k] for k in CAPTION_KEYS} == attributes
    outside = judge_image(image)
    assert outside['shape'] in SHAPES and outside['colour'] in COLOURS
    with pytest.raises(ValueError, match="not a new colour or shape: "
                       r"\['pink'\]"):
        with reading('pink'):
            pass


@pytest.mark.parametrize('shape', SHAPES)
def test_reading_a_new_shape_keeps_the_old_ones(shape):
    """The cross as a candidate does not steal the data's shapes."""
    with reading('cross'):
        for size, position in itertools.product(SIZES, POSITIONS):
            attributes = {'shape': shape, 'colour': 'green', 'size': size,
                          'position': position, 'background': 'black'}
            assert judge_image(render(attributes, 32))['shape'] == shape
