"""Distribution metrics on cases with known answers."""
import math

import numpy as np
import pytest

from projects.glide.evaluation.shapes_metrics import (entropy,
                                                      frechet_distance,
                                                      knn_radii,
                                                      manifold_fraction,
                                                      mix_stats,
                                                      precision_recall)


def gaussian(n, d=8, seed=0, shift=0.0, scale=1.0):
    return np.random.default_rng(seed).normal(shift, scale, (n, d))


def test_frechet_distance_of_a_set_to_itself_is_zero():
    a = gaussian(300)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_a_shift_adds_its_squared_length():
    """Same covariance, every one of 8 means moved by 1: exactly the
    squared mean distance, 8."""
    a = gaussian(300)
    assert frechet_distance(a, a + 1.0) == pytest.approx(8.0, rel=1e-6)


def test_frechet_distance_between_known_gaussians():
    """N(0, I) against N(0, 4 I) in 8 dimensions: per dimension
    1 + 4 - 2 * sqrt(1 * 4) = 1, so 8 in all (estimated from samples)."""
    a, b = gaussian(20000, seed=1), gaussian(20000, seed=2, scale=2.0)
    assert frechet_distance(a, b) == pytest.approx(8.0, abs=0.5)
    # two samples of one distribution are much closer
    assert frechet_distance(a, gaussian(20000, seed=3)) < 0.1


def test_frechet_distance_needs_two_points():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_precision_and_recall_of_identical_sets_are_one():
    a = gaussian(50)
    assert precision_recall(a, a.copy(), k=3) == {'precision': 1.0,
                                                  'recall': 1.0}


def test_a_set_covering_half_the_real_manifold():
    """Real points in two far-apart clusters, generated ones copies of one
    cluster: every generated point is real-like (precision 1) but half the
    real points are missed (recall 0.5)."""
    near, far = gaussian(40, seed=4), gaussian(40, seed=5, shift=100.0)
    real = np.concatenate([near, far])
    result = precision_recall(real, near.copy(), k=3)
    assert result == {'precision': 1.0, 'recall': 0.5}


def test_a_distant_set_has_no_precision_or_recall():
    real, fake = gaussian(30, seed=6), gaussian(30, seed=7, shift=50.0)
    assert precision_recall(real, fake, k=3) == {'precision': 0.0,
                                                 'recall': 0.0}


def test_knn_radii_and_manifold_membership():
    points = np.array([[0.0], [1.0], [3.0], [6.0]])
    # k = 1: the nearest other point
    assert knn_radii(points, k=1).tolist() == [1.0, 1.0, 2.0, 3.0]
    # 4.5 is within 3 of the point at 6; -2.5 is outside every ball
    assert manifold_fraction([[4.5], [-2.5]], points, k=1) == 0.5
    with pytest.raises(ValueError):
        knn_radii(points, k=4)


def test_mix_stats_of_a_known_mix():
    """Half plain, half noise against thirds: overlap 1/3 + 1/3, entropy
    1 bit against log2(3)."""
    classes = ('plain', 'noise', 'stripes')
    stats = mix_stats(['plain', 'noise'] * 5, list(classes) * 4, classes)
    assert stats['shares'] == {'plain': 0.5, 'noise': 0.5, 'stripes': 0.0}
    assert stats['overlap'] == pytest.approx(2 / 3)
    assert stats['entropy'] == pytest.approx(1.0)
    assert stats['reference_entropy'] == pytest.approx(math.log2(3))
    collapsed = mix_stats(['noise'] * 6, list(classes) * 4, classes)
    assert collapsed['entropy'] == 0.0
    assert collapsed['overlap'] == pytest.approx(1 / 3)


def test_entropy_skips_empty_classes():
    assert entropy([0.25, 0.25, 0.5, 0.0]) == pytest.approx(1.5)
