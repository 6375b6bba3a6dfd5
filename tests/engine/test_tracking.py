"""Training curves and per-task metrics through Lightning's loggers."""

from __future__ import annotations

import csv
import sys

import pytest
import torch

from driftless.config import build_run_config
from driftless.engine import run
from driftless.engine.tracking import MethodTracker, check_logger_available, task_metrics
from driftless.errors import ConfigError
from driftless.report import build_results


class RecordingLogger:
    def __init__(self):
        self.calls, self.saves = [], 0

    def log_metrics(self, metrics, step):
        self.calls.append((step, dict(metrics)))

    def save(self):
        self.saves += 1

    def finalize(self, status):
        pass


def test_task_metrics_of_a_row():
    row = [80.0, 60.0, 30.0, float("nan")]
    # two tasks learned, weighted by counts: (80·1 + 60·3) / 4 = 65; unseen has a NaN cell: left out
    out = task_metrics(row, 2, ["a", "b", "c", "d"], [1, 3, 5, 5])
    assert out == {"seen": 65.0, "acc/a": 80.0, "acc/b": 60.0, "acc/c": 30.0}
    before = task_metrics([10.0, 20.0], 0, ["a", "b"])
    assert before == {"unseen": 15.0, "acc/a": 10.0, "acc/b": 20.0}


def test_tracker_buffers_steps_then_writes_and_summarizes():
    logger = RecordingLogger()
    tracker = MethodTracker("m", [logger])
    tracker.end_task(0, {"unseen": 10.0})
    for value in (3.0, 2.0, 1.0):
        tracker.log({"loss": torch.tensor(value)})
    assert logger.calls == [(0, {"task/unseen": 10.0})]  # nothing written mid-task
    tracker.end_task(1, {"seen": 50.0})
    tracker.log({"other": 7.0})
    tracker.end_task(2, {"seen": 40.0})
    assert logger.calls[1:] == [
        (0, {"train/loss": 3.0}), (1, {"train/loss": 2.0}), (2, {"train/loss": 1.0}),
        (1, {"task/seen": 50.0}), (3, {"train/other": 7.0}), (2, {"task/seen": 40.0}),
    ]  # fmt: skip
    assert logger.saves == 3
    summary = tracker.loss_summary(3)
    assert summary["loss"] == {"steps": [3, 0, 0], "first": [3.0, None, None],
                               "last": [1.0, None, None], "mean": [2.0, None, None]}  # fmt: skip
    assert summary["other"]["steps"] == [0, 1, 0] and summary["other"]["mean"] == [None, 7.0, None]
    again = MethodTracker("m")
    again.load_state_dict(tracker.state_dict())
    again.log({"loss": 5.0})
    again.end_task(3, {})
    assert again.step == 5 and again.loss_summary(3)["loss"]["steps"] == [3, 0, 1]


def test_resume_keeps_the_csv_rows_the_checkpoint_covers(tmp_path):
    from driftless.engine.tracking import _previous_csv_rows

    path = tmp_path / "metrics.csv"
    path.write_text(
        "step,task/seen,train/loss\n0,,2.5\n1,,2.0\n1,50.0,\n2,,1.5\n3,,1.2\n2,45.0,\n4,,9.9\n"
    )
    # the checkpoint holds 2 tasks and 4 steps: step 4 and anything later belong to task 3
    rows = _previous_csv_rows(path, steps_done=4, tasks_done=2)
    assert [(r["step"], sorted(k for k in r if k != "step")) for r in rows] == [
        (0, ["train/loss"]), (1, ["train/loss"]), (1, ["task/seen"]),
        (2, ["train/loss"]), (3, ["train/loss"]), (2, ["task/seen"]),
    ]  # fmt: skip
    assert _previous_csv_rows(path, steps_done=2, tasks_done=1)[-1] == {
        "task/seen": 50.0,
        "step": 1,
    }


def test_optional_loggers_name_their_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (
            None if name in {"wandb", "tensorboard", "tensorboardX"} else real(name, *a)
        ),
    )
    with pytest.raises(ConfigError, match="pip install wandb"):
        check_logger_available("wandb")
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        check_logger_available("tensorboard")
    check_logger_available("csv")


def _csv_rows(path):
    with path.open(newline="") as fh:
        return sorted(
            tuple(sorted((k, v) for k, v in row.items() if v != "")) for row in csv.DictReader(fh)
        )


def test_run_logs_losses_and_task_metrics_and_resume_keeps_them(tmp_path, cache_dir):
    config = build_run_config({
        "benchmark": "toy-cil", "backbone": "tiny-random", "methods": ["ncm", "linear-probe"],
        "out": tmp_path / "run", "cache_dir": cache_dir, "threads": 1,
        "method_config": {"linear-probe": {"epochs": 2}},
    })  # fmt: skip
    results = build_results(run(config, progress=False))
    assert "wandb" not in sys.modules  # optional loggers are imported only when asked for
    log = tmp_path / "run" / "logs" / "csv" / "linear-probe" / "metrics.csv"
    with log.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    losses = [float(r["train/loss"]) for r in rows if r["train/loss"]]
    training = results["methods"]["linear-probe"]["training"]["loss"]
    assert len(losses) == sum(training["steps"]) > 0
    assert [int(r["step"]) for r in rows if r["train/loss"]] == list(range(len(losses)))
    first_task = losses[: training["steps"][0]]
    assert training["mean"][0] == pytest.approx(sum(first_task) / len(first_task))
    assert training["last"][-1] == pytest.approx(losses[-1])
    seen = {int(r["step"]): float(r["task/seen"]) for r in rows if r["task/seen"]}
    assert sorted(seen) == [1, 2, 3, 4, 5]  # after each task; step 0 (before training) has none
    assert seen[5] == pytest.approx(results["methods"]["linear-probe"]["metrics"]["last"])
    assert results["methods"]["ncm"]["training"] == {}  # closed form: nothing to log
    before = _csv_rows(log)
    run(config, resume=True, progress=False)  # a finished run: every checkpoint is at the end
    assert _csv_rows(log) == before  # the history survives Lightning's CSVLogger restarting


def test_logger_flags_and_a_context_without_tracker():
    from types import SimpleNamespace

    from driftless.cli import _run_config_data, build_parser
    from driftless.methods.base import Context

    def loggers(*flags):
        args = build_parser().parse_args(["run", *flags])
        return build_run_config(_run_config_data(args)).loggers

    assert loggers() == ["csv"]
    assert loggers("--logger", "tensorboard", "--logger", "csv") == ["tensorboard", "csv"]
    assert loggers("--logger", "none") == []
    ctx = Context(None, SimpleNamespace(device="cpu"), torch.Generator(), lambda s: None)
    ctx.log_metrics({"loss": 1.0})  # outside a run: accepted, recorded nowhere
    tracker = MethodTracker("m")
    ctx.tracker = tracker
    ctx.log_metrics({"loss": 1.0})
    assert tracker.step == 1
