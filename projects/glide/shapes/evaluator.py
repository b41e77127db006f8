"""An evaluation network for shapes scenes, never used for guidance.

A small CNN (about 0.2M parameters) trained on clean rendered 32x32 scenes
to classify the five captioned attributes and the uncaptioned texture. Its
penultimate activations (``FEATURE_DIM`` numbers) are the feature space of
the distribution metrics (Fréchet distance, precision/recall in
``projects/glide/evaluation/shapes_metrics.py``); its heads give a
caption-match score (the mean probability it assigns to the caption's five
attributes: a CLIP-score analogue from a model trained separately from the
CLIP guide) and read the texture back.

Weights: ``checkpoints/shapes_evaluator.safetensors`` (float16), written by
``tools/train_shapes_evaluator.py``; their keys (``body.*``, ``fc.*``,
``heads.*``) share nothing with the GLIDE checkpoint's (``unet.*``,
``classifier.*``, ...).

Example::

    >>> net = load_evaluator()
    >>> out = predict(net, images)          # uint8 HxWx3 list or [-1, 1]
    >>> out['labels']['texture'][:3], out['features'].shape
"""
import json
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .judge import to_uint8_images
from .scenes import (BACKGROUNDS, CAPTION_KEYS, COLOURS, HALF_EXTENT, MARGIN,
                     MAX_JITTER, POSITIONS, SHAPES, SIZES, TEXTURES,
                     make_scene, parse_caption, render)

DEFAULT_PATH = 'checkpoints/shapes_evaluator.safetensors'
IMAGE_SIZE = 32
FEATURE_DIM = 64
#: The classes of every head, in output order.
HEADS = {
    'shape': SHAPES,
    'colour': tuple(COLOURS),
    'size': SIZES,
    'position': POSITIONS,
    'background': tuple(BACKGROUNDS),
    'texture': TEXTURES,
}
#: Scene seed of the evaluator's training images (the GLIDE training set is
#: seed 0, the held-out prompts 12345).
TRAIN_SEED = 2024
#: Gain of the detail channels (image less its 3x3 blur).
DETAIL_GAIN = 8.0
#: Weight of the texture head's loss (the other heads: 1).
TEXTURE_WEIGHT = 2.0


class ShapesEvaluator(nn.Module):
    """A CNN over 32x32 images in [-1, 1] with one head per attribute.

    The input is the image and its detail, ``DETAIL_GAIN`` times the image
    less its 3x3 box blur (the textures are only 7-10 levels of 255, too
    faint to learn quickly from the image alone); then four 3x3
    convolutions (16, 32, 64, 64 channels; the last three with stride 2,
    down to 4x4), a linear layer to ``FEATURE_DIM`` features (the
    penultimate layer) and a linear head per entry of ``HEADS``.
    """

    def __init__(self, feature_dim: int = FEATURE_DIM):
        super().__init__()
        channels = [6, 16, 32, 64, 64]
        layers: List[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(channels[i], channels[i + 1], 3,
                                 stride=1 if i == 0 else 2, padding=1),
                       nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(64 * 4 * 4, feature_dim)
        self.heads = nn.ModuleDict({name: nn.Linear(feature_dim, len(values))
                                    for name, values in HEADS.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, FEATURE_DIM) of images (B, 3, 32, 32)."""
        blur = nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        x = torch.cat([x, DETAIL_GAIN * (x - blur)], dim=1)
        return torch.relu(self.fc(self.body(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Logits of every head."""
        f = self.features(x)
        return {name: head(f) for name, head in self.heads.items()}


def to_tensor(images) -> torch.Tensor:
    """Images as the network's input, quantised to 8 bits as a saved PNG.

    Args:
        images: Anything ``judge.to_uint8_images`` accepts (uint8 HxWx3
            arrays, float tensors in [-1, 1], ...), 32x32.

    Returns:
        Float tensor (B, 3, 32, 32) in [-1, 1].
    """
    arrays = np.stack(to_uint8_images(images))
    x = torch.from_numpy(arrays).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1


def labels_of(attributes: Sequence[Dict]) -> Dict[str, torch.Tensor]:
    """Class indices of every head for a list of scene attributes."""
    return {name: torch.tensor([values.index(a[name]) for a in attributes])
            for name, values in HEADS.items()}


def render_scenes(n: int, seed: int, start: int = 0):
    """``n`` scenes of ``seed`` rendered at 32 px.

    Returns:
        ``(images (n, 3, 32, 32) in [-1, 1], attributes list)``.
    """
    scenes = [make_scene(seed, i) for i in range(start, start + n)]
    attributes = [s['attributes'] for s in scenes]
    images = [render(a, IMAGE_SIZE) for a in attributes]
    return to_tensor(images), attributes


def _jitter_limit(size: str) -> float:
    """The largest jitter of a shape of ``size`` (as ``make_scene``)."""
    return min(MAX_JITTER, 0.25 - HALF_EXTENT[size] - MARGIN)


def render_for_captions(captions: Sequence[str], per_caption: int,
                        seed: int) -> tuple:
    """Real images of given captions: each caption's attributes with the
    texture, jitter and texture seed of fresh scenes of ``seed``.

    Returns:
        ``(images (len(captions) * per_caption, 3, 32, 32), attributes)``,
        caption-major.
    """
    attributes, index = [], 0
    for caption in captions:
        wanted = parse_caption(caption)
        for _ in range(per_caption):
            a = dict(make_scene(seed, index)['attributes'])
            # The jitter is uniform within a bound that depends on the
            # size: rescale it to the caption's size's bound.
            ratio = _jitter_limit(wanted['size']) / _jitter_limit(a['size'])
            a.update(wanted, jitter=[v * ratio for v in a['jitter']])
            attributes.append(a)
            index += 1
    images = [render(a, IMAGE_SIZE) for a in attributes]
    return to_tensor(images), attributes


def train_evaluator(n_train: int = 20000, steps: int = 3000,
                    batch: int = 128, lr: float = 2e-3, seed: int = 0,
                    log: Optional[Callable[[str], None]] = print
                    ) -> ShapesEvaluator:
    """Train the evaluator on clean rendered scenes of ``TRAIN_SEED``.

    Args:
        n_train: Number of training scenes.
        steps: Optimiser steps (AdamW, cosine-annealed learning rate).
        batch: Images per step.
        lr: Peak learning rate.
        seed: Torch seed (initialisation, batches).
        log: Called with a progress line every 250 steps (None: silent).

    Returns:
        The trained network, in eval mode.
    """
    torch.manual_seed(seed)
    images, attributes = render_scenes(n_train, TRAIN_SEED)
    targets = labels_of(attributes)
    net = ShapesEvaluator()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    start = time.time()
    for step in range(steps):
        idx = torch.randint(0, n_train, (batch,))
        logits = net(images[idx])
        loss = sum(nn.functional.cross_entropy(logits[k], targets[k][idx]) *
                   (TEXTURE_WEIGHT if k == 'texture' else 1.0)
                   for k in HEADS)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and (step + 1) % 250 == 0:
            log(f'step {step + 1}/{steps} loss {loss.item():.4f} '
                f'{time.time() - start:.0f} s')
    return net.eval()


def save_evaluator(net: ShapesEvaluator, path: str = DEFAULT_PATH,
                   metadata: Optional[Dict] = None) -> None:
    """Write the weights as float16 safetensors (``metadata``: JSON-able
    notes, e.g. the held-out accuracy, stored under ``'notes'``)."""
    from safetensors.torch import save_file
    state = {k: v.detach().to(torch.float16).contiguous()
             for k, v in net.state_dict().items()}
    meta = {'heads': json.dumps(HEADS), 'feature_dim': str(FEATURE_DIM)}
    if metadata:
        meta['notes'] = json.dumps(metadata)
    from ..files import atomic_write
    with atomic_write(path) as tmp:  # whole or not at all
        save_file(state, tmp, metadata=meta)


def load_evaluator(path: str = DEFAULT_PATH) -> ShapesEvaluator:
    """The evaluator with the weights of ``path`` (float32, eval mode)."""
    from safetensors.torch import load_file

    from ..api import CHECKSUMS
    from ..files import verify_sha256
    verify_sha256(path, CHECKSUMS)  # the shipped file: its recorded hash
    state = {k: v.float() for k, v in load_file(path).items()}
    net = ShapesEvaluator()
    net.load_state_dict(state)  # strict: the keys must be the evaluator's
    return net.eval()


@torch.no_grad()
def predict(net: ShapesEvaluator, images, batch: int = 256) -> Dict:
    """Features, class probabilities and labels of images.

    Args:
        net: The evaluator.
        images: Anything ``to_tensor`` accepts.
        batch: Images per forward pass.

    Returns:
        Dict with ``features`` (numpy (N, FEATURE_DIM)), ``probs``
        (``{head: numpy (N, classes)}``) and ``labels`` (``{head: list of
        class names}``).
    """
    x = to_tensor(images)
    feats, probs = [], {k: [] for k in HEADS}
    for i in range(0, len(x), batch):
        f = net.features(x[i:i + batch])
        feats.append(f)
        for k, head in net.heads.items():
            probs[k].append(torch.softmax(head(f), dim=1))
    probs = {k: torch.cat(v).numpy() for k, v in probs.items()}
    labels = {k: [HEADS[k][j] for j in p.argmax(axis=1)]
              for k, p in probs.items()}
    return {'features': torch.cat(feats).numpy(), 'probs': probs,
            'labels': labels}


def caption_scores(prediction: Dict, captions: Sequence[str]) -> Dict:
    """How well predictions match captions.

    Args:
        prediction: The output of :func:`predict` for one image per caption.
        captions: The captions (parsed with ``parse_caption``).

    Returns:
        Dict with ``match`` (per image, the mean probability the heads give
        to the caption's stated attributes: the CLIP-score analogue, in
        [0, 1]), ``accuracy`` (``{key: fraction right}`` over the captioned
        keys, and ``all``: every stated attribute right).
    """
    match, right = [], {k: [] for k in CAPTION_KEYS}
    every = []
    for i, caption in enumerate(captions):
        wanted = parse_caption(caption)
        probs, ok = [], True
        for k in CAPTION_KEYS:
            if wanted[k] is None:
                continue
            p = prediction['probs'][k][i]
            probs.append(float(p[HEADS[k].index(wanted[k])]))
            right[k].append(prediction['labels'][k][i] == wanted[k])
            ok = ok and right[k][-1]
        match.append(float(np.mean(probs)) if probs else 0.0)
        every.append(ok)
    accuracy = {k: float(np.mean(v)) for k, v in right.items() if v}
    accuracy['all'] = float(np.mean(every))
    return {'match': np.array(match), 'accuracy': accuracy}


def attribute_accuracy(prediction: Dict,
                       attributes: Sequence[Dict]) -> Dict[str, float]:
    """Accuracy of every head (and ``all`` five captioned ones) against the
    true attributes of real scenes."""
    acc = {k: float(np.mean([p == a[k] for p, a in
                             zip(prediction['labels'][k], attributes)]))
           for k in HEADS}
    acc['all'] = float(np.mean([
        all(prediction['labels'][k][i] == a[k] for k in CAPTION_KEYS)
        for i, a in enumerate(attributes)]))
    return acc


def background_grain(images, captions: Sequence[str],
                     margin: int = 2) -> np.ndarray:
    """Pixel std (8-bit levels) of each image's flat background.

    The region is the quadrant diagonally opposite the caption's position
    (no shape there), less ``margin`` pixels on each side; the std is taken
    per channel over its pixels and averaged over channels. Real scenes
    give 0 for a plain background and about 7 for the noise and stripes
    textures (less where black or white clips them).

    Args:
        images: Anything ``judge.to_uint8_images`` accepts.
        captions: One caption per image.

    Returns:
        (N,) stds.
    """
    out = []
    for image, caption in zip(to_uint8_images(images), captions):
        h = image.shape[0] // 2
        vertical, horizontal = parse_caption(caption)['position'].split()
        top = 0 if vertical == 'bottom' else h
        left = 0 if horizontal == 'right' else h
        block = image[top + margin:top + h - margin,
                      left + margin:left + h - margin].astype(np.float64)
        out.append(float(block.reshape(-1, 3).std(axis=0).mean()))
    return np.array(out)


def jitter_offsets(judged: Sequence[Dict]) -> np.ndarray:
    """Offsets of judged shapes from their quadrant's centre.

    The judge's centroid (``features['centroid']``) less the centre of the
    quadrant it falls in; for a triangle the centroid lies a sixth of the
    bounding box below the box's centre, which is taken off. Images without
    a shape are skipped.

    Args:
        judged: Results of ``judge.judge_image``.

    Returns:
        (M, 2) offsets ``(dx, dy)`` in fractions of the image side.
    """
    from .scenes import quadrant_centre
    out = []
    for j in judged:
        if j['position'] is None:
            continue
        cx, cy = j['features']['centroid']
        qx, qy = quadrant_centre(j['position'])
        if j['shape'] == 'triangle':
            cy -= j['features']['extent'] / 6
        out.append((cx - qx, cy - qy))
    return np.array(out).reshape(-1, 2)


def score_samples(net: ShapesEvaluator, samples, captions: Sequence[str],
                  reference: Dict, k: int = 3) -> Dict:
    """Every trade-off measure of one set of images against a real set.

    Args:
        net: The evaluator.
        samples: Float tensor (N, 3, 32, 32) in [-1, 1] (or uint8 images).
        captions: One caption per sample.
        reference: :func:`predict`'s output on the real reference images.
        k: The neighbour of precision/recall's manifolds.

    Returns:
        Dict: ``judge_all`` (the pixel judge's all-five accuracy),
        ``eval_all`` (the evaluator's), ``match`` (mean caption match),
        ``fd``, ``precision``, ``recall``, ``texture_mix`` (shares of plain/
        noise/stripes as text), ``texture_overlap`` and ``texture_entropy``
        (against the reference's predicted textures), ``jitter_rms``
        (pixels, from the judge's centroids) and ``grain`` (mean
        :func:`background_grain`, 8-bit levels).
    """
    from ..evaluation import shapes_metrics as sm
    from .judge import judge_image
    images = to_uint8_images(samples)
    pred = predict(net, images)
    caption = caption_scores(pred, captions)
    judged = [judge_image(im) for im in images]
    judge_all = np.mean([all(j[key] == parse_caption(c)[key]
                             for key in CAPTION_KEYS)
                         for j, c in zip(judged, captions)])
    mix = sm.mix_stats(pred['labels']['texture'],
                       reference['labels']['texture'], TEXTURES)
    jitter = jitter_offsets(judged) * images[0].shape[0]
    return dict(
        judge_all=float(judge_all), eval_all=caption['accuracy']['all'],
        match=float(caption['match'].mean()),
        fd=sm.frechet_distance(reference['features'], pred['features']),
        **sm.precision_recall(reference['features'], pred['features'], k),
        texture_mix='/'.join(f'{mix["shares"][t]:.2f}' for t in TEXTURES),
        texture_overlap=mix['overlap'], texture_entropy=mix['entropy'],
        jitter_rms=(float(np.sqrt((jitter**2).sum(axis=1).mean()))
                    if len(jitter) else float('nan')),  # no shape found
        grain=float(background_grain(images, captions).mean()))
