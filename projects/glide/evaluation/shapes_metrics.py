"""Distribution metrics for generated images, in a feature space.

* :func:`frechet_distance`: the Fréchet distance between Gaussians fitted
  to two feature sets (FID's formula, here on any features);
* :func:`precision_recall`: improved precision and recall (Kynkäänniemi et
  al. 2019): each set's manifold is the union of balls around its points
  reaching their k-th nearest neighbour; precision is the fraction of
  generated points inside the real manifold, recall the fraction of real
  points inside the generated one;
* :func:`mix_stats`: how far a categorical mix (e.g. the textures a caption
  leaves free) is from a reference mix: the shares, their entropy and the
  overlap ``sum(min(p, q))`` (1 - total variation distance).

All functions take numpy arrays (or anything ``numpy.asarray`` accepts) and
work in float64.
"""
from typing import Dict, Sequence

import numpy as np


def _moments(features) -> tuple:
    """Mean and (unbiased) covariance of a (N, D) feature set."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f'expected (N >= 2, D) features, got {x.shape}')
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``, the
    symmetric form of FID's trace term (no complex square roots).

    Args:
        a: (N, D) features.
        b: (M, D) features.

    Returns:
        The distance (>= 0; about 0 for identical sets, up to rounding).
    """
    mu_a, cov_a = _moments(a)
    mu_b, cov_b = _moments(b)
    root_a = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(root_a @ cov_b @ root_a)
    value = (((mu_a - mu_b)**2).sum() + np.trace(cov_a) + np.trace(cov_b)
             - 2 * np.trace(cross))
    return float(max(value, 0.0))


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) Euclidean distances between the rows of a and b."""
    d2 = ((a[:, None, :] - b[None, :, :])**2).sum(axis=-1)
    return np.sqrt(d2)


def knn_radii(features, k: int = 3) -> np.ndarray:
    """Distance from each point to its k-th nearest other point.

    Args:
        features: (N, D) features, N > k.
        k: The neighbour.

    Returns:
        (N,) radii.
    """
    x = np.asarray(features, np.float64)
    if len(x) <= k:
        raise ValueError(f'need more than k={k} points, got {len(x)}')
    d = _pairwise_distances(x, x)
    # Column 0 of the sorted rows is the point itself (distance 0).
    return np.sort(d, axis=1)[:, k]


def manifold_fraction(points, manifold, k: int = 3) -> float:
    """Fraction of ``points`` inside the k-NN manifold of ``manifold``.

    A point is inside when it lies within the k-NN radius of at least one
    manifold point.

    Args:
        points: (N, D) features.
        manifold: (M, D) features, M > k.
        k: The neighbour that sets each ball's radius.

    Returns:
        The fraction, in [0, 1].
    """
    p = np.asarray(points, np.float64)
    m = np.asarray(manifold, np.float64)
    radii = knn_radii(m, k)
    inside = (_pairwise_distances(p, m) <= radii[None, :]).any(axis=1)
    return float(inside.mean())


def precision_recall(real, fake, k: int = 3) -> Dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Args:
        real: (N, D) features of real images.
        fake: (M, D) features of generated images.
        k: The neighbour that sets the manifolds' radii.

    Returns:
        ``{'precision': fake inside the real manifold, 'recall': real
        inside the fake manifold}``.
    """
    return {'precision': manifold_fraction(fake, real, k),
            'recall': manifold_fraction(real, fake, k)}


def entropy(shares: Sequence[float]) -> float:
    """Shannon entropy in bits of a distribution (zero shares skipped)."""
    p = np.asarray(shares, np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) + 0.0  # never -0.0


def mix_stats(labels: Sequence, reference: Sequence,
              classes: Sequence) -> Dict:
    """A categorical mix against a reference mix.

    Args:
        labels: The labels of the samples (e.g. predicted textures).
        reference: The labels of reference (real) images.
        classes: All the classes, in the order of the returned shares.

    Returns:
        Dict with ``shares`` and ``reference_shares`` (``{class: share}``),
        ``entropy`` and ``reference_entropy`` (bits; log2 of the number of
        classes at most), and ``overlap``: ``sum(min(p, q))`` over classes,
        1 for the reference's mix, 0 for disjoint ones (1 - total
        variation distance).
    """
    def shares(values):
        values = list(values)
        if not values:
            raise ValueError('no labels')
        return np.array([values.count(c) / len(values) for c in classes])

    p, q = shares(labels), shares(reference)
    return {'shares': dict(zip(classes, p.tolist())),
            'reference_shares': dict(zip(classes, q.tolist())),
            'entropy': entropy(p), 'reference_entropy': entropy(q),
            'overlap': float(np.minimum(p, q).sum())}
