"""GLIDE evaluation metrics, registered in mmagic's ``METRICS``."""
from .glide_sample_metric import GlideSampleMetric, frechet_distance

__all__ = ['GlideSampleMetric', 'frechet_distance']
