"""Datasets: labelled images of named classes plus prompt templates, and readers for on-disk layouts."""

from driftless.data.cifar import cifar100
from driftless.data.dataset import DEFAULT_TEMPLATES, Dataset, Split
from driftless.data.folder import image_folder, read_class_folders
from driftless.data.images import ArrayImages, FileImages, ImageSource, load_image
from driftless.data.registry import DATASET_FACTORIES, build_dataset
from driftless.data.toy import toy_shapes

__all__ = [
    "DATASET_FACTORIES",
    "DEFAULT_TEMPLATES",
    "ArrayImages",
    "Dataset",
    "FileImages",
    "ImageSource",
    "Split",
    "build_dataset",
    "cifar100",
    "image_folder",
    "load_image",
    "read_class_folders",
    "toy_shapes",
]
