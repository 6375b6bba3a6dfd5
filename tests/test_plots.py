"""Figures: PNG, PDF and SVG; titles with benchmark, backbone and seeds; seed bands; MTIL panels;
methods whose unseen score is 0 by design say so."""

from __future__ import annotations

import json

import numpy as np

from driftless.report.plots import _mean_std, plot_run, plot_seed_curves, unseen_zero_by_design
from fake_results import fake_results, matrix, write_seed_tree

MAGIC = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}


def _check_files(paths):
    for path in paths:
        assert path.read_bytes()[:5].startswith(MAGIC[path.suffix]), path


def test_run_figures_in_three_formats_with_titles_and_by_design_legend(tmp_path):
    rng = np.random.default_rng(1)
    results = fake_results(11, {"ncm": matrix(rng), "lda": matrix(rng)})
    results["methods"]["lda"]["config"] = {"unseen": "text", "mixing": "trained-first"}
    written = plot_run(results, tmp_path)
    assert sorted(p.name for p in written) == sorted(
        f"{stem}.{fmt}" for stem in ("curves", "matrix-ncm", "matrix-lda") for fmt in ("png", "pdf", "svg")
    )  # fmt: skip
    _check_files(written)
    svg = (tmp_path / "curves.svg").read_text()
    assert "world-cil · backbone tiny-clip · seed 11" in svg
    assert "lda (unseen: 0 by design)" in svg and "ncm (unseen" not in svg
    assert "seed 11" in (tmp_path / "matrix-lda.svg").read_text()


def test_unseen_zero_by_design_rule():
    assert unseen_zero_by_design("class-incremental", {"mixing": "trained-first"})
    assert not unseen_zero_by_design("class-incremental", {"mixing": "raw"})
    assert not unseen_zero_by_design("class-incremental", {"unseen": "text"})  # ncm
    # in MTIL a dataset not learned yet is scored over its own classes only: zero-shot, not 0
    assert not unseen_zero_by_design("multi-domain", {"mixing": "trained-first"})


def test_mean_and_sample_std_band():
    mean, std = _mean_std([[1.0, 2.0, np.nan], [3.0, 6.0, np.nan], [5.0, 4.0, np.nan]])
    np.testing.assert_allclose(mean[:2], [3.0, 4.0])
    np.testing.assert_allclose(std[:2], [2.0, 2.0])  # ddof = 1
    assert np.isnan(mean[2]) and np.isnan(std[2])
    single_mean, single_std = _mean_std([[1.0, 2.0]])
    assert single_std is None and single_mean.tolist() == [1.0, 2.0]


def test_seed_figures_and_mtil_panels(tmp_path):
    rng = np.random.default_rng(2)
    files = []
    for seed in (11, 12, 13):
        results = fake_results(seed, {"zero-shot": matrix(rng, 4), "lwf": matrix(rng, 4)},
                               benchmark="world-mtil", protocol="multi-domain")  # fmt: skip
        results["benchmark"]["columns"] = ["shapes", "digits", "textures", "counts"]
        path = tmp_path / f"seed-{seed}" / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps(results))
        files.append(path)
    written = plot_seed_curves(files, tmp_path / "figures", formats=["svg"])  # 3 formats: above
    assert sorted(p.name for p in written) == ["curves-world-mtil.svg", "datasets-world-mtil.svg"]
    _check_files(written)
    svg = (tmp_path / "figures" / "datasets-world-mtil.svg").read_text()
    assert "seeds 11, 12, 13 (mean ± std)" in svg
    for name in ("shapes", "digits", "textures", "counts"):
        assert f">{name}<" in svg or name in svg
    # a single run of a multi-domain benchmark gets its per-dataset panels too
    single = plot_run(json.loads(files[0].read_text()), tmp_path / "one", formats=["png"])
    assert sorted(p.name for p in single) == [
        "curves.png", "datasets.png", "matrix-lwf.png", "matrix-zero-shot.png",
    ]  # fmt: skip


def test_compare_plot_option(tmp_path, capsys):
    from driftless.cli import main

    write_seed_tree(tmp_path / "runs", seeds=(0, 1))
    args = ["compare", str(tmp_path / "runs"), "--plot", str(tmp_path / "fig"), "--figures", "svg"]
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == ["curves-world-cil.svg"]
    assert "figures:" in capsys.readouterr().err
