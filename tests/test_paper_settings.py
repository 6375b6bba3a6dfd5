"""Whose settings a run uses: real benchmark specs carry the published ones, and a real benchmark
left with the tiny models' defaults gets one warning."""

from __future__ import annotations

import pytest

from driftless.benchmarks.registry import list_benchmarks, load_benchmark_spec
from driftless.benchmarks.settings import is_real_benchmark, tiny_settings_warning
from driftless.cli import main
from driftless.methods.registry import build_method


def test_real_and_embedded_benchmarks_are_told_apart() -> None:
    assert is_real_benchmark(load_benchmark_spec("cifar100-b0inc10"))
    assert is_real_benchmark(load_benchmark_spec("mtil-order2"))
    for name in ("world-cil", "world-mtil", "toy-cil", "toy-mtil"):
        assert not is_real_benchmark(load_benchmark_spec(name)), name


def test_the_warning_names_only_the_methods_left_with_tiny_defaults() -> None:
    cifar = load_benchmark_spec("cifar100-b0inc10")
    warning = tiny_settings_warning(cifar, ["ncm", "finetune", "ranpac"], {})
    assert warning is not None and warning.startswith("warning: cifar100-b0inc10")
    assert "finetune: lr, iterations" in warning and "ncm" not in warning
    given = {"finetune": {"lr": 1e-5, "iterations": 1000}}
    assert tiny_settings_warning(cifar, ["ncm", "finetune"], given) is None
    # the embedded benchmarks are what the defaults are for
    assert tiny_settings_warning(load_benchmark_spec("world-cil"), ["finetune"], {}) is None


@pytest.mark.parametrize("name", ["mtil-order1", "mtil-order2"])
def test_mtil_specs_carry_zscls_settings(name: str) -> None:
    spec = load_benchmark_spec(name)
    assert tiny_settings_warning(spec, ["finetune", "lwf", "wise-ft", "ncm"], {}) is None
    for method in ("finetune", "lwf", "wise-ft"):
        config = build_method(method, spec.method_config[method]).config
        assert (config.lr, config.iterations, config.batch_size) == (1e-5, 1000, 64)
        assert config.label_smoothing == 0.2
    assert build_method("wise-ft", spec.method_config["wise-ft"]).config.alpha == 0.8


def test_every_spec_method_config_is_valid() -> None:
    for spec in list_benchmarks().values():
        for method, values in spec.method_config.items():
            build_method(method, values)  # raises on an unknown field or a bad value


def test_dry_run_prints_the_warning_once(capsys, tmp_path) -> None:
    code = main(["run", "--benchmark", "cifar100-b0inc10", "--method", "finetune", "--method", "lwf",
                 "--data-root", str(tmp_path), "--dry-run"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2  # no CIFAR-100 under the empty data root
    assert err.count("warning: cifar100-b0inc10 is a real benchmark") == 1
