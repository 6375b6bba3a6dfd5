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
    assert results["methods"]["ncm"]["config"] == {"unseen": "text", "mixing": "raw"}
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


def test_set_parses_a_method_field_by_its_type(tmp_path):
    from driftless.cli import _run_config_data, build_parser

    def method_config(*sets: str) -> dict:
        words = ["run", "--method", "moder", "--method", "ncm"]
        for item in sets:
            words += ["--set", item]
        return build_run_config(_run_config_data(build_parser().parse_args(words))).method_config

    hub = tmp_path / "hub.pt"
    assert method_config(f"moder.hub_path={hub}") == {"moder": {"hub_path": str(hub)}}
    # a path is taken as it is: YAML would read "yes" as True and "1e-3" as a string
    assert method_config("moder.hub_path=yes")["moder"]["hub_path"] == "yes"
    assert method_config("moder.lr=1e-3")["moder"]["lr"] == 0.001
    # the last --set of a field wins
    assert (
        method_config("moder.hub_path=a.pt", "moder.hub_path=b.pt")["moder"]["hub_path"] == "b.pt"
    )
    # a value the field refuses is still reported by validation, naming the field
    with pytest.raises(ConfigError, match=r"ncm\.unseen"):
        method_config("ncm.unseen=maybe")
