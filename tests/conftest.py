"""Shared fixtures. Tests never touch the network: HF_HUB_OFFLINE is set before anything imports
transformers, and every cache lives under pytest's tmp_path."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: a worker's torch and BLAS pools take one thread each,
    # or the workers' threads would spin-wait for each other's cores (several times slower)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private feature-store/cache root for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("DRIFTLESS_CACHE", str(path))
    return path


@pytest.fixture
def encode_counter(monkeypatch):
    """Counts the images every CLIPBackbone encodes during one test: ``calls["images"]``."""
    from driftless.backbones.clip import CLIPBackbone

    calls = {"images": 0}
    original = CLIPBackbone.encode_images

    def counting(self, pixels):
        calls["images"] += len(pixels)
        return original(self, pixels)

    monkeypatch.setattr(CLIPBackbone, "encode_images", counting)
    return calls


@pytest.fixture(scope="session")
def tiny_backbone():
    from driftless.backbones import tiny_random_clip

    return tiny_random_clip(seed=0)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The image methods' toy setup (tests/toy_tasks.py ``toy_image_setup``): toy-cil generated in
    a fresh directory, ``tiny_random_clip(seed=0)`` and a filled text cache; one per test module.
    A module may define its own ``toy`` (tests/engine/test_conformance.py does)."""
    from toy_tasks import toy_image_setup

    return toy_image_setup(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def world_cil_results(tmp_path_factory):
    """One engine run of the embedded default, world-cil with the shipped tiny CLIP, seed 0, for the
    methods whose criteria the tests check on it (zero-shot, NCM, fine-tuning, LwF, PMI): its
    results document (as saved in results.json) and its run directory. One torch thread (the image
    methods' small operations lose more to thread synchronization than they gain on a shared CPU).
    Under pytest-xdist the workers share one run: the first to need it makes it, under a file lock,
    in the session's common temporary directory; the others read its results.json."""
    from filelock import FileLock

    from driftless.config import build_run_config
    from driftless.engine import run
    from driftless.report import build_results, load_results, write_results

    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent  # this session's, shared by its workers
    else:
        root = tmp_path_factory.mktemp("shared")
    out = root / "world-cil"
    with FileLock(str(root / "world-cil.lock")):
        if not (out / "results.json").is_file():
            config = build_run_config({
                "benchmark": "world-cil", "backbone": "tiny-clip", "out": out, "threads": 1,
                "methods": ["zero-shot", "ncm", "finetune", "lwf", "pmi"],
                "cache_dir": root / "world-cil-cache",
            })  # fmt: skip
            write_results(build_results(run(config, progress=False)), out)
    return load_results(out / "results.json"), out


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``--dist loadgroup``): every test that uses the shared world-cil run goes
    to one worker, so the run is made once; the multi-process (DDP) tests share one worker too."""
    for item in items:
        if "world_cil_results" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("world-cil-run"))
        elif item.nodeid.startswith("tests/engine/test_distributed.py"):
            item.add_marker(pytest.mark.xdist_group("ddp"))
