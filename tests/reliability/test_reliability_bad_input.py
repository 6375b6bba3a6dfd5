"""Every bad input and file-system failure ends in one line (what, where, what to do) and exit 2,
with the run's progress intact; -v adds the traceback (docs/reliability.md, drills 6-7)."""

from __future__ import annotations

import errno
import os
import shutil

import pytest
import torch

from conftest import RUN_ARGS, assert_one_clear_line, results_without_timings
from driftless import atomic
from driftless.backbones.registry import TINY_CLIP_DIR
from driftless.engine.checkpoint import load_checkpoint


class _FullDisk:
    """A file on a disk with ``room`` bytes left: writing past it fails with ENOSPC."""

    def __init__(self, fh, room: int):
        self.fh, self.room = fh, room

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if size > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= size
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.fh.close()


def _disk_fills_on(monkeypatch, matches, after_calls=0):
    """Writes of files whose path ``matches`` fail with ENOSPC once ``after_calls`` succeeded."""
    calls = []

    def open_temp(fd, path):
        fh = os.fdopen(fd, "wb")
        if not matches(path):
            return fh
        calls.append(path)
        return _FullDisk(fh, 10**12 if len(calls) <= after_calls else 100)

    monkeypatch.setattr(atomic, "_open_temp", open_temp)


def test_a_full_disk_while_checkpointing_is_one_line_and_the_run_resumes(
    toy_run, tmp_path, cli, monkeypatch
):
    out, cache = tmp_path / "run", toy_run[1]
    _disk_fills_on(monkeypatch, lambda path: path.name == "ncm.pt", after_calls=2)
    result = cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache)
    assert result.code == 2
    checkpoint = out / "checkpoints" / "ncm.pt"
    assert_one_clear_line(result.err, f"cannot write {checkpoint}", "No space left", "disk is full")
    assert load_checkpoint(checkpoint)["tasks_done"] == 1  # the last whole checkpoint
    assert not list(out.rglob("*.tmp"))
    monkeypatch.undo()
    assert cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache, "--resume").code == 0
    assert results_without_timings(out) == results_without_timings(toy_run[0])


def test_a_full_disk_while_extracting_names_the_chunk(tmp_path, cli, monkeypatch):
    _disk_fills_on(monkeypatch, lambda path: path.parent.name.endswith(".partial"))
    cache = tmp_path / "cache"
    result = cli("run", *RUN_ARGS, "--out", tmp_path / "run", "--cache-dir", cache)
    assert result.code == 2
    assert_one_clear_line(result.err, "cannot write", ".partial/chunk_", "--cache-dir elsewhere")


def _spec(tmp_path, params: str, dataset: str = "toy-shapes"):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"name: bad\nprotocol: class-incremental\nincrement: 2\n"
        f"datasets: [{{type: {dataset}, params: {params}}}]\n"
    )
    return spec


def _empty_class_folder(tmp_path):
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (tmp_path / "folders" / split / name).mkdir(parents=True)
        from PIL import Image

        Image.new("RGB", (8, 8)).save(tmp_path / "folders" / split / "cat" / "1.png")
    return _spec(tmp_path, f"{{root: {tmp_path / 'folders'}}}", "image-folder")


def _model_copy(tmp_path, damage):
    model = tmp_path / "model"
    shutil.copytree(TINY_CLIP_DIR, model)
    damage(model / "model.safetensors")
    return model


BAD_INPUTS = {
    "num_classes of the wrong type": (
        lambda t: ["--benchmark", _spec(t, "{num_classes: twelve}")],
        ["bad.datasets[0].params.num_classes", "'twelve'", "int"],
    ),
    "root of the wrong type": (
        lambda t: ["--benchmark", _spec(t, "{root: 5}", "image-folder")],
        ["bad.datasets[0].params.root", "5"],
    ),
    "no images per class": (
        lambda t: ["--benchmark", _spec(t, "{train_per_class: 0}")],
        ["train_per_class must be at least 1"],
    ),
    "an empty class folder": (
        lambda t: ["--benchmark", _empty_class_folder(t)],
        ["train/dog holds no images"],
    ),
    "--out under a regular file": (
        lambda t: (t / "file").write_text("x") and ["--out", t / "file" / "run"],
        ["file/run", "regular file"],
    ),
    "--out is a regular file": (
        lambda t: (t / "file").write_text("x") and ["--out", t / "file"],
        ["file", "regular file"],
    ),
    "a truncated model.safetensors": (
        lambda t: ["--backbone", _model_copy(t, lambda p: p.write_bytes(p.read_bytes()[:5000]))],
        ["weights file cannot be read", "SafetensorError", "truncated or corrupt"],
    ),
    "a corrupt model.safetensors header": (
        lambda t: ["--backbone", _model_copy(t, lambda p: p.write_bytes(b"\xff" * 64))],
        ["weights file cannot be read", "truncated or corrupt"],
    ),
    "a model directory without weights": (
        lambda t: ["--backbone", _model_copy(t, lambda p: p.unlink())],
        ["holds config.json but no weights (model.safetensors)"],
    ),
    "a model path that does not exist": (
        lambda t: ["--backbone", t / "models" / "clip"],
        ["models/clip does not exist"],
    ),
    "a Hub id not in the cache": (
        lambda t: ["--backbone", "driftless-tests/no-such-clip"],
        ["`hf download driftless-tests/no-such-clip`", "--download"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, cli):
    make_args, fragments = BAD_INPUTS[case]
    args = make_args(tmp_path)
    if "--out" not in args:
        args += ["--out", tmp_path / "run"]
    result = cli("run", *RUN_ARGS, "--cache-dir", tmp_path / "cache", *args)
    assert result.code == 2, result.err
    assert_one_clear_line(result.err, *fragments)
    assert "huggingface-cli" not in result.err
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_cuda_without_a_gpu(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = cli("run", *RUN_ARGS, "--accelerator", "cuda", "--out", tmp_path / "run")
    assert result.code == 2
    assert_one_clear_line(result.err, "--accelerator cuda", "no CUDA GPU", "--accelerator cpu")
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_verbose_adds_the_traceback(tmp_path, cli):
    (tmp_path / "file").write_text("x")
    args = ["run", *RUN_ARGS, "--out", tmp_path / "file"]
    quiet, verbose = cli(*args), cli(*args, "-v")
    assert quiet.code == verbose.code == 2
    assert "Traceback" not in quiet.err and "Traceback (most recent call last)" in verbose.err
    assert verbose.err.strip().splitlines()[-1] == quiet.err.strip().splitlines()[-1]
