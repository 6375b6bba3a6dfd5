"""A run directory is never clobbered, a failing invocation leaves it as it was, and a killed run
resumes to the same numbers (docs/reliability.md, drills 1-3)."""

from __future__ import annotations

import random

import pytest
from filelock import FileLock

from conftest import RUN_ARGS, assert_one_clear_line, copy_run, results_without_timings
from driftless.engine import runner
from driftless.engine.checkpoint import load_checkpoint


def _snapshot(out):
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_rerun_without_resume_is_refused_and_the_run_is_untouched(toy_run, tmp_path, cli):
    out, cache = copy_run(toy_run, tmp_path)
    before = _snapshot(out)
    result = cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache)
    assert result.code == 2
    assert_one_clear_line(result.err, str(out), "--resume", "--overwrite")
    assert _snapshot(out) == before
    assert load_checkpoint(out / "checkpoints" / "ncm.pt")["tasks_done"] == 5


def test_a_typo_before_a_resume_leaves_the_run_resumable(toy_run, tmp_path, cli):
    out, cache = copy_run(toy_run, tmp_path)
    config = (out / "config.yaml").read_bytes()
    (out / "results.json").unlink()  # as if killed before the report
    for typo in (["--set", "ncm.unseen=maybe"], ["--method", "nmc"], ["--set", "colour=red"]):
        result = cli("run", *RUN_ARGS, *typo, "--out", out, "--cache-dir", cache, "--resume")
        assert result.code == 2, typo
        assert (out / "config.yaml").read_bytes() == config
    assert cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache, "--resume").code == 0
    assert results_without_timings(out) == results_without_timings(toy_run[0])


def test_an_invocation_that_fails_validation_writes_no_config(tmp_path, cli):
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: bad\nprotocol: class-incremental\nincrement: 2\n"
        "datasets: [{type: toy-shapes, params: {num_classes: twelve}}]\n"
    )
    for i, bad in enumerate(
        (["--benchmark", spec], ["--backbone", tmp_path / "no-model"], ["--set", "ncm.unseen=x"])
    ):
        out = tmp_path / f"run{i}"
        args = [*RUN_ARGS, "--out", out, "--cache-dir", tmp_path / "cache"]
        result = cli("run", *args, *bad)
        assert result.code == 2, result.err
        assert not (out / "config.yaml").exists(), bad


def test_overwrite_discards_the_previous_run(toy_run, tmp_path, cli):
    out, cache = copy_run(toy_run, tmp_path)
    (out / "checkpoints" / "lwf.pt").write_bytes(b"a method of the previous run")
    assert cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache, "--overwrite").code == 0
    assert not (out / "checkpoints" / "lwf.pt").exists()
    assert results_without_timings(out) == results_without_timings(toy_run[0])


def test_a_run_directory_in_use_is_refused(toy_run, tmp_path, cli):
    out, cache = copy_run(toy_run, tmp_path)
    with FileLock(out / ".lock"):  # another process runs in it
        result = cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache, "--resume")
    assert result.code == 2
    assert_one_clear_line(result.err, "in use by another driftless process")


def test_killed_writers_temporary_files_are_removed_on_resume(toy_run, tmp_path, cli):
    out, cache = copy_run(toy_run, tmp_path)
    debris = [out / "checkpoints" / ".ncm.pt.k1ll3d.tmp", out / ".results.json.k1ll3d.tmp"]
    for path in debris:
        path.write_bytes(b"half a file")
    assert cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache, "--resume").code == 0
    assert not any(path.exists() for path in debris)


class Killed(BaseException):
    """What SIGKILL does to the task loop: it stops, with no handler run."""


@pytest.mark.parametrize("seed", [0, 1])
def test_killed_at_a_random_point_then_resumed_equals_uninterrupted(
    toy_run, tmp_path, cli, monkeypatch, seed
):
    """Killed after a random number of checkpoints, either before or while writing the next one
    (a half-written temporary file left behind), then resumed: the results are those of the
    uninterrupted run, cell for cell."""
    rng = random.Random(seed)
    kill_at, while_writing = rng.randrange(1, 6), rng.random() < 0.5
    out, cache = tmp_path / "run", toy_run[1]
    real_save = runner.save_checkpoint
    saves = []

    def dying_save(path, state):
        saves.append(state["tasks_done"])
        if len(saves) == kill_at + 1:
            if while_writing:
                (path.parent / f".{path.name}.dying.tmp").write_bytes(b"PK\x03\x04 half")
            raise Killed
        real_save(path, state)

    monkeypatch.setattr(runner, "save_checkpoint", dying_save)
    with pytest.raises(Killed):
        cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache)
    monkeypatch.setattr(runner, "save_checkpoint", real_save)
    assert load_checkpoint(out / "checkpoints" / "ncm.pt")["tasks_done"] == kill_at - 1
    assert cli("run", *RUN_ARGS, "--out", out, "--cache-dir", cache, "--resume").code == 0
    assert results_without_timings(out) == results_without_timings(toy_run[0])
    assert not list((out / "checkpoints").glob(".*.tmp"))
