"""The procedural shape scenes: determinism, captions, rendering, writing."""
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from projects.glide.shapes import (BACKGROUNDS, CAPTION_KEYS, COLOURS,
                                   POSITIONS, SHAPES, SIZES, TEMPLATES,
                                   TEXTURES, caption_attributes,
                                   generate_dataset, make_caption, make_scene,
                                   make_scenes, parse_caption, read_dataset,
                                   render, value_counts, write_dataset)
from projects.glide.shapes.scenes import quadrant_centre, shape_coverage

ROOT = Path(__file__).resolve().parents[2]
VALUES = {'shape': SHAPES, 'colour': tuple(COLOURS), 'size': SIZES,
          'position': POSITIONS, 'background': tuple(BACKGROUNDS)}


@pytest.fixture(scope='module', autouse=True)
def _registered():
    """Override tests/conftest.py's: these tests need no MMagic registry."""


@pytest.fixture(scope='module')
def scenes():
    return make_scenes(400, seed=5)


def test_same_seed_same_scenes_and_images():
    images_a, scenes_a = generate_dataset(20, seed=3, size=32)
    images_b, scenes_b = generate_dataset(20, seed=3, size=32)
    assert scenes_a == scenes_b
    np.testing.assert_array_equal(images_a, images_b)
    _, scenes_c = generate_dataset(20, seed=4, size=32)
    assert [s['caption'] for s in scenes_a] != [s['caption']
                                                for s in scenes_c]


def test_scene_i_does_not_depend_on_n():
    images_10, scenes_10 = generate_dataset(10, seed=3, size=32)
    images_3, scenes_3 = generate_dataset(3, seed=3, size=32)
    assert scenes_3 == scenes_10[:3]
    np.testing.assert_array_equal(images_3, images_10[:3])
    assert make_scene(3, 7) == scenes_10[7]
    assert make_scenes(4, seed=3, start=6) == scenes_10[6:]


def test_captions_parse_back(scenes):
    for scene in scenes:
        attributes = scene['attributes']
        assert parse_caption(scene['caption']) == \
            caption_attributes(attributes)
        for key in CAPTION_KEYS:
            assert attributes[key] in scene['caption']


def test_every_template_and_combination_parses_back():
    for combo in itertools.product(*(VALUES[key] for key in CAPTION_KEYS)):
        attributes = dict(zip(CAPTION_KEYS, combo))
        for template in range(len(TEMPLATES)):
            caption = make_caption(attributes, template)
            assert parse_caption(caption) == attributes, caption


def test_parse_caption_free_prompts():
    assert parse_caption('Big BLUE circles in the upper right, grey '
                         'background.') == {
        'shape': 'circle', 'colour': 'blue', 'size': 'large',
        'position': 'top right', 'background': 'gray'}
    partial = parse_caption('a red square')
    assert partial == {'shape': 'square', 'colour': 'red', 'size': None,
                       'position': None, 'background': None}
    assert parse_caption('a red and blue circle at the top')['colour'] is None
    assert parse_caption('a red circle at the top')['position'] is None


def test_attribute_balance(scenes):
    counts = value_counts(scenes)
    for key, values in VALUES.items():
        assert set(counts[key]) == set(values), key
        for value in values:  # uniform draws: expected len / k each
            assert counts[key][value] >= 0.6 * len(scenes) / len(values), \
                (key, value, counts[key])
    textures = {s['attributes']['texture'] for s in scenes}
    assert textures == set(TEXTURES)
    templates = set()
    for scene in scenes:
        for t in range(len(TEMPLATES)):
            if make_caption(scene['attributes'], t) == scene['caption']:
                templates.add(t)
    assert templates == set(range(len(TEMPLATES)))


@pytest.mark.parametrize('size', [32, 48, 64])
def test_render_shapes_stay_in_their_quadrant(scenes, size):
    for scene in scenes[:100]:
        attributes = scene['attributes']
        image = render(attributes, size)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        ys, xs = np.nonzero(shape_coverage(attributes, size) > 0)
        qx, qy = quadrant_centre(attributes['position'])
        x0, y0 = int((qx - 0.25) * size), int((qy - 0.25) * size)
        half = size // 2
        assert x0 <= xs.min() and xs.max() < x0 + half, attributes
        assert y0 <= ys.min() and ys.max() < y0 + half, attributes


@pytest.mark.parametrize('size', [32, 64])
def test_render_colours_sizes_and_backgrounds(size):
    for shape, colour, background in itertools.product(SHAPES, COLOURS,
                                                       BACKGROUNDS):
        areas = {}
        for size_name in SIZES:
            attributes = {'shape': shape, 'colour': colour,
                          'size': size_name, 'position': 'bottom right',
                          'background': background}
            image = render(attributes, size).astype(int)
            is_colour = (image == COLOURS[colour]).all(axis=-1)
            is_background = (image == BACKGROUNDS[background]).all(axis=-1)
            areas[size_name] = is_colour.mean()
            assert is_colour.any() and is_background[:size // 2].all()
            # Only anti-aliased edge pixels are neither colour.
            assert (~is_colour & ~is_background).mean() < 0.1
        assert areas['large'] > 2.5 * areas['small'], (shape, areas)
        assert areas['small'] > 0.01


def test_textured_backgrounds_are_subtle():
    plain = {'shape': 'circle', 'colour': 'red', 'size': 'small',
             'position': 'top left', 'background': 'gray',
             'texture': 'plain', 'texture_seed': 1}
    reference = render(plain, 64).astype(int)
    for texture in ('noise', 'stripes'):
        image = render(dict(plain, texture=texture), 64).astype(int)
        difference = np.abs(image - reference)[32:, 32:]  # background only
        assert difference.std() > 1, texture
        assert difference.max() < 0.2 * 255, texture
        assert np.abs(image[32:, 32:].mean(axis=(0, 1)) - 128).max() < 6
    with pytest.raises(ValueError):
        render(dict(plain, texture='plaid'), 64)
    with pytest.raises(ValueError):
        render(dict(plain, shape='hexagon'), 64)
    with pytest.raises(ValueError):
        render(plain, 8)


def test_render_of_a_parsed_caption():
    caption = 'a small green triangle at the top right on a black background'
    image = render(parse_caption(caption), 32)
    green = (image == COLOURS['green']).all(axis=-1)
    ys, xs = np.nonzero(green)
    assert xs.min() >= 16 and ys.max() < 16


def test_write_dataset(tmp_path, scenes):
    progress = []
    records = write_dataset(str(tmp_path), 12, seed=5, size=32,
                            progress=lambda done, n: progress.append(done))
    assert progress == list(range(1, 13))
    lines = (tmp_path / 'annotations.jsonl').read_text().splitlines()
    assert len(lines) == 12
    assert [json.loads(line) for line in lines] == records
    assert read_dataset(str(tmp_path)) == records
    for i, (record, scene) in enumerate(zip(records, scenes)):
        assert record['path'] == f'images/{i:06d}.png'
        assert record['caption'] == scene['caption']
        assert record['attributes'] == scene['attributes']
        with Image.open(tmp_path / record['path']) as png:
            assert png.mode == 'RGB' and png.size == (32, 32)
            np.testing.assert_array_equal(
                np.asarray(png), render(record['attributes'], 32))


def test_cli(tmp_path):
    out = tmp_path / 'shapes'
    proc = subprocess.run(
        [sys.executable, 'tools/make_shapes_dataset.py', '--out', str(out),
         '--num', '6', '--seed', '2', '--size', '32'],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '6/6' in proc.stderr
    assert sorted(os.listdir(out / 'images')) == [f'{i:06d}.png'
                                                  for i in range(6)]
    records = read_dataset(str(out))
    assert [r['caption'] for r in records] == [s['caption']
                                               for s in make_scenes(6, 2)]


def test_new_concepts_render_and_parse_but_are_never_drawn():
    """Purple and the cross (``NEW_COLOURS``/``NEW_SHAPES``) are for
    teaching a model something new: rendered and parsed, never sampled."""
    from projects.glide.shapes.scenes import (CROSS_ARM, NEW_COLOURS,
                                              NEW_SHAPES)
    cross = shape_coverage(dict(shape='cross', size='large',
                                position='top left'), 64, supersample=8)
    side = 2 * 0.21 * 64  # the large box's side in pixels
    expected = (1 - (1 - CROSS_ARM)**2) * side**2
    assert cross.sum() == pytest.approx(expected, rel=0.03)
    attributes = dict(shape='cross', colour='purple', size='small',
                      position='bottom left', background='white')
    caption = make_caption(attributes, 2)
    assert parse_caption(caption) == attributes
    assert parse_caption('two purple crosses') == dict(
        shape='cross', colour='purple', size=None, position=None,
        background=None)
    image = render(attributes, 32)
    assert (image == NEW_COLOURS['purple']).all(axis=-1).sum() > 10
    drawn = {s['attributes'][k] for s in make_scenes(2000, 3)
             for k in ('shape', 'colour')}
    assert not drawn & (set(NEW_COLOURS) | set(NEW_SHAPES))
