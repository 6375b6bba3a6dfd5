"""The feature store encodes each image once, resumes a killed extraction, never reads a partial entry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftless.backbones import tiny_random_clip
from driftless.data import ArrayImages, Split, toy_shapes
from driftless.features import FeatureStore


@pytest.fixture(scope="module")
def split():
    return toy_shapes(num_classes=4, train_per_class=10, test_per_class=5).split("train")


class CountingBackbone:
    """Wraps a backbone and counts the images it encodes."""

    def __init__(self, backbone):
        self._backbone = backbone
        self.encoded = 0

    def __getattr__(self, name):
        return getattr(self._backbone, name)

    def encode_images(self, pixels):
        self.encoded += len(pixels)
        return self._backbone.encode_images(pixels)


class FailingImages(ArrayImages):
    """Same pixels (so the same fingerprint) but reading image ``fail_at`` raises once."""

    def __init__(self, pixels, fail_at):
        super().__init__(pixels)
        self.fail_at = fail_at

    def image(self, index):
        if index == self.fail_at:
            raise RuntimeError("simulated crash")
        return super().image(index)


def _direct(backbone, split):
    pixels = backbone.preprocess.batch([split.image(i) for i in range(len(split))])
    with torch.inference_mode():
        return backbone.encode_images(pixels).numpy()


def test_extracts_once_and_reads_back_memory_mapped(tmp_path, tiny_backbone, split):
    backbone = CountingBackbone(tiny_backbone)
    store = FeatureStore(tmp_path, chunk_size=16, batch_size=8, progress=False)
    first = store.get(backbone, split)
    assert backbone.encoded == len(split) == 40
    again = FeatureStore(tmp_path, chunk_size=16, progress=False).get(backbone, split)
    assert backbone.encoded == 40  # nothing re-encoded by a second store on the same root
    assert isinstance(again, np.memmap)
    assert again.shape == (40, tiny_backbone.embed_dim) and again.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(again, _direct(tiny_backbone, split), rtol=1e-5, atol=1e-5)
    assert store.stats.entries_extracted == 1


def test_key_depends_on_backbone_and_images(tmp_path, tiny_backbone, split):
    other_backbone = tiny_random_clip(seed=1)
    other_split = toy_shapes(num_classes=4, train_per_class=10, seed=5).split("train")
    keys = {
        FeatureStore.key(tiny_backbone, split),
        FeatureStore.key(other_backbone, split),
        FeatureStore.key(tiny_backbone, other_split),
    }
    assert len(keys) == 3
    assert FeatureStore.key(tiny_backbone, split) == FeatureStore.key(
        tiny_random_clip(seed=0), split
    )


def test_killed_extraction_resumes_from_finished_chunks(tmp_path, tiny_backbone, split):
    pixels = split.images.pixels
    broken = Split(FailingImages(pixels, fail_at=35), split.labels)
    assert broken.fingerprint() == split.fingerprint()
    store = FeatureStore(tmp_path, chunk_size=16, batch_size=8, progress=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.get(CountingBackbone(tiny_backbone), broken)
    assert not store.has(tiny_backbone, split)  # no entry is visible after the crash
    partial = store.path(tiny_backbone, split).with_name(
        store.key(tiny_backbone, split) + ".partial"
    )
    # the chunks finished before the crash, named by their rows and their rows' sha256
    assert [p.name[:25] for p in sorted(partial.glob("chunk_*.npy"))] == [
        "chunk_000000000_000000016",
        "chunk_000000016_000000032",
    ]

    counting = CountingBackbone(tiny_backbone)
    features = store.get(counting, split)
    assert counting.encoded == 40 - 32  # only the unfinished third chunk
    np.testing.assert_allclose(features, _direct(tiny_backbone, split), rtol=1e-5, atol=1e-5)
    assert not partial.exists()


def test_half_written_files_are_never_read(tmp_path, tiny_backbone, split):
    store = FeatureStore(tmp_path, chunk_size=16, progress=False)
    entry = store.path(tiny_backbone, split)
    # debris: an entry folder without meta.json, a temp chunk, a staging folder
    entry.mkdir(parents=True)
    np.save(entry / "features.npy", np.zeros((3, 3), dtype=np.float32))
    partial = entry.with_name(entry.name + ".partial")
    partial.mkdir()
    (partial / ".chunk_000000.npy.abc.tmp").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / f".{entry.name}.xyz.tmp").mkdir()
    assert not store.has(tiny_backbone, split)
    counting = CountingBackbone(tiny_backbone)
    features = store.get(counting, split)
    assert counting.encoded == 40
    assert features.shape == (40, tiny_backbone.embed_dim)
    np.testing.assert_allclose(features, _direct(tiny_backbone, split), rtol=1e-5, atol=1e-5)
    # the killed writers' temporary files are gone, the finished entry is all that is left
    assert not list(tmp_path.glob(".*.tmp")) and not partial.exists()
    assert store.stats.stale_temp_files_removed == 2


class SlowBackbone(CountingBackbone):
    """Encodes slowly, so that a second extraction of the same entry starts while the first runs."""

    def encode_images(self, pixels):
        import time

        time.sleep(0.05)
        return super().encode_images(pixels)


def test_concurrent_extractions_of_one_entry_take_turns(tmp_path, tiny_backbone, split):
    """Two stores on one root want the same missing entry at once (two runs sharing a cache): the
    lock lets one extract while the other waits and then reads the finished entry — no crash, no
    second encoding, identical features."""
    import threading

    backbone = SlowBackbone(tiny_backbone)
    stores = [FeatureStore(tmp_path, chunk_size=8, batch_size=4, progress=False) for _ in range(2)]
    results, errors = [None, None], []

    def work(i: int) -> None:
        try:
            results[i] = np.array(stores[i].get(backbone, split))
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert backbone.encoded == len(split)  # encoded once, not twice
    np.testing.assert_array_equal(results[0], results[1])
    assert sorted(s.stats.entries_extracted for s in stores) == [0, 1]
    assert sorted(s.stats.entries_reused for s in stores) == [0, 1]
