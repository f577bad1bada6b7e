"""Learning curves from run directories (``metrics.jsonl``) to a PNG: ``agentic-jax plot``."""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_METRICS = ("eval/success", "train/reward", "train/tool_calls", "train/think_tokens")


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The rows of a run's ``metrics.jsonl``, one per logged update."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {run_dir} is not a run directory (create one with "
            "`agentic-jax train`)"
        )
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stage_starts(rows: list[dict]) -> list[tuple[int, str]]:
    """(first update, stage name) of each training stage of a run's rows."""
    starts, previous = [], "init"
    for before, row in zip(rows, rows[1:], strict=False):
        if row.get("stage", previous) != previous:
            starts.append((before["update"], row["stage"]))
            previous = row["stage"]
    return starts


def y_limits(metric: str, values: list[float]) -> tuple[float, float]:
    """Success-like metrics on [0, 1]; other non-negative ones from 0 to above their largest
    value, so that noise in the fifth digit does not fill the panel; the rest as they fall."""
    if metric.endswith("success") or not values:
        return -0.02, 1.05
    low, high = min(values), max(values)
    if low >= 0:
        return 0.0, max(high * 1.08, 1e-6)
    pad = max(0.05 * (high - low), 0.05 * max(abs(low), abs(high)), 1e-6)
    return low - pad, high + pad


def seed_band(rows: list[dict], metric: str) -> tuple[list, list, list] | None:
    """(updates, lowest seed, highest seed) of ``metric`` in a run of several seeds (rows with
    ``<metric>_per_seed``), or None for a run of one."""
    seeded = [
        (r["update"], r[f"{metric}_per_seed"])
        for r in rows
        if r.get(f"{metric}_per_seed") is not None
    ]
    if not seeded:
        return None
    return [u for u, _ in seeded], [min(v) for _, v in seeded], [max(v) for _, v in seeded]


def plot_runs(
    run_dirs: list[str | Path],
    out: str | Path,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    labels: list[str] | None = None,
) -> Path:
    """One panel per metric against updates, one line per run; writes ``out`` (PNG). A run of
    several seeds (``num_seeds``) is drawn as its mean with a band from the lowest seed to
    the highest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [read_metrics(d) for d in run_dirs]
    labels = labels or [Path(d).name for d in run_dirs]
    present = [m for m in metrics if any(m in row for rows in runs for row in rows)]
    if not present:
        known = sorted({k for rows in runs for row in rows for k in row})
        raise ValueError(f"none of {', '.join(metrics)} was logged; logged: {', '.join(known)}")
    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.4), squeeze=False)
    last_update = max(row["update"] for rows in runs for row in rows)
    for ax, metric in zip(axes[0], present, strict=True):
        values = []
        for index, (rows, label) in enumerate(zip(runs, labels, strict=True)):
            points = [(r["update"], r[metric]) for r in rows if r.get(metric) is not None]
            if points:  # a run keeps its colour in every panel, logged there or not
                (line,) = ax.plot(
                    *zip(*points, strict=True), marker=".", label=label, color=f"C{index % 10}"
                )
                values += [value for _, value in points]
            band = seed_band(rows, metric)
            if points and band:
                ax.fill_between(*band, color=line.get_color(), alpha=0.2)
                values += band[1] + band[2]
        ax.set_title(metric)
        ax.set_xlim(0, max(last_update, 1))  # every panel spans every stage
        ax.set_ylim(*y_limits(metric, values))
        for update, stage in stage_starts(runs[0]):
            ax.axvline(update, color="0.6", linestyle="--", linewidth=0.8)
            ax.annotate(
                stage,
                (update, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -10),
                textcoords="offset points",
                fontsize=7,
                color="0.4",
            )
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
