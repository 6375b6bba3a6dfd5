"""Damaged files are refused with the way back, never read into wrong numbers: checkpoints,
feature-store entries and chunks (docs/reliability.md, drill 4)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import numpy as np
import pytest
import torch

from conftest import RUN_ARGS, assert_one_clear_line, copy_run, results_without_timings
from driftless.data import ArrayImages, Split, toy_shapes
from driftless.errors import DataError
from driftless.features import FeatureStore
from driftless.integrity import content_digest


def _flip_tensor_bytes(path, count=40):
    """Flip ``count`` bytes inside the largest tensor of a torch checkpoint: the file still loads."""
    with zipfile.ZipFile(path) as archive:
        info = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
    data = bytearray(path.read_bytes())
    name_length, extra_length = np.frombuffer(data, "<u2", 2, info.header_offset + 26)
    start = info.header_offset + 30 + int(name_length) + int(extra_length)
    for i in range(count):
        data[start + (i * 7919) % info.file_size] ^= 0xFF
    path.write_bytes(bytes(data))


def test_content_digest_survives_a_round_trip_and_sees_one_changed_value():
    state = {
        "w": torch.arange(6.0).reshape(2, 3),
        "n": 3,
        "x": [0.1, None, "a"],
        "b": torch.tensor([True]),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    assert content_digest(loaded) == content_digest(state)
    changed = {**state, "w": state["w"].clone()}
    changed["w"][1, 2] = float(np.nextafter(np.float32(5.0), np.float32(6.0)))  # one ulp
    assert content_digest(changed) != content_digest(state)
    assert content_digest({**state, "n": 4}) != content_digest(state)
    assert content_digest({**state, "w": state["w"].reshape(3, 2)}) != content_digest(state)


def test_flipped_bytes_in_a_checkpoint_are_refused_and_the_previous_one_resumes(
    toy_run, tmp_path, cli
):
    out, cache = copy_run(toy_run, tmp_path)
    (out / "results.json").unlink()
    checkpoint, previous = out / "checkpoints" / "ncm.pt", out / "checkpoints" / "ncm.prev.pt"
    _flip_tensor_bytes(checkpoint)
    torch.load(checkpoint, weights_only=True)  # still a loadable file: only the hash can tell
    damaged = checkpoint.read_bytes()
    result = cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache, "--resume")
    assert result.code == 2
    assert_one_clear_line(
        result.err, str(checkpoint), "content hash", f"mv {previous} {checkpoint}"
    )
    assert checkpoint.read_bytes() == damaged and previous.is_file()  # nothing deleted
    shutil.move(previous, checkpoint)  # the advice: resume from the task before
    assert cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache, "--resume").code == 0
    assert results_without_timings(out) == results_without_timings(toy_run[0])


def test_a_truncated_checkpoint_gives_the_reason(toy_run, tmp_path, cli):
    out, cache = copy_run(toy_run, tmp_path)
    checkpoint = out / "checkpoints" / "ncm.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:3000])
    (out / "checkpoints" / "ncm.prev.pt").unlink()
    result = cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache, "--resume")
    assert result.code == 2
    assert_one_clear_line(result.err, str(checkpoint), "cannot be read (", f"delete {checkpoint}")
    assert "()" not in result.err


def test_flipped_bytes_in_a_feature_entry_are_refused(toy_run, tmp_path, cli):
    _, cache = copy_run(toy_run, tmp_path)
    entry = next((cache / "features").glob("*/features.npy"))
    data = bytearray(entry.read_bytes())
    for i in range(50):
        data[200 + i * 31] ^= 0x40
    entry.write_bytes(bytes(data))
    result = cli("run", *RUN_ARGS, "--out", tmp_path / "again", "--cache-dir", cache)
    assert result.code == 2
    assert_one_clear_line(result.err, str(entry.parent), "sha256", f"rm -r {entry.parent}")
    assert entry.read_bytes() == bytes(data)


@pytest.fixture
def split():
    return toy_shapes(num_classes=4, train_per_class=6, test_per_class=2).split("train")


def _damage_features_truncated(entry):
    path = entry / "features.npy"
    path.write_bytes(path.read_bytes()[:-100])


def _damage_meta_broken(entry):
    (entry / "meta.json").write_text('{"format": 2, "shape": [24')


def _damage_features_missing(entry):
    (entry / "features.npy").unlink()


def _damage_meta_shape(entry):
    meta = json.loads((entry / "meta.json").read_text())
    meta["shape"] = [23, meta["shape"][1]]
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage",
    [_damage_features_truncated, _damage_meta_broken, _damage_features_missing, _damage_meta_shape],
)
def test_every_damaged_entry_file_names_the_entry_to_delete(tmp_path, tiny_backbone, split, damage):
    FeatureStore(tmp_path, progress=False).get(tiny_backbone, split)
    entry = FeatureStore(tmp_path).path(tiny_backbone, split)
    damage(entry)
    with pytest.raises(DataError) as info:
        FeatureStore(tmp_path, progress=False).get(tiny_backbone, split)
    message = str(info.value)
    assert f"feature store entry {entry} is damaged (" in message and f"rm -r {entry}" in message
    shutil.rmtree(entry)  # the advice works: the entry is extracted again
    assert FeatureStore(tmp_path, progress=False).get(tiny_backbone, split).shape[0] == len(split)


class _FailingImages(ArrayImages):
    def image(self, index):
        if index == 20:
            raise KeyboardInterrupt  # killed during the last chunk
        return super().image(index)


def test_a_damaged_chunk_of_an_unfinished_extraction_is_refused(tmp_path, tiny_backbone, split):
    store = FeatureStore(tmp_path, chunk_size=8, batch_size=4, progress=False)
    with pytest.raises(KeyboardInterrupt):
        store.get(tiny_backbone, Split(_FailingImages(split.images.pixels), split.labels))
    chunk = sorted(tmp_path.glob("*.partial/chunk_*.npy"))[1]
    data = bytearray(chunk.read_bytes())
    data[-5] ^= 0x01
    chunk.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"chunk {chunk} is damaged .*`rm {chunk}`"):
        FeatureStore(tmp_path, chunk_size=8, progress=False).get(tiny_backbone, split)
    chunk.unlink()
    features = FeatureStore(tmp_path, chunk_size=8, progress=False).get(tiny_backbone, split)
    assert features.shape[0] == len(split)


def test_store_files_honour_the_umask(tmp_path, tiny_backbone, split):
    import os
    import stat

    old = os.umask(0o002)  # a team's shared cache: group-writable
    try:
        FeatureStore(tmp_path / "store", progress=False).get(tiny_backbone, split)
    finally:
        os.umask(old)
    entry = next(p for p in (tmp_path / "store").iterdir() if p.is_dir())
    assert stat.S_IMODE(entry.stat().st_mode) == 0o775
    for name in ("features.npy", "meta.json"):
        assert stat.S_IMODE((entry / name).stat().st_mode) == 0o664


def test_a_damaged_moder_hub_file_is_refused(tmp_path):
    from driftless.errors import ConfigError
    from driftless.methods.parts.expert_hub import ExpertHub, load_hub, save_hub

    hub = ExpertHub(backbone="abc")
    g = torch.Generator().manual_seed(0)
    hub.add([0, 1], ["a", "b"], ["toy", "toy"], [("a {}.",)] * 2, torch.randn(2, 8, generator=g),
            torch.randn(2, 3, 5, generator=g), torch.randn(2, 8, generator=g),
            torch.randn(2, 8, generator=g))  # fmt: skip
    save_hub(hub, tmp_path / "hub.pt")
    assert len(load_hub(tmp_path / "hub.pt")) == 2
    _flip_tensor_bytes(tmp_path / "hub.pt", count=4)
    with pytest.raises(ConfigError, match="content hash differs"):
        load_hub(tmp_path / "hub.pt")
