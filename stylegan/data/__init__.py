"""Image data sets as training and metrics read them: NVIDIA's dataset zips, zips and folders of images."""
from .dataset import ImageDataset, open_dataset

__all__ = ["ImageDataset", "open_dataset"]
