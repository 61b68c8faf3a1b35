"""Image data sets as training and metrics read them (NVIDIA's dataset zips, zips and folders of
images), and the tool that makes them from photos."""
from .dataset import ImageDataset, open_dataset
from .make import DatasetSummary, make_dataset

__all__ = ["ImageDataset", "open_dataset", "make_dataset", "DatasetSummary"]
