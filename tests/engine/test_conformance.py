"""The method-conformance suite: every registered method keeps the Method contract, and the suite
itself catches methods that do not (tests/plugins/conformance_plugins.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftless.cli import import_plugin, main
from driftless.engine.conformance import CHECKS, check_method, conformance_toy, failures
from driftless.engine.threads import torch_threads
from driftless.methods.registry import available_methods

PLUGINS = str(Path(__file__).parents[1] / "plugins" / "conformance_plugins.py")

# Settings that keep the slow methods to a few seconds on toy-cil; the contract does not depend on
# how long a method trains. (ranpac and acil get toy-cil's own settings from its spec.)
FAST = {
    "finetune": {"iterations": 3},
    "lwf": {"iterations": 3},
    "wise-ft": {"iterations": 3},
    "pmi": {"iterations": 3, "inversion_steps": 3, "synthetic_per_class": 1},
    "coop": {"epochs": 1},
    "moder": {"epochs": 1},
    "l2p": {"iterations": 2, "batch_size": 8},
    "dualprompt": {"iterations": 2, "batch_size": 8},
    "coda-prompt": {"iterations": 2, "batch_size": 8},
    "rapf": {"epochs": 2},
    "zscl": {"iterations": 3, "ensemble_every": 2},
    "moe-adapters": {"iterations": 3, "experts": 4, "ddas_iterations": 20},
}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    # the tiny models train faster on one thread than on two contended ones; restored after the
    # module instead of left set for every later test of the process
    with torch_threads(1):
        yield conformance_toy(tmp_path_factory.mktemp("conformance"))


@pytest.fixture(scope="module")
def plugins():
    import_plugin(PLUGINS)


@pytest.mark.parametrize("name", sorted(available_methods()))
def test_every_builtin_method_keeps_the_contract(name, toy, tmp_path):
    outcomes = check_method(name, FAST.get(name, {}), data_root=tmp_path, toy=toy)
    assert [o.check for o in outcomes] == list(CHECKS)
    assert not failures(outcomes), [(o.check, o.detail) for o in failures(outcomes)]


@pytest.mark.parametrize(
    ("name", "failed", "reason"),
    [
        ("wrong-shape-ncm", "scores before learning", r"shape \(24, 3\), expected .* \(24, 4\)"),
        ("forgetful-state-ncm", "state round trip", "after loading: logits over the seen classes differ"),
        ("unseeded-ncm", "deterministic", "two runs with seed 0 differ"),
        ("lax-config-ncm", "config rejects unknown fields", "accepted the unknown field"),
    ],
)  # fmt: skip
def test_the_suite_names_the_broken_check(name, failed, reason, plugins, toy, tmp_path):
    import re

    outcomes = {o.check: o for o in check_method(name, data_root=tmp_path, toy=toy)}
    assert not outcomes[failed].passed
    assert re.search(reason, outcomes[failed].detail), outcomes[failed].detail
    if name == "wrong-shape-ncm":  # learning itself scores, so everything after it fails too
        assert all(not outcomes[c].passed for c in CHECKS[1:])
    if name == "forgetful-state-ncm":
        assert not outcomes["resume after each task"].passed
        assert outcomes["deterministic"].passed


def test_check_method_command_fails_a_broken_method_and_passes_a_correct_one(plugins, capsys):
    assert main(["check-method", "wrong-shape-ncm", "--import", PLUGINS]) == 1
    out = capsys.readouterr().out
    assert "FAIL  scores before learning: logits over the" in out
    assert "PASS  config rejects unknown fields" in out
    assert main(["check-method", "careful-ncm", "--import", PLUGINS]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS  ") == len(CHECKS) and "every check passed" in out
