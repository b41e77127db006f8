"""Procedural captioned scenes: one coloured shape on a neutral background.

A scene is a dict ``{'caption': str, 'attributes': dict}``. The attributes
name the five things every caption states in words:

* ``shape``: ``'circle'``, ``'square'`` or ``'triangle'`` (upright);
* ``colour``: ``'red'``, ``'green'``, ``'blue'`` or ``'yellow'``;
* ``size``: ``'small'`` or ``'large'`` (half-extent 0.12 or 0.21 of the
  image side; every shape's bounding box is a square of twice that);
* ``position``: ``'top left'``, ``'top right'``, ``'bottom left'`` or
  ``'bottom right'`` (the centre of that quadrant, plus a little jitter);
* ``background``: ``'black'``, ``'white'`` or ``'gray'``;

and three that only drive the rendering: ``texture`` (``'plain'``,
``'noise'`` or ``'stripes'``), ``jitter`` (``[dx, dy]`` offset of the shape's
centre, in fractions of the image side) and ``texture_seed``.

Scene ``i`` of seed ``s`` is drawn from ``numpy.random.default_rng([s, i])``,
so it never depends on how many scenes are generated.

Example::

    >>> scene = make_scene(seed=0, index=3)
    >>> image = render(scene['attributes'], 64)   # uint8 (64, 64, 3)
    >>> parse_caption(scene['caption']) == caption_attributes(
    ...     scene['attributes'])
    True
"""
import json
import os
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

SHAPES = ('circle', 'square', 'triangle')
COLOURS = {
    'red': (255, 0, 0),
    'green': (0, 255, 0),
    'blue': (0, 0, 255),
    'yellow': (255, 255, 0),
}
SIZES = ('small', 'large')
POSITIONS = ('top left', 'top right', 'bottom left', 'bottom right')
BACKGROUNDS = {
    'black': (0, 0, 0),
    'white': (255, 255, 255),
    'gray': (128, 128, 128),
}
TEXTURES = ('plain', 'noise', 'stripes')
#: Concepts the dataset never shows, for teaching a model something new
#: (``tools/lora_shapes_experiment.py``): :func:`render` draws them and
#: :func:`parse_caption` reads them, :func:`make_scene` never draws them,
#: and the judge reads them only inside ``judge.reading(...)``.
NEW_COLOURS = {'purple': (160, 32, 240)}
NEW_SHAPES = ('cross',)
#: Arm width of the cross (an upright plus sign) over its box's side.
CROSS_ARM = 1 / 3

#: The attributes that every caption names, in this order.
CAPTION_KEYS = ('shape', 'colour', 'size', 'position', 'background')

#: Half-extent of the shape (circle radius, half the square's side, half the
#: triangle's base and height) in fractions of the image side.
HALF_EXTENT = {'small': 0.12, 'large': 0.21}
#: Largest jitter of the shape's centre, in fractions of the image side; it is
#: further capped so that the shape stays ``MARGIN`` inside its quadrant.
MAX_JITTER = 0.06
MARGIN = 0.015
#: Texture amplitudes, in fractions of 255.
NOISE_STD = 0.03
STRIPE_AMPLITUDE = 0.04

TEMPLATES = (
    'a {size} {colour} {shape} at the {position} on a {background} '
    'background',
    'a {size} {colour} {shape} in the {position} corner, {background} '
    'background',
    '{background} background with a {size} {colour} {shape} in the '
    '{position}',
    'a picture of a {size} {colour} {shape} at the {position} of a '
    '{background} background',
    'a {colour} {shape}, {size}, {position}, on a {background} background',
)

# Words that parse_caption accepts besides the canonical values.
_SYNONYMS = {'grey': 'gray', 'big': 'large', 'upper': 'top',
             'lower': 'bottom'}


def quadrant_centre(position: str) -> Tuple[float, float]:
    """Centre of a quadrant.

    Args:
        position: One of ``POSITIONS``.

    Returns:
        ``(x, y)`` in fractions of the image side (y grows downwards).
    """
    vertical, horizontal = position.split()
    return (0.25 if horizontal == 'left' else 0.75,
            0.25 if vertical == 'top' else 0.75)


def caption_attributes(attributes: Dict) -> Dict[str, str]:
    """The five captioned attributes of a scene, without rendering details.

    Args:
        attributes: A scene's attributes (extra keys are dropped).

    Returns:
        Dict with exactly the keys of ``CAPTION_KEYS``.
    """
    return {key: attributes[key] for key in CAPTION_KEYS}


def make_caption(attributes: Dict, template: int = 0) -> str:
    """Write the caption of a scene with one of ``TEMPLATES``.

    Args:
        attributes: Dict with at least the keys of ``CAPTION_KEYS``.
        template: Index into ``TEMPLATES``.

    Returns:
        The caption.
    """
    return TEMPLATES[template].format(**caption_attributes(attributes))


def parse_caption(caption: str) -> Dict[str, Optional[str]]:
    """Recover the five captioned attributes from a caption.

    Every caption of ``TEMPLATES`` parses back exactly. Other prompts are
    parsed word by word (``grey``, ``big``, ``upper`` and ``lower`` are
    understood too); an attribute that is missing or stated twice with
    different values is ``None``.

    Args:
        caption: The caption or prompt.

    Returns:
        Dict with the keys of ``CAPTION_KEYS``.
    """
    words = [_SYNONYMS.get(w, w)
             for w in re.findall(r'[a-z]+', caption.lower())]
    shapes = SHAPES + NEW_SHAPES
    words = [w[:-2] if w[:-2] in shapes and w.endswith('es') else
             w[:-1] if w[:-1] in shapes else w for w in words]  # plurals

    def one_of(values):
        found = {w for w in words if w in values}
        return found.pop() if len(found) == 1 else None

    vertical = one_of(('top', 'bottom'))
    horizontal = one_of(('left', 'right'))
    position = (f'{vertical} {horizontal}'
                if vertical and horizontal else None)
    return {
        'shape': one_of(shapes),
        'colour': one_of({**COLOURS, **NEW_COLOURS}),
        'size': one_of(SIZES),
        'position': position,
        'background': one_of(BACKGROUNDS),
    }


def make_scene(seed: int, index: int) -> Dict:
    """Draw scene ``index`` of ``seed``.

    Args:
        seed: Seed of the whole set of scenes.
        index: Index of the scene; it is drawn from its own generator,
            ``numpy.random.default_rng([seed, index])``.

    Returns:
        ``{'caption': str, 'attributes': dict}`` (JSON-serialisable).
    """
    rng = np.random.default_rng([seed, index])
    attributes = {
        'shape': SHAPES[rng.integers(len(SHAPES))],
        'colour': list(COLOURS)[rng.integers(len(COLOURS))],
        'size': SIZES[rng.integers(len(SIZES))],
        'position': POSITIONS[rng.integers(len(POSITIONS))],
        'background': list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))],
        'texture': TEXTURES[rng.integers(len(TEXTURES))],
    }
    limit = min(MAX_JITTER, 0.25 - HALF_EXTENT[attributes['size']] - MARGIN)
    attributes['jitter'] = [round(float(v), 4)
                            for v in rng.uniform(-limit, limit, size=2)]
    attributes['texture_seed'] = int(rng.integers(2**31))
    caption = make_caption(attributes, int(rng.integers(len(TEMPLATES))))
    return {'caption': caption, 'attributes': attributes}


def make_scenes(n: int, seed: int = 0, start: int = 0) -> List[Dict]:
    """Draw scenes ``start`` to ``start + n - 1`` of ``seed``.

    Args:
        n: Number of scenes.
        seed: Seed of the set.
        start: Index of the first scene.

    Returns:
        List of scenes as returned by ``make_scene``.
    """
    return [make_scene(seed, i) for i in range(start, start + n)]


def _background(attributes: Dict, size: int) -> np.ndarray:
    """Float (size, size, 3) background in [0, 255], textured if asked."""
    image = np.empty((size, size, 3), np.float64)
    image[:] = BACKGROUNDS[attributes['background']]
    texture = attributes.get('texture', 'plain')
    rng = np.random.default_rng(attributes.get('texture_seed', 0))
    if texture == 'noise':
        image += rng.normal(0, NOISE_STD * 255, (size, size, 1))
    elif texture == 'stripes':
        cycles = rng.integers(4, 9)
        phase = rng.uniform(0, 2 * np.pi)
        coord = (np.arange(size) + 0.5) / size
        wave = STRIPE_AMPLITUDE * 255 * np.sin(
            2 * np.pi * cycles * coord + phase)
        if rng.integers(2):
            image += wave[None, :, None]  # vertical stripes
        else:
            image += wave[:, None, None]  # horizontal stripes
    elif texture != 'plain':
        raise ValueError(f'unknown texture {texture!r}')
    return image


def shape_coverage(attributes: Dict, size: int,
                   supersample: int = 4) -> np.ndarray:
    """Fraction of each pixel covered by the scene's shape.

    Args:
        attributes: Dict with ``shape``, ``size`` and ``position`` (and
            optionally ``jitter``).
        size: Image side in pixels.
        supersample: Sub-pixels per pixel side used to anti-alias edges.

    Returns:
        Float array (size, size) in [0, 1].
    """
    cx, cy = quadrant_centre(attributes['position'])
    dx, dy = attributes.get('jitter', (0.0, 0.0))
    return draw_shape(attributes['shape'], cx + dx, cy + dy,
                      HALF_EXTENT[attributes['size']], size, supersample)


def draw_shape(shape: str, cx: float, cy: float, r: float, size: int,
               supersample: int = 4) -> np.ndarray:
    """Coverage of a shape given by its bounding box, anti-aliased.

    Args:
        shape: One of ``SHAPES`` or ``NEW_SHAPES``; the triangle is
            upright (apex at the top centre of the box, base along its
            bottom), the cross a plus sign with arms ``CROSS_ARM`` of the
            box's side wide.
        cx: Centre of the bounding box, in fractions of the image side.
        cy: Centre of the bounding box (y grows downwards).
        r: Half the side of the (square) bounding box: the circle's radius.
        size: Image side in pixels.
        supersample: Sub-pixels per pixel side.

    Returns:
        Float array (size, size) in [0, 1].
    """
    n = size * supersample
    coord = (np.arange(n) + 0.5) / n
    x, y = coord[None, :] - cx, coord[:, None] - cy
    if shape == 'circle':
        inside = x**2 + y**2 <= r**2
    elif shape == 'square':
        inside = (np.abs(x) <= r) & (np.abs(y) <= r)
    elif shape == 'triangle':
        inside = (np.abs(y) <= r) & (np.abs(x) <= (y + r) / 2)
    elif shape == 'cross':
        arm = r * CROSS_ARM
        inside = (np.abs(x) <= r) & (np.abs(y) <= r) & (
            (np.abs(x) <= arm) | (np.abs(y) <= arm))
    else:
        raise ValueError(f'unknown shape {shape!r}')
    return inside.reshape(size, supersample, size,
                          supersample).mean(axis=(1, 3))


def render(attributes: Dict, size: int = 64) -> np.ndarray:
    """Render a scene.

    Args:
        attributes: A scene's attributes. ``texture``, ``jitter`` and
            ``texture_seed`` are optional (plain, centred, 0), so
            ``render(parse_caption(caption), size)`` draws the canonical
            image of any complete caption.
        size: Side of the square image in pixels (at least 16).

    Returns:
        uint8 RGB image of shape (size, size, 3).
    """
    if size < 16:
        raise ValueError(f'size must be at least 16, got {size}')
    image = _background(attributes, size)
    alpha = shape_coverage(attributes, size)[..., None]
    rgb = {**COLOURS, **NEW_COLOURS}[attributes['colour']]
    image = image * (1 - alpha) + np.array(rgb, np.float64) * alpha
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def generate_dataset(n: int, seed: int = 0,
                     size: int = 64) -> Tuple[np.ndarray, List[Dict]]:
    """Generate scenes and their images in memory.

    Args:
        n: Number of scenes.
        seed: Seed of the set.
        size: Image side in pixels.

    Returns:
        ``(images, scenes)``: uint8 array (n, size, size, 3) and the list of
        scenes (``{'caption', 'attributes'}``).
    """
    scenes = make_scenes(n, seed)
    images = np.stack([render(s['attributes'], size) for s in scenes]) \
        if n else np.zeros((0, size, size, 3), np.uint8)
    return images, scenes


def write_dataset(out_dir: str, n: int, seed: int = 0, size: int = 64,
                  progress: Optional[Callable[[int, int], None]] = None
                  ) -> List[Dict]:
    """Write scenes as PNGs plus an ``annotations.jsonl`` index.

    Layout::

        out_dir/images/000000.png ...
        out_dir/annotations.jsonl   # {"path": "images/000000.png",
                                    #  "caption": ..., "attributes": {...}}

    Each file is written whole or not at all
    (:func:`projects.glide.files.atomic_write`), the index last: a set
    stopped part way has no index, or the previous one.

    Args:
        out_dir: Output folder (created if needed).
        n: Number of scenes.
        seed: Seed of the set.
        size: Image side in pixels.
        progress: Optional callback ``progress(done, n)``, called after each
            image.

    Returns:
        The records written to ``annotations.jsonl``, in order.
    """
    from PIL import Image

    from ..files import atomic_write, write_text
    records = []
    for i in range(n):
        scene = make_scene(seed, i)
        path = f'images/{i:06d}.png'
        with atomic_write(os.path.join(out_dir, path)) as temporary:
            Image.fromarray(render(scene['attributes'], size)).save(
                temporary, format='PNG')
        records.append({'path': path, **scene})
        if progress is not None:
            progress(i + 1, n)
    write_text(os.path.join(out_dir, 'annotations.jsonl'),
               ''.join(json.dumps(record) + '\n' for record in records))
    return records


def read_dataset(out_dir: str) -> List[Dict]:
    """Read the records of ``annotations.jsonl`` written by ``write_dataset``.

    Args:
        out_dir: The dataset folder.

    Returns:
        List of ``{'path', 'caption', 'attributes'}`` dicts; ``path`` is
        relative to ``out_dir``.
    """
    with open(os.path.join(out_dir, 'annotations.jsonl')) as f:
        return [json.loads(line) for line in f if line.strip()]


def value_counts(scenes: Sequence[Dict]) -> Dict[str, Dict[str, int]]:
    """Count each captioned attribute value over scenes.

    Args:
        scenes: Scenes (or records) with an ``attributes`` dict.

    Returns:
        ``{key: {value: count}}`` for every key of ``CAPTION_KEYS``.
    """
    counts = {key: {} for key in CAPTION_KEYS}
    for scene in scenes:
        for key in CAPTION_KEYS:
            value = scene['attributes'][key]
            counts[key][value] = counts[key].get(value, 0) + 1
    return counts
