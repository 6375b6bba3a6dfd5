"""Experiments a paper can use: method variants, seeds that vary the benchmark, seed sweeps sharing
the feature store, resume from the saved configuration, a log that reads well in a file, the logits
contract, and a command line that starts without importing torch."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from driftless.benchmarks.orders import seeded_permutation
from driftless.benchmarks.registry import load_benchmark
from driftless.cli import main, parse_seeds
from driftless.config import build_run_config, label_file_stem, parse_method_label
from driftless.engine import run
from driftless.engine.progress import ProgressLines
from driftless.errors import ConfigError, MethodContractError
from driftless.methods.registry import variant_values

ROOT = Path(__file__).resolve().parents[1]
WRONG_LOGITS = Path(__file__).parent / "plugins" / "wrong_logits.py"
TASK_LINE = re.compile(r"^(\S+)  task (\d+)/(\d+)  acc \d+\.\d  \d+\.\d s$")


def _toy_args(out: Path, cache_dir: Path, *extra: str) -> list[str]:
    return ["run", "--benchmark", "toy-cil", "--backbone", "tiny-random", "--out", str(out),
            "--cache-dir", str(cache_dir), "--threads", "1", *extra]  # fmt: skip


# --- method variants ------------------------------------------------------------------------------


def test_variant_values_are_parsed_by_the_fields_type():
    variant = parse_method_label("calfuse[calibration=off, fusion=none,steps=5,batch_size=null]")
    assert variant.name == "calfuse" and variant.label.startswith("calfuse[")
    assert variant_values(variant) == {
        "calibration": "off",  # a Literal keeps the word, though YAML would read it as False
        "fusion": "none",
        "steps": 5,
        "batch_size": None,
    }
    # a path named "yes" stays a path, not YAML's True
    assert str(variant_values(parse_method_label("moder[hub_path=yes]"))["hub_path"]) == "yes"
    assert variant_values(parse_method_label("lda[shrinkage=0.5]")) == {"shrinkage": 0.5}
    assert parse_method_label("ncm").overrides == ()
    assert label_file_stem("calfuse[fusion=none]") == "calfuse[fusion=none]"
    assert "/" not in label_file_stem("moder[hub_path=a/b]")
    assert label_file_stem("moder[hub_path=a/b]") != label_file_stem("moder[hub_path=a_b]")


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("calfuse[nope=1]", "no field 'nope'"),
        ("calfuse[steps=many]", "steps='many'"),
        ("calfuse[fusion=bogus]", "fusion='bogus'"),
        ("calfuse[steps=0]", "steps='0'"),
        ("calfuse[steps]", "not field=value"),
        ("calfuse[steps=1", "NAME[field=value"),
    ],
)
def test_a_bad_variant_exits_2_naming_the_field(tmp_path, capsys, label, message):
    assert main(["run", "--method", label, "--out", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_variants_run_beside_their_method_under_their_label(tmp_path, cache_dir):
    labels = ["ncm", "ncm[unseen=text]", "lda", "lda[shrinkage=0.01,covariance=pooled]"]
    assert main(_toy_args(tmp_path / "run", cache_dir, *(f"--method={m}" for m in labels))) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert list(results["methods"]) == labels
    variant = results["methods"]["lda[shrinkage=0.01,covariance=pooled]"]
    assert variant["method"] == "lda"
    assert variant["overrides"] == {"shrinkage": 0.01, "covariance": "pooled"}
    assert variant["config"]["shrinkage"] == 0.01 and variant["config"]["covariance"] == "pooled"
    assert results["methods"]["lda"]["config"]["shrinkage"] == 1.0
    matrices = {m: np.array(results["methods"][m]["accuracy_matrix"]["values"]) for m in labels}
    # a variant that changes nothing equals its method (same seeds); one that changes the head not
    np.testing.assert_array_equal(matrices["ncm[unseen=text]"], matrices["ncm"])
    assert not np.array_equal(matrices["lda[shrinkage=0.01,covariance=pooled]"], matrices["lda"])
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:3]] == ["ncm", "ncm[unseen=text]"]
    assert rows[4].startswith('"lda[shrinkage=0.01,covariance=pooled]",')
    for label in labels:
        assert (tmp_path / "run" / f"matrix-{label}.png").is_file()
        assert (tmp_path / "run" / "checkpoints" / f"{label}.pt").is_file()


# --- seeds ----------------------------------------------------------------------------------------


def test_parse_seeds():
    assert parse_seeds("11,12,13") == [11, 12, 13]
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0-2, 7") == [0, 1, 2, 7]
    for bad in ("a", "3-1", "1,1", "-1", "0-"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_embedded_benchmarks_follow_the_run_seed_and_real_orders_stay_fixed(tmp_path):
    zero, one = load_benchmark("toy-cil", tmp_path), load_benchmark("toy-cil", tmp_path, run_seed=1)
    # PILOT-style: run seed s orders classes as numpy's permutation with seed 1993 + s
    assert list(zero.all_class_ids()) == seeded_permutation(1993, 12)
    assert list(one.all_class_ids()) == seeded_permutation(1994, 12)
    pixels = [next(iter(b.datasets.values())).split("train").image(0) for b in (zero, one)]
    assert np.asarray(pixels[0]).tobytes() != np.asarray(pixels[1]).tobytes()
    assert zero.seed_varies == ("class order", "images")
    # a benchmark whose spec fixes its order keeps it under every seed, unless asked (@run-seed)
    spec = tmp_path / "fixed.yaml"
    spec.write_text("name: fixed\nprotocol: class-incremental\nincrement: 3\norder: seed:5\n"
                    "datasets: [{type: toy-shapes, params: {num_classes: 6, train_per_class: 2, "
                    "test_per_class: 1, image_size: 8}}]\n")  # fmt: skip
    fixed = [load_benchmark(str(spec), tmp_path, run_seed=s) for s in (0, 1)]
    assert fixed[0].all_class_ids() == fixed[1].all_class_ids() and fixed[0].seed_varies == ()
    asked = load_benchmark(f"{spec}@run-seed", tmp_path, run_seed=2)
    assert list(asked.all_class_ids()) == seeded_permutation(1995, 6)
    assert asked.seed_varies == ("class order",)


def test_a_seed_sweep_shares_the_store_and_resumes_with_no_flags(
    tmp_path, cache_dir, encode_counter, capsys
):
    # images fixed, order from the run seed: the second seed must encode nothing
    spec = tmp_path / "bench.yaml"
    spec.write_text("name: bench\nprotocol: class-incremental\nincrement: 2\norder: run-seed\n"
                    "datasets: [{type: toy-shapes, params: {num_classes: 6, train_per_class: 6, "
                    "test_per_class: 3}}]\n")  # fmt: skip
    out = tmp_path / "sweep"
    args = ["run", "--benchmark", str(spec), "--backbone", "tiny-random", "--method", "ncm",
            "--method", "zero-shot", "--seeds", "3,5", "--out", str(out), "--cache-dir",
            str(cache_dir), "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    assert encode_counter["images"] == 6 * 9  # each image once, for both seeds
    first = {s: json.loads((out / f"seed-{s}" / "results.json").read_text()) for s in (3, 5)}
    assert [first[s]["seed"] for s in (3, 5)] == [3, 5]
    orders = [first[s]["benchmark"]["tasks"][0]["classes"] for s in (3, 5)]
    assert orders[0] != orders[1]
    capsys.readouterr()
    # a killed sweep: seed 5 never finished; resume it with no other flag
    for path in (out / "seed-5").iterdir():
        if path.name != "config.yaml":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert main(["run", "--out", str(out), "--resume", "--cache-dir", str(cache_dir)]) == 0
    again = json.loads((out / "seed-5" / "results.json").read_text())
    assert (
        again["methods"]["ncm"]["accuracy_matrix"] == first[5]["methods"]["ncm"]["accuracy_matrix"]
    )
    assert encode_counter["images"] == 6 * 9
    # a flag that changes the result is refused, naming the field
    capsys.readouterr()
    assert main(["run", "--out", str(out), "--resume", "--method", "ncm"]) == 2
    assert "methods" in capsys.readouterr().err


# --- resume ---------------------------------------------------------------------------------------


def test_resume_with_no_flags_uses_the_saved_configuration(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    assert main(_toy_args(out, cache_dir, "--method", "ncm", "--method", "lda", "--seed", "4",
                          "--no-eval-future", "--set", "ncm.unseen=text")) == 0  # fmt: skip
    # the log of a run whose output is not a terminal: plain lines; a quick method writes one
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "\r" not in text and "\x1b" not in text
    task_lines = [line for line in captured.out.splitlines() if TASK_LINE.match(line)]
    assert [TASK_LINE.match(line).groups() for line in task_lines] == [
        ("ncm", "5", "5"),
        ("lda", "5", "5"),
    ]
    assert len(text.splitlines()) < 20
    before = json.loads((out / "results.json").read_text())
    (out / "results.json").unlink()
    assert main(["run", "--out", str(out), "--resume", "--cache-dir", str(cache_dir)]) == 0
    after = json.loads((out / "results.json").read_text())
    assert after["seed"] == 4 and after["config"]["eval_future"] is False
    assert after["methods"]["ncm"]["accuracy_matrix"] == before["methods"]["ncm"]["accuracy_matrix"]
    capsys.readouterr()
    # the same value again is fine; a different one is refused with the field named
    assert main(["run", "--out", str(out), "--resume", "--seed", "4", "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["run", "--out", str(out), "--resume", "--seed", "5"]) == 2
    assert "seed: 4 → 5" in capsys.readouterr().err


# --- logs -----------------------------------------------------------------------------------------


def test_every_task_line_with_no_interval(tmp_path, cache_dir):
    import io

    stream = io.StringIO()
    config = build_run_config({"benchmark": "toy-cil", "backbone": "tiny-random", "methods": ["ncm"],
                               "out": tmp_path / "r", "cache_dir": cache_dir})  # fmt: skip
    outcome = run(config, progress=ProgressLines(stream, every_task=True))
    lines = stream.getvalue().splitlines()
    task_lines = [line for line in lines if TASK_LINE.match(line)]
    assert [TASK_LINE.match(line).group(2) for line in task_lines] == ["1", "2", "3", "4", "5"]
    assert all(line.startswith("features  ") for line in lines if line not in task_lines)
    # the accuracy shown is the test-sample-weighted accuracy on the classes learned so far
    matrix, counts = outcome.methods["ncm"].matrix, [len(e.samples.indices) for e in outcome.benchmark.eval_splits]  # fmt: skip
    last = np.average(matrix[5], weights=counts)
    assert task_lines[-1].split("acc ")[1].startswith(f"{last:.1f}")


# --- the method contract --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("one-short", r"one-short: logits returned shape \(\d+, 11\).* expected .*\(\d+, 12\)"),
        ("nan-scores", "nan-scores: logits returned .* non-finite"),
    ],
)
def test_logits_of_the_wrong_shape_or_not_finite_fail_naming_the_method(
    tmp_path, cache_dir, capsys, method, message
):
    code = main(
        _toy_args(tmp_path / "r", cache_dir, "--import", str(WRONG_LOGITS), "--method", method)
    )
    assert code == 2
    assert re.search(message, capsys.readouterr().err)


def test_the_engine_checks_logits_for_any_caller(tmp_path, cache_dir):
    from driftless.cli import import_plugin

    import_plugin(str(WRONG_LOGITS))
    with pytest.raises(
        MethodContractError, match=r"one-short\[unseen=text\]: logits returned shape"
    ):
        run(build_run_config({"benchmark": "toy-cil", "backbone": "tiny-random",
                              "methods": ["one-short[unseen=text]"], "out": tmp_path / "api",
                              "cache_dir": cache_dir}), progress=False)  # fmt: skip


def test_list_methods_with_a_users_module(capsys):
    assert main(["list", "methods", "--import", str(WRONG_LOGITS)]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "one-short" in names and "nan-scores" in names and "calfuse" in names


# --- fast start -----------------------------------------------------------------------------------


def test_the_catalog_lists_what_the_registry_registers():
    from driftless.methods.catalog import builtin_method_entries, entry_of
    from driftless.methods.registry import available_methods

    classes = available_methods()  # the built-ins, and any test plugin imported before
    builtin = {n: entry_of(c) for n, c in classes.items() if c.__module__.startswith("driftless.")}
    assert {e.name: e for e in builtin_method_entries()} == builtin


def test_help_and_list_do_not_import_torch():
    code = (
        "import sys; from driftless.cli import main\n"
        "for what in ('methods', 'benchmarks', 'backbones'): assert main(['list', what]) == 0\n"
        "heavy = [m for m in ('torch', 'transformers', 'lightning') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "calfuse" in done.stdout and "world-cil" in done.stdout


# --- the README's examples ------------------------------------------------------------------------


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def _cheap(argv: list[str], cache_dir: Path) -> list[str]:
    """A README command made cheap: toy benchmarks, the tiny random backbone, few training steps."""
    if argv[0] != "run":
        return argv
    argv = [{"world-cil": "toy-cil", "world-mtil": "toy-mtil"}.get(a, a) for a in argv]
    extra = ["--cache-dir", str(cache_dir), "--threads", "1"]
    if "--resume" not in argv:
        if "--benchmark" not in argv and "--config" not in argv:
            extra += ["--benchmark", "toy-cil"]
        if "--backbone" not in argv:
            extra += ["--backbone", "tiny-random"]
        if "--method" not in argv and "--config" not in argv:
            extra += ["--method", "zero-shot", "--method", "ncm"]
        extra += ["--set", "calfuse.steps=2", "--set", "calfuse.calibration_steps=2",
                  "--set", "moder.epochs=1"]  # fmt: skip
    argv = ["0-1" if a == "0-4" else a for a in argv]  # two seeds show a sweep as well as five
    return argv + extra


def test_every_readme_example_runs(tmp_path, cache_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/data: an empty data root
    Path("my-run.yaml").write_text(
        "benchmark: toy-cil\nbackbone: tiny-random\nmethods: [calfuse]\n"
    )
    commands = _readme_commands()
    assert any("--seeds" in c for c in commands) and any("[" in c for c in commands)
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "driftless", command
        code = main(_cheap(argv[1:], cache_dir))
        err = capsys.readouterr().err
        if "--data-root" in argv:  # real weights and data: a clear error without them
            assert code == 2 and "cifar" in err.lower(), (command, err)
        else:
            assert code == 0, (command, err)
