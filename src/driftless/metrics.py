"""Every continual-learning metric, as pure functions of the accuracy matrix.

Notation (docs/metrics.md), here 0-based: ``acc[t][e]`` is top-1 accuracy in percent on evaluation split
e after learning task t (t = 0..T-1); rows are *after* training. Every function also accepts the
(T+1)×T matrix as results.json saves it (row 0 = before training, which no metric uses: it is
dropped). ``nan`` (or ``None``, as in results.json) marks a cell that was not evaluated.

Class-incremental (one dataset, class blocks; column k = block k's test images):

- cells k ≤ t predict over all classes seen so far; cells k > t ("future") predict over all N classes;
- ``acc_t`` = sample-weighted accuracy on all seen blocks = Σ_{k≤t} n_k A[t][k] / Σ_{k≤t} n_k
  (uniform weights when no counts are given);
- Avg = mean_t acc_t;  Last = acc_{T-1};
- Forgetting = 1/(T−1) Σ_{k<T−1} ( max_{t∈[k,T−2]} A[t][k] − A[T−1][k] );
- BWT = 1/(T−1) Σ_{k<T−1} ( A[T−1][k] − A[k][k] );
- FAA = (1/T) Σ_k A[T−1][k]  (task-averaged final accuracy, mammoth's number);
- CI-Transfer = mean_{t<T−1} [ mean_{k>t} A[t][k] ]  (needs the future cells).

Few-shot class-incremental (FSCIL; column k = session k's classes, k = 0 the base session; cells as
class-incremental):

- acc_t as above (accuracy on all seen classes after session t);  Avg = mean_t acc_t;  Last = acc_{T−1};
- PD (performance drop) = acc_0 − acc_{T−1};
- Base = A[T−1][0] (the base classes after the last session);  Novel = Σ_{k≥1} n_k A[T−1][k] / Σ_{k≥1} n_k;
- HM = harmonic mean of Base and Novel.

Domain-incremental (column d = test domain d, over all classes; each column may be the test set of a
task's domain, or a domain no task trains on):

- all_t = Σ_d n_d A[t][d] / Σ_d n_d  (accuracy on all test domains);  Avg = mean_t all_t;  Last = all_{T−1};
- Domain-Avg = mean_d A[T−1][d]  (final accuracy averaged over domains, unweighted);
- when every task has its own test column (DomainNet, not CORe50), with columns in task order:
  Forgetting and BWT as above, and Transfer = mean_{j≥1} [ mean_{i<j} A[i][j] ] (before a domain is
  learned, as MTIL's).

Multi-domain (MTIL; column j = dataset j, over its own classes):

- Transfer = mean_{j≥1} [ mean_{i<j} A[i][j] ];  Avg = mean_j mean_i A[i][j];  Last = mean_j A[T−1][j].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayLike = Sequence[Sequence[float]] | np.ndarray

METRIC_ORDER = (
    "avg", "last", "first", "pd", "base", "novel", "hm", "domain_avg",
    "forgetting", "bwt", "faa", "ci_transfer", "transfer",
)  # fmt: skip
"""Every metric's name, in the order tables and comparisons show them."""


def _square(acc: ArrayLike, what: str) -> np.ndarray:
    matrix = np.asarray(acc, dtype=np.float64)  # None (a results.json null) becomes NaN
    if matrix.ndim == 2 and matrix.shape[0] == matrix.shape[1] + 1 and matrix.shape[1] > 0:
        matrix = matrix[1:]  # a saved matrix: row 0, before training, is no metric's input
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(
            f"{what}: expected a non-empty T×T matrix (or the saved (T+1)×T one), "
            f"got shape {matrix.shape}"
        )
    return matrix


def _require(matrix: np.ndarray, mask: np.ndarray, what: str) -> None:
    missing = np.argwhere(mask & np.isnan(matrix))
    if len(missing):
        cells = ", ".join(f"[{t}][{k}]" for t, k in missing[:5])
        raise ValueError(f"{what}: needs cells that were not evaluated: {cells}")


def incremental_accuracies(acc: ArrayLike, counts: Sequence[float] | None = None) -> np.ndarray:
    """acc_t for every t: accuracy on all blocks seen so far, weighted by their sample counts."""
    matrix = _square(acc, "incremental_accuracies")
    T = len(matrix)
    _require(matrix, np.tril(np.ones((T, T), dtype=bool)), "incremental_accuracies")
    weights = np.ones(T) if counts is None else np.asarray(counts, dtype=np.float64)
    if weights.shape != (T,) or np.any(weights < 0):
        raise ValueError(f"counts: expected {T} non-negative numbers, got {weights}")
    return np.array(
        [np.dot(matrix[t, : t + 1], weights[: t + 1]) / weights[: t + 1].sum() for t in range(T)]
    )


def average_incremental_accuracy(acc: ArrayLike, counts: Sequence[float] | None = None) -> float:
    """Avg: the mean of acc_t over tasks."""
    return float(incremental_accuracies(acc, counts).mean())


def last_accuracy(acc: ArrayLike, counts: Sequence[float] | None = None) -> float:
    """Last: acc_T."""
    return float(incremental_accuracies(acc, counts)[-1])


def forgetting(acc: ArrayLike) -> float | None:
    """Average drop from each block's best accuracy to its final one (None when T = 1)."""
    matrix = _square(acc, "forgetting")
    T = len(matrix)
    if T < 2:
        return None
    _require(matrix, np.tril(np.ones((T, T), dtype=bool)), "forgetting")
    drops = [matrix[k : T - 1, k].max() - matrix[T - 1, k] for k in range(T - 1)]
    return float(np.mean(drops))


def backward_transfer(acc: ArrayLike) -> float | None:
    """BWT: mean change of each earlier block from just after it was learned to the end."""
    matrix = _square(acc, "backward_transfer")
    T = len(matrix)
    if T < 2:
        return None
    _require(matrix, np.tril(np.ones((T, T), dtype=bool)), "backward_transfer")
    return float(np.mean([matrix[T - 1, k] - matrix[k, k] for k in range(T - 1)]))


def final_average_accuracy(acc: ArrayLike) -> float:
    """FAA: the task-averaged accuracy of the final row."""
    matrix = _square(acc, "final_average_accuracy")
    last_row = np.zeros(matrix.shape, dtype=bool)
    last_row[-1] = True
    _require(matrix, last_row, "final_average_accuracy")
    return float(matrix[-1].mean())


def ci_transfer(acc: ArrayLike) -> float | None:
    """CI-Transfer: mean accuracy on future blocks (predicting over all classes) before they are
    learned. None when T = 1 or when the future cells were not evaluated."""
    matrix = _square(acc, "ci_transfer")
    T = len(matrix)
    if T < 2:
        return None
    upper = np.triu(np.ones((T, T), dtype=bool), k=1)
    if np.isnan(matrix[upper]).all():
        return None
    _require(matrix, upper, "ci_transfer")
    return float(np.mean([matrix[t, t + 1 :].mean() for t in range(T - 1)]))


def seen_unseen_accuracies(
    acc: ArrayLike, counts: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """After each task t, accuracy on what has been learned and on what has not.

    ``seen[t]``: the blocks k ≤ t, weighted by ``counts`` (unweighted when None) — acc_t for
    class-incremental runs. ``unseen[t]``: the plain mean over the blocks k > t, NaN after the last
    task or where those cells were not evaluated; its mean over t < T is CI-Transfer. Both in the
    units of ``acc``."""
    matrix = _square(acc, "seen_unseen_accuracies")
    T = len(matrix)
    _require(matrix, np.tril(np.ones((T, T), dtype=bool)), "seen_unseen_accuracies")
    seen = incremental_accuracies(matrix, counts)
    unseen = np.full(T, np.nan)
    for t in range(T - 1):
        future = matrix[t, t + 1 :]
        if not np.isnan(future).any():
            unseen[t] = future.mean()
    return seen, unseen


def class_incremental_summary(
    acc: ArrayLike, counts: Sequence[float] | None = None
) -> dict[str, float | None]:
    """``avg``, ``last``, ``forgetting``, ``bwt``, ``faa`` and, when future cells exist,
    ``ci_transfer`` — all in percent. ``counts`` are the test samples of each block."""
    accs = incremental_accuracies(acc, counts)
    summary: dict[str, float | None] = {
        "avg": float(accs.mean()),
        "last": float(accs[-1]),
        "forgetting": forgetting(acc),
        "bwt": backward_transfer(acc),
        "faa": final_average_accuracy(acc),
    }
    transfer = ci_transfer(acc)
    if transfer is not None:
        summary["ci_transfer"] = transfer
    return summary


def few_shot_summary(
    acc: ArrayLike, counts: Sequence[float] | None = None
) -> dict[str, float | None]:
    """FSCIL's numbers: ``avg``, ``last``, ``first`` (acc after the base session), ``pd``
    (first − last), ``base`` and ``novel`` (last session; novel weighted by ``counts``), ``hm``
    (their harmonic mean), plus ``ci_transfer`` when the future cells exist — in percent."""
    matrix = _square(acc, "few_shot_summary")
    accs = incremental_accuracies(matrix, counts)
    weights = np.ones(len(matrix)) if counts is None else np.asarray(counts, dtype=np.float64)
    base = float(matrix[-1, 0])
    novel = (
        float(np.dot(matrix[-1, 1:], weights[1:]) / weights[1:].sum()) if len(matrix) > 1 else None
    )
    harmonic = (
        None if novel is None else (0.0 if base + novel == 0 else 2 * base * novel / (base + novel))
    )
    summary: dict[str, float | None] = {
        "avg": float(accs.mean()),
        "last": float(accs[-1]),
        "first": float(accs[0]),
        "pd": float(accs[0] - accs[-1]),
        "base": base,
        "novel": novel,
        "hm": harmonic,
    }
    transfer = ci_transfer(matrix)
    if transfer is not None:
        summary["ci_transfer"] = transfer
    return summary


def domain_accuracies(acc: ArrayLike, counts: Sequence[float] | None = None) -> np.ndarray:
    """all_t for every row t: accuracy on all test domains, weighted by their sample counts."""
    matrix = np.asarray(acc, dtype=np.float64)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(f"domain_accuracies: expected a non-empty T×E matrix, got {matrix.shape}")
    _require(matrix, np.ones(matrix.shape, dtype=bool), "domain_accuracies")
    weights = np.ones(matrix.shape[1]) if counts is None else np.asarray(counts, dtype=np.float64)
    if weights.shape != (matrix.shape[1],) or np.any(weights < 0):
        raise ValueError(f"counts: expected {matrix.shape[1]} non-negative numbers, got {weights}")
    return matrix @ weights / weights.sum()


def domain_incremental_summary(
    acc: ArrayLike,
    counts: Sequence[float] | None = None,
    column_tasks: Sequence[int] | None = None,
) -> dict[str, float | None]:
    """``avg`` and ``last`` (all test domains, weighted by ``counts``), ``domain_avg`` (final row
    averaged over domains); when ``column_tasks`` (the task that trains on each column's domain,
    −1 for none) gives every task exactly one column, also ``forgetting``, ``bwt`` and ``transfer``
    on the columns put in task order. In percent."""
    matrix = np.asarray(acc, dtype=np.float64)
    alls = domain_accuracies(matrix, counts)
    summary: dict[str, float | None] = {
        "avg": float(alls.mean()),
        "last": float(alls[-1]),
        "domain_avg": float(matrix[-1].mean()),
    }
    T = len(matrix)
    if column_tasks is not None and sorted(column_tasks) == list(range(T)):
        square = matrix[:, np.argsort(column_tasks)]
        summary["forgetting"] = forgetting(square)
        summary["bwt"] = backward_transfer(square)
        summary["transfer"] = (
            float(np.mean([square[:j, j].mean() for j in range(1, T)])) if T > 1 else None
        )
    return summary


def mtil_summary(acc: ArrayLike) -> dict[str, float | None]:
    """ZSCL's MTIL metrics: ``transfer`` (None when T = 1), ``avg``, ``last``, in percent."""
    matrix = _square(acc, "mtil_summary")
    T = len(matrix)
    _require(matrix, np.ones((T, T), dtype=bool), "mtil_summary")
    transfer = float(np.mean([matrix[:j, j].mean() for j in range(1, T)])) if T > 1 else None
    return {
        "transfer": transfer,
        "avg": float(matrix.mean(axis=0).mean()),
        "last": float(matrix[-1].mean()),
    }


def summarize(
    protocol: str,
    acc: ArrayLike,
    counts: Sequence[float] | None = None,
    column_tasks: Sequence[int] | None = None,
) -> dict[str, float | None]:
    """The summary for a benchmark's protocol (``class-incremental``, ``few-shot
    class-incremental``, ``multi-domain`` or ``domain-incremental``; ``column_tasks`` only matters
    for the last)."""
    if protocol == "class-incremental":
        return class_incremental_summary(acc, counts)
    if protocol == "few-shot class-incremental":
        return few_shot_summary(acc, counts)
    if protocol == "multi-domain":
        return mtil_summary(acc)
    if protocol == "domain-incremental":
        return domain_incremental_summary(acc, counts, column_tasks)
    raise ValueError(f"unknown protocol {protocol!r}")
