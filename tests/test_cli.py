"""The ``driftless`` command: run, list, metrics; errors name what is wrong."""

from __future__ import annotations

import json

import pytest

from driftless.cli import main
from driftless.config import apply_overrides, build_run_config
from driftless.errors import ConfigError


def test_list_commands(capsys):
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    assert "zero-shot" in out and "ncm" in out and "features" in out
    assert main(["list", "benchmarks"]) == 0
    out = capsys.readouterr().out
    assert "toy-cil" in out and "class-incremental" in out and "toy-mtil" in out
    assert main(["list", "backbones"]) == 0
    assert "tiny-random" in capsys.readouterr().out


def test_run_then_metrics_recomputes_the_saved_numbers(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    code = main(["run", "--benchmark", "toy-cil", "--backbone", "tiny-random", "--method", "ncm", "--out", str(out),
                 "--cache-dir", str(cache_dir), "--no-progress", "--set", "ncm.unseen=text"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "| ncm" in printed and "Avg" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == "driftless.results/1"
    assert results["config"]["method_config"] == {"ncm": {"unseen": "text"}}
    assert results["methods"]["ncm"]["config"] == {"unseen": "text"}
    assert main(["metrics", str(out / "results.json")]) == 0
    table = capsys.readouterr().out
    last = results["methods"]["ncm"]["metrics"]["last"]
    assert f"{last:.2f}" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "ncm.unseen=maybe"], "ncm.unseen"),
        (["--set", "batch_size=0"], "batch_size"),
        (["--set", "colour=red"], "colour"),
        (["--method", "nope"], "unknown method 'nope'"),
        (["--benchmark", "nope"], "unknown benchmark 'nope'"),
        (["--backbone", "/definitely/not/here"], "/definitely/not/here"),
    ],
)
def test_bad_input_exits_2_and_names_the_field(tmp_path, cache_dir, capsys, args, message):
    code = main(
        ["run", "--out", str(tmp_path / "r"), "--cache-dir", str(cache_dir), "--no-progress", *args]
    )
    assert code == 2
    assert message in capsys.readouterr().err


def test_yaml_config_unknown_key_names_it(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("benchmark: toy-cil\nmethods: [ncm]\nlearning_rate: 3\n")
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "learning_rate" in capsys.readouterr().err


def test_overrides_precedence_and_types():
    data = apply_overrides({"seed": 1, "method_config": {"ncm": {"unseen": "text"}}},
                           ["seed=5", "ncm.unseen=error", "eval_future=false"])  # fmt: skip
    config = build_run_config(data)
    assert config.seed == 5 and config.eval_future is False
    assert config.method_config == {"ncm": {"unseen": "error"}}
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["seed"])
    with pytest.raises(ConfigError, match="repeat"):
        build_run_config({"methods": ["ncm", "ncm"]})


def test_resume_without_a_run_is_a_clear_error(tmp_path, capsys):
    code = main(["run", "--out", str(tmp_path / "empty"), "--resume", "--no-progress"])
    assert code == 2
    assert "config.yaml" in capsys.readouterr().err


def test_hub_flag_is_moders_hub_path(tmp_path, capsys):
    from driftless.cli import _run_config_data, build_parser

    hub = tmp_path / "hub.pt"
    args = build_parser().parse_args(["run", "--method", "moder", "--hub", str(hub)])
    config = build_run_config(_run_config_data(args))
    assert config.method_config == {"moder": {"hub_path": str(hub)}}
    # a --set of the same field comes later and wins, like every --set
    args = build_parser().parse_args(["run", "--method", "moder", "--hub", str(hub),
                                      "--set", "moder.hub_path=other.pt"])  # fmt: skip
    assert build_run_config(_run_config_data(args)).method_config["moder"]["hub_path"] == "other.pt"
    # the path is taken as it is, not read as YAML (a --set value "yes" would become True)
    args = build_parser().parse_args(["run", "--method", "moder", "--hub", "yes"])
    assert build_run_config(_run_config_data(args)).method_config["moder"]["hub_path"] == "yes"
    assert main(["run", "--method", "ncm", "--hub", str(hub), "--out", str(tmp_path / "r")]) == 2
    assert "--method moder" in capsys.readouterr().err
