"""GLIDE datasets, registered in mmagic's ``DATASETS``."""
from .captioned_image_dataset import CaptionedImageDataset

__all__ = ['CaptionedImageDataset']
