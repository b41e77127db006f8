"""Metrics of sampled images: sanity, diversity, fidelity, FID."""
import os
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric

from mmagic.registry import METRICS


def frechet_distance(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """FID between two sets of features (N, D): ``|mu1 - mu2|^2 +
    Tr(S1 + S2 - 2 (S1 S2)^(1/2))``."""
    from scipy import linalg
    mu1, mu2 = feats1.mean(0), feats2.mean(0)
    s1 = np.cov(feats1, rowvar=False)
    s2 = np.cov(feats2, rowvar=False)
    covmean, _ = linalg.sqrtm(np.atleast_2d(s1).dot(np.atleast_2d(s2)),
                              disp=False)
    if not np.isfinite(covmean).all():
        eps = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + eps).dot(s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2)**2).sum() + np.trace(s1) + np.trace(s2) -
                 2 * np.trace(covmean))


@METRICS.register_module()
class GlideSampleMetric(BaseMetric):
    """Metrics of ``Glide.predict`` outputs (``fake_img``, ``gt_img``,
    ``prompt``), none needing a download:

    * ``finite``: fraction of samples without NaN/Inf;
    * ``diversity``: mean pairwise RMS distance between samples (in [0, 1]
      pixel units; 0 when all are equal);
    * ``rms_to_gt``: mean RMS distance of each sample to its dataset image;
    * with ``judge='shapes'``: caption accuracy per attribute, read from the
      pixels of samples of the procedural shapes dataset;
    * with ``inception_path``: FID against the dataset images, using a
      TorchScript Inception you provide (e.g. StyleGAN's
      ``inception-2015-12-05.pt``, which takes uint8 images and
      ``return_features=True``); a missing file is a clear error.

    Args:
        judge (str, optional): ``'shapes'`` or None.
        inception_path (str, optional): Local TorchScript Inception file.
        prefix (str): Metric name prefix. Defaults to ``'glide'``.
    """

    default_prefix = 'glide'

    def __init__(self, judge: Optional[str] = None,
                 inception_path: Optional[str] = None,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if judge not in (None, 'shapes'):
            raise ValueError(f"judge must be None or 'shapes', got {judge!r}")
        self.judge = judge
        self.inception = None
        if inception_path is not None:
            if not os.path.isfile(inception_path):
                raise FileNotFoundError(
                    f'FID needs Inception weights, not found at '
                    f'{inception_path!r}: nothing is downloaded; download '
                    'the TorchScript Inception (inception-2015-12-05.pt) '
                    'elsewhere and give its local path')
            self.inception = torch.jit.load(inception_path, map_location='cpu')

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            fake = torch.as_tensor(ds['fake_img']).float().cpu()
            gt = ds.get('gt_img')
            self.results.append(
                dict(fake=fake, prompt=ds.get('prompt'),
                     gt=None if gt is None else torch.as_tensor(gt).float()))

    def _features(self, images: torch.Tensor) -> np.ndarray:
        x = images.clamp(0, 255)
        if x.shape[-1] != 299:
            x = F.interpolate(x, (299, 299), mode='bilinear',
                              align_corners=False)
        with torch.no_grad():
            feats = self.inception(x.round().to(torch.uint8),
                                   return_features=True)
        return feats.double().numpy()

    def compute_metrics(self, results: List[dict]) -> dict:
        fake = torch.stack([r['fake'] for r in results])  # (N, 3, H, W)
        finite = torch.isfinite(fake.flatten(1)).all(1)
        metrics = dict(num_samples=len(results),
                       finite=finite.float().mean().item())
        flat = (fake / 255).flatten(1)
        n = len(flat)
        if n > 1:
            dist = torch.cdist(flat, flat) / flat.shape[1]**0.5
            metrics['diversity'] = (dist.sum() / (n * (n - 1))).item()
        gts = [r['gt'] for r in results if r['gt'] is not None]
        if len(gts) == n:
            gt = torch.stack(gts)
            rms = ((fake - gt) / 255).pow(2).flatten(1).mean(1).sqrt()
            metrics['rms_to_gt'] = rms.mean().item()
        if self.judge == 'shapes':
            from projects.glide.shapes.judge import caption_accuracy
            images = (fake / 127.5 - 1).clamp(-1, 1)
            acc = caption_accuracy(images, [r['prompt'] for r in results])
            metrics.update({f'acc_{k}': v for k, v in acc.items()})
        if self.inception is not None:
            if len(gts) != n or n < 2:
                raise ValueError('FID needs the dataset images (gt_img) and '
                                 'at least 2 samples')
            metrics['fid'] = frechet_distance(
                self._features(fake), self._features(torch.stack(gts)))
        return metrics
