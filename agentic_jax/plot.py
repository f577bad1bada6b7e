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


def plot_runs(
    run_dirs: list[str | Path],
    out: str | Path,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    labels: list[str] | None = None,
) -> Path:
    """One panel per metric against updates, one line per run; writes ``out`` (PNG)."""
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
    for ax, metric in zip(axes[0], present, strict=True):
        for rows, label in zip(runs, labels, strict=True):
            points = [(r["update"], r[metric]) for r in rows if r.get(metric) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", label=label)
        ax.set_title(metric)
        if metric.endswith("success"):
            ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
