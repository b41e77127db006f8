"""A pixel-based judge of shape scenes: no learned weights.

``judge_image`` reads the five captioned attributes back from an image:

1. background: the median of the border pixels, named by the nearest colour
   of ``BACKGROUNDS``;
2. foreground: the pixels farther than ``FG_THRESHOLD`` (Euclidean RGB
   distance, colours in [0, 1]) from that background, keeping the largest
   8-connected component (stray specks of a generated image are dropped);
   less than ``MIN_AREA`` of the image means "no shape", and ``shape``,
   ``colour``, ``size`` and ``position`` are then ``None``;
3. colour: the nearest colour of ``COLOURS`` to the foreground's median RGB;
4. coverage: each pixel near the foreground is given the fraction ``alpha``
   of the way it lies from the background colour to the foreground colour
   (so blurred and anti-aliased edges count partially and noise averages
   out); the foreground's area and centroid are those of ``alpha``;
5. position: the quadrant holding the centroid;
6. shape: analysis by synthesis: a circle, a square and an upright triangle
   with the measured area and centroid are drawn, and the one closest to
   ``alpha`` (least squared error) wins;
7. size: that shape's bounding-box side (0.24 of the image for small, 0.42
   for large) against the midpoint, ``SIZE_THRESHOLD``.

Images are uint8 HxWx3 arrays, or float tensors/arrays in [-1, 1] shaped
(3, H, W) (one) or (B, 3, H, W) (a batch), as the diffusion model outputs.
"""
import math
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .scenes import (BACKGROUNDS, CAPTION_KEYS, COLOURS, CROSS_ARM,
                     HALF_EXTENT, NEW_COLOURS, NEW_SHAPES, SHAPES,
                     draw_shape, parse_caption)

FG_THRESHOLD = 0.4
MIN_AREA = 0.005
#: Area of each shape over that of its bounding box.
IDEAL_FILL = {'circle': math.pi / 4, 'square': 1.0, 'triangle': 0.5,
              'cross': 1 - (1 - CROSS_ARM)**2}
#: Bounding-box side (fraction of the image) between small and large.
SIZE_THRESHOLD = HALF_EXTENT['small'] + HALF_EXTENT['large']

#: The new concepts (``scenes.NEW_COLOURS``/``NEW_SHAPES``) being read.
_READING: List[str] = []
_BACKGROUND_NAMES = list(BACKGROUNDS)
_BACKGROUND_RGB = np.array([BACKGROUNDS[c] for c in _BACKGROUND_NAMES],
                           np.float64)


@contextmanager
def reading(*names: str) -> Iterator[None]:
    """Let the judge also read these colours of ``scenes.NEW_COLOURS`` and
    shapes of ``scenes.NEW_SHAPES`` (for a model taught them); outside,
    it reads the dataset's vocabulary only."""
    unknown = [n for n in names if n not in NEW_COLOURS and
               n not in NEW_SHAPES]
    if unknown:
        raise ValueError(f'not a new colour or shape: {unknown} (known: '
                         f'{sorted(NEW_COLOURS) + list(NEW_SHAPES)})')
    before = list(_READING)
    _READING.extend(names)
    try:
        yield
    finally:
        _READING[:] = before


def _colours() -> Tuple[List[str], np.ndarray]:
    """The colour names the judge reads now and their RGB rows."""
    table = dict(COLOURS, **{n: NEW_COLOURS[n] for n in _READING
                             if n in NEW_COLOURS})
    return list(table), np.array(list(table.values()), np.float64)


def _shapes() -> Tuple[str, ...]:
    """The shapes the judge reads now."""
    return SHAPES + tuple(n for n in NEW_SHAPES if n in _READING)


def to_uint8_images(images) -> List[np.ndarray]:
    """Convert images to a list of uint8 HxWx3 arrays.

    Args:
        images: A uint8 HxWx3 array, a uint8 (N, H, W, 3) array, a float
            tensor/array in [-1, 1] shaped (3, H, W) or (B, 3, H, W), or a
            list of any of the single-image forms.

    Returns:
        List of uint8 arrays of shape (H, W, 3).
    """
    if isinstance(images, (list, tuple)):
        return [im for image in images for im in to_uint8_images(image)]
    if hasattr(images, 'detach'):  # a torch tensor
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f'expected 3 or 4 dims, got shape {images.shape}')
    if images.dtype == np.uint8:
        if images.shape[-1] != 3:
            raise ValueError(f'uint8 images must be NHWC, got {images.shape}')
        return list(images)
    if images.shape[1] != 3:
        raise ValueError('float images must be (B, 3, H, W) in [-1, 1], '
                         f'got {images.shape}')
    images = np.clip(np.rint((images + 1) * 127.5), 0, 255).astype(np.uint8)
    return list(images.transpose(0, 2, 3, 1))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a boolean mask."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    best: List = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        seen[start] = True
        stack, component = [start], []
        while stack:
            y, x = stack.pop()
            component.append((y, x))
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    if (0 <= ny < h and 0 <= nx < w and mask[ny, nx]
                            and not seen[ny, nx]):
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        if len(component) > len(best):
            best = component
    out = np.zeros_like(mask)
    if best:
        ys, xs = zip(*best)
        out[list(ys), list(xs)] = True
    return out


def _nearest(rgb: np.ndarray, names: Sequence[str],
             palette: np.ndarray) -> str:
    return names[int(np.argmin(((palette - rgb)**2).sum(axis=1)))]


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """Grow a boolean mask by ``steps`` pixels (8-neighbourhood)."""
    for _ in range(steps):
        grown = mask.copy()
        grown[1:] |= mask[:-1]
        grown[:-1] |= mask[1:]
        grown[:, 1:] |= grown[:, :-1]
        grown[:, :-1] |= grown[:, 1:]
        mask = grown
    return mask


def judge_image(image, size: Optional[int] = None) -> Dict:
    """Read the captioned attributes of a scene from its pixels.

    Args:
        image: One square image: uint8 HxWx3, or float (3, H, W) in [-1, 1].
        size: If given, the image is first resized to size x size (box
            filter); by default it is judged as it is.

    Returns:
        Dict with the keys of ``CAPTION_KEYS`` (``shape``, ``colour``,
        ``size`` and ``position`` are ``None`` when no foreground is found)
        and ``features``, the measurements behind them: ``background_rgb``,
        ``area`` (fraction of the image), and with a foreground ``rgb``,
        ``centroid`` (``(x, y)`` in fractions of the side), ``extent``
        (bounding-box side of the chosen shape) and ``errors`` (per shape,
        squared error of its drawing over the foreground area).
    """
    pixels = _square_pixels(image, size)
    h = pixels.shape[0]
    background_rgb = _border_colour(pixels)
    result = {key: None for key in CAPTION_KEYS}
    result['background'] = _nearest(background_rgb, _BACKGROUND_NAMES,
                                    _BACKGROUND_RGB)
    features = {'background_rgb': background_rgb.tolist()}
    result['features'] = features

    distance = np.linalg.norm(pixels - background_rgb, axis=-1) / 255
    core = _largest_component(distance > FG_THRESHOLD)
    features['area'] = float(core.mean())
    if core.mean() < MIN_AREA:
        return result
    rgb = np.median(pixels[core], axis=0)
    alpha = _coverage(pixels, core, rgb, background_rgb)
    area = alpha.sum() / (h * h)
    coord = (np.arange(h) + 0.5) / h
    cx = (alpha.sum(axis=0) @ coord) / alpha.sum()
    cy = (alpha.sum(axis=1) @ coord) / alpha.sum()
    shape, extent, errors = _best_shape(alpha, area, cx, cy)
    features.update(area=float(area), rgb=rgb.tolist(),
                    centroid=(float(cx), float(cy)), extent=extent,
                    errors=errors)
    result.update(
        shape=shape,
        colour=_nearest(rgb, *_colours()),
        size='large' if extent > SIZE_THRESHOLD else 'small',
        position=('top' if cy < 0.5 else 'bottom') + ' ' +
        ('left' if cx < 0.5 else 'right'))
    return result


def _square_pixels(image, size: Optional[int]) -> np.ndarray:
    """The image as float64 HxHx3 pixels in [0, 255], resized to ``size``
    (box filter) when given."""
    (image,) = to_uint8_images(image)
    if size is not None and image.shape[:2] != (size, size):
        from PIL import Image
        image = np.asarray(Image.fromarray(image).resize(
            (size, size), Image.BOX))
    h, w = image.shape[:2]
    if h != w:
        raise ValueError(f'expected a square image, got {h}x{w}')
    return image.astype(np.float64)


def _border_colour(pixels: np.ndarray) -> np.ndarray:
    """The median colour of the image's border (1/32 of the side wide)."""
    b = max(1, pixels.shape[0] // 32)
    border = np.concatenate([pixels[:b].reshape(-1, 3),
                             pixels[-b:].reshape(-1, 3),
                             pixels[:, :b].reshape(-1, 3),
                             pixels[:, -b:].reshape(-1, 3)])
    return np.median(border, axis=0)


def _coverage(pixels, core, rgb, background_rgb) -> np.ndarray:
    """Soft coverage of the foreground: 0 at the background colour, 1 at
    the foreground's, near the largest component only."""
    direction = rgb - background_rgb
    norm2 = float(direction @ direction)
    if norm2 < 1e-6:
        # The foreground's median colour is the background's (pixels far
        # from it on both sides): no direction to project on, so the
        # coverage is the component itself.
        return core.astype(np.float64)
    alpha = (pixels - background_rgb) @ direction / norm2
    return np.where(_dilate(core, max(2, pixels.shape[0] // 24)),
                    np.clip(alpha, -0.5, 1.5), 0)


def _best_shape(alpha, area, cx, cy):
    """The shape whose drawing (same area and centroid) fits the coverage
    best: (shape, its extent, the squared error of every shape)."""
    errors, extents = {}, {}
    for shape in _shapes():
        r = math.sqrt(max(area, 0) / IDEAL_FILL[shape]) / 2
        # The centroid of the upright triangle lies r / 3 below its box's.
        box_cy = cy - r / 3 if shape == 'triangle' else cy
        drawn = draw_shape(shape, cx, box_cy, r, alpha.shape[0])
        errors[shape] = float(((drawn - alpha)**2).sum() / alpha.sum())
        extents[shape] = 2 * r
    shape = min(errors, key=errors.get)
    return shape, extents[shape], errors


def caption_accuracy(images, captions: Sequence[str]) -> Dict:
    """How often the judged attributes of images match their captions.

    Args:
        images: Images in any form ``to_uint8_images`` accepts, e.g. a float
            tensor (B, 3, H, W) in [-1, 1] or a list of uint8 HxWx3 arrays.
        captions: One caption per image, parsed with ``parse_caption``.

    Returns:
        Dict with the accuracy of each key of ``CAPTION_KEYS`` (over the
        captions that state it; ``None`` if none do), ``all`` (fraction of
        images whose every stated attribute is right) and ``n`` (number of
        images). An attribute the judge cannot read counts as wrong.
    """
    images = to_uint8_images(images)
    if len(images) != len(captions):
        raise ValueError(f'{len(images)} images but {len(captions)} captions')
    right = {key: [] for key in CAPTION_KEYS}
    every = []
    for image, caption in zip(images, captions):
        wanted = parse_caption(caption)
        judged = judge_image(image)
        ok = True
        for key in CAPTION_KEYS:
            if wanted[key] is not None:
                right[key].append(judged[key] == wanted[key])
                ok = ok and right[key][-1]
        every.append(ok)
    result = {key: (float(np.mean(v)) if v else None)
              for key, v in right.items()}
    result['all'] = float(np.mean(every)) if every else None
    result['n'] = len(images)
    return result


def diversity(images) -> float:
    """Mean pairwise RMS distance between images, in [0, 1].

    For each pair of images (pixels scaled to [0, 1]) the distance is
    ``sqrt(mean((a - b) ** 2))`` over all pixels and channels; the result is
    its mean over all pairs. 0 means identical samples; for scale, a
    shape moved to another quadrant scores 0.17 (a small red circle on
    black) to 0.48 (a large yellow square on black), and a textured
    background alone adds about 0.03 to 0.05. Meant for samples of one
    prompt.

    Args:
        images: Images in any form ``to_uint8_images`` accepts, all of one
            size.

    Returns:
        The diversity (0.0 for fewer than two images).
    """
    images = to_uint8_images(images)
    if len(images) < 2:
        return 0.0
    x = np.stack(images).reshape(len(images), -1).astype(np.float64) / 255
    # Differences, not the Gram-matrix identity: identical images give
    # exactly 0 on every machine, whatever the summation order.
    i, j = np.triu_indices(len(images), k=1)
    return float(np.sqrt(((x[i] - x[j])**2).mean(axis=1)).mean())

