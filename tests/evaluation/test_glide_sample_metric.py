"""GlideSampleMetric: sanity, diversity, fidelity and FID."""
import numpy as np
import pytest
import torch

from projects.glide.evaluation import GlideSampleMetric, frechet_distance


def results(fakes, gts=None):
    return [dict(fake=f, gt=None if gts is None else gts[i], prompt='p')
            for i, f in enumerate(fakes)]


def test_diversity_and_distance_to_dataset():
    metric = GlideSampleMetric()
    same = [torch.full((3, 4, 4), 100.0)] * 3
    out = metric.compute_metrics(results(same, same))
    assert out['diversity'] == 0 and out['rms_to_gt'] == 0
    assert out['finite'] == 1 and out['num_samples'] == 3
    varied = [torch.zeros(3, 4, 4), torch.full((3, 4, 4), 255.0)]
    out = metric.compute_metrics(results(varied))
    assert out['diversity'] == pytest.approx(1.0)


def test_nan_samples_are_counted():
    bad = torch.zeros(3, 4, 4)
    bad[0, 0, 0] = float('nan')
    out = GlideSampleMetric().compute_metrics(
        results([bad, torch.zeros(3, 4, 4)]))
    assert out['finite'] == 0.5


def test_fid_needs_a_local_inception_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing is downloaded'):
        GlideSampleMetric(inception_path=str(tmp_path / 'inception.pt'))


class _FakeInception(torch.nn.Module):
    """Stands in for the TorchScript Inception: uint8 images -> features."""

    def forward(self, x: torch.Tensor, return_features: bool = False):
        x = x.float() / 255
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def test_fid_with_a_local_inception(tmp_path):
    path = str(tmp_path / 'inception.pt')
    torch.jit.script(_FakeInception()).save(path)
    metric = GlideSampleMetric(inception_path=path)
    gen = torch.Generator().manual_seed(0)
    real = [torch.rand(3, 8, 8, generator=gen) * 255 for _ in range(16)]
    same = metric.compute_metrics(results(real, real))
    other = [r * 0.3 for r in real]
    far = metric.compute_metrics(results(other, real))
    assert abs(same['fid']) < 1e-6 and far['fid'] > 0.01


def test_frechet_distance_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 2))
    assert frechet_distance(a, a + [3, 0]) == pytest.approx(9, rel=0.02)
