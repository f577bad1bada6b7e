"""Why leak variants matter: train where the environment leaks, measure where it does not.

    python benchmarks/leak.py webnav_leak [--set key=value ...]
    python benchmarks/leak.py webnav_leak --plot-only RUN_DIR   # redraw a finished run

Trains a config whose environment is a leak variant and which evaluates a leak-free
variant beside it (``env.eval_variants: {clean: {leak: false}}``), then appends to
benchmarks/RESULTS.md the curve of training success, hacks per episode, held-out success
with the leak and held-out success without it, and draws them to
``benchmarks/leak_<config>.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from results import environment_line, plot_path, record

from agentic_jax.cli import resolve_config
from agentic_jax.plot import read_metrics
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop

COLUMNS = (
    ("train/success", "train success"),
    ("train/hacks", "train hacks / episode"),
    ("eval/success", "held-out success, leak"),
    ("eval/hacks", "held-out hacks / episode"),
    ("eval_clean/success", "held-out success, no leak"),
)


def leak_section(name: str, command: str, rows: list[dict], plot: Path) -> str:
    def cell(row, key):
        value = row.get(key)
        return "-" if value is None else f"{value:.3f}"

    last = rows[-1]
    lines = [
        f"### {name}: trained where it leaks, measured where it does not",
        "",
        f"`{command}` ({environment_line()}); plot: `benchmarks/{plot.name}`",
        "",
        f"After {last['update']} updates: held-out success {last['eval/success']:.3f} with the"
        f" leak ({last['eval/hacks']:.2f} hacks per episode), {last['eval_clean/success']:.3f}"
        " on the same held-out tasks without it.",
        "",
        "| update | wall s | " + " | ".join(label for _, label in COLUMNS) + " |",
        "|---:|---:|" + "---:|" * len(COLUMNS),
    ]
    for row in rows:
        cells = " | ".join(cell(row, key) for key, _ in COLUMNS)
        lines.append(f"| {row['update']} | {row['wall_s']:.0f} | {cells} |")
    return "\n".join(lines) + "\n"


def draw(rows: list[dict], png: Path, title: str) -> None:
    """The hack rate and the three success rates over training, on one [0, 1] axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    styles = {"train/hacks": ":", "eval/hacks": ":"}
    for key, label in COLUMNS:
        points = [(r["update"], r[key]) for r in rows if r.get(key) is not None]
        ax.plot(*zip(*points, strict=True), styles.get(key, "-"), marker=".", label=label)
    ax.set(title=title, xlabel="update", ylim=(-0.02, 1.05))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides")
    parser.add_argument("--runs", default="runs/bench", help="where the run directory goes")
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--plot-only", metavar="RUN_DIR", help="redraw the plot of a finished run")
    args = parser.parse_args(argv)
    plot = plot_path("leak", Path(args.config).stem)
    if args.plot_only:
        draw(read_metrics(args.plot_only), plot, f"{args.config}: trained where it leaks")
        return 0
    path = resolve_config(args.config)
    config = config_lib.load(path, args.set)
    if "clean" not in config.env.eval_variants:
        raise SystemExit(f"error: {path} needs env.eval_variants.clean (the leak-free variant)")
    command = " ".join(["python benchmarks/leak.py", args.config, *(
        ["--set", *args.set] if args.set else [])])  # fmt: skip
    run_dir = Path(args.runs) / "_".join([path.stem, *args.set])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "command.txt").write_text(command + "\n")
    rows = loop.train(config, run_dir, overwrite=True)
    if not args.no_record:
        draw(rows, plot, f"{path.stem}: trained where it leaks")
    record(leak_section(path.stem, command, rows, plot), args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
