"""Datasets: labelled images of named classes plus prompt templates, and readers for on-disk layouts."""

from driftless.data.aircraft import fgvc_aircraft
from driftless.data.caltech import caltech101
from driftless.data.cars import stanford_cars
from driftless.data.catalog import DatasetInfo, catalog, dataset_info
from driftless.data.cifar import cifar100
from driftless.data.core50 import core50
from driftless.data.cub import cub200
from driftless.data.dataset import DEFAULT_TEMPLATES, Dataset, Split
from driftless.data.domainnet import domainnet
from driftless.data.dtd import dtd
from driftless.data.eurosat import eurosat
from driftless.data.flowers import flowers102
from driftless.data.folder import image_folder, read_class_folders
from driftless.data.food import food101
from driftless.data.imagenet import imagenet100, imagenet_a, imagenet_r
from driftless.data.images import (
    ArrayImages,
    FileImages,
    GrayArrayImages,
    ImageSource,
    load_image,
)
from driftless.data.miniimagenet import miniimagenet
from driftless.data.mnist import mnist
from driftless.data.ondisk import DatasetMissing
from driftless.data.pets import oxford_pet
from driftless.data.registry import DATASET_FACTORIES, build_dataset
from driftless.data.splits import random_split_indices
from driftless.data.sun397 import sun397
from driftless.data.tinyimagenet import tinyimagenet
from driftless.data.toy import toy_shapes

__all__ = [
    "DATASET_FACTORIES",
    "DEFAULT_TEMPLATES",
    "ArrayImages",
    "Dataset",
    "DatasetInfo",
    "DatasetMissing",
    "FileImages",
    "GrayArrayImages",
    "ImageSource",
    "Split",
    "build_dataset",
    "caltech101",
    "catalog",
    "cifar100",
    "core50",
    "cub200",
    "dataset_info",
    "domainnet",
    "dtd",
    "eurosat",
    "fgvc_aircraft",
    "flowers102",
    "food101",
    "image_folder",
    "imagenet100",
    "imagenet_a",
    "imagenet_r",
    "load_image",
    "miniimagenet",
    "mnist",
    "oxford_pet",
    "random_split_indices",
    "read_class_folders",
    "stanford_cars",
    "sun397",
    "tinyimagenet",
    "toy_shapes",
]
