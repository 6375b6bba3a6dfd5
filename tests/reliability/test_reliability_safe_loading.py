"""No file a user hands driftless can run code: CIFAR's pickles go through a restricted
unpickler, and no unrestricted pickle or torch.load exists in src/ (docs/reliability.md, drill 5)."""

from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import driftless
from conftest import assert_one_clear_line
from driftless.data.cifar import cifar100
from driftless.errors import DataError

SRC = Path(driftless.__file__).parent


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _cifar_layout(root: Path, meta: object) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        entry = {"data": np.zeros((4, 3072), np.uint8), "fine_labels": [0, 1, 0, 1]}
        (folder / split).write_bytes(pickle.dumps(entry, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def test_a_crafted_cifar_pickle_is_refused_and_runs_nothing(tmp_path, cli):
    marker = tmp_path / "pwned"
    root = tmp_path / "data"
    _cifar_layout(root, {"fine_label_names": ["a", "b"], "x": _RunsCode(marker)})
    with pytest.raises(DataError, match=r"meta: it names posix\.system"):
        cifar100(root)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: crafted\nprotocol: class-incremental\nincrement: 1\n"
        f"datasets: [{{type: cifar100, params: {{root: {root}}}}}]\n"
    )
    result = cli("run", "--benchmark", spec, "--backbone", "tiny-random", "--dry-run")
    assert result.code == 2
    assert_one_clear_line(result.err, "CIFAR-100 file is corrupt", "posix.system", "could run code")
    assert not marker.exists()


def test_the_real_cifar_format_still_loads(tmp_path):
    _cifar_layout(tmp_path, {"fine_label_names": ["apple", "aquarium_fish"]})
    dataset = cifar100(tmp_path)
    assert dataset.class_names == ("apple", "aquarium fish")
    assert len(dataset.split("train")) == 4


def _unsafe_loads(path: Path) -> list[str]:
    """Calls in ``path`` that can run code from a file: pickle.load(s), a bare pickle.Unpickler,
    torch.load without weights_only=True, np.load with allow_pickle=True."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if name in {"pickle.load", "pickle.loads", "pickle.Unpickler", "cPickle.load", "dill.load"}:
            found.append(f"{path.name}:{node.lineno} {name}")
        elif name.endswith("torch.load") or (name == "load" and "weights_only" in keywords):
            if keywords.get("weights_only") != "True":
                found.append(f"{path.name}:{node.lineno} {name} without weights_only=True")
        elif name in {"np.load", "numpy.load"} and keywords.get("allow_pickle") == "True":
            found.append(f"{path.name}:{node.lineno} {name}(allow_pickle=True)")
    return found


def test_no_unrestricted_unpickling_anywhere_in_src(tmp_path):
    sources = sorted(SRC.rglob("*.py"))
    assert len(sources) > 50
    unsafe = [hit for path in sources for hit in _unsafe_loads(path)]
    assert unsafe == []
    # the scan finds what it looks for
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import pickle, torch\npickle.load(f)\ntorch.load(p)\ntorch.load(p, weights_only=True)\n"
    )
    assert len(_unsafe_loads(probe)) == 2


def test_the_text_tower_mask_uses_no_transformers_internals():
    for path in sorted(SRC.rglob("*.py")):
        assert "masking_utils" not in path.read_text(), path
