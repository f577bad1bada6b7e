"""Shared by the benchmark scripts: the machine line, and each script's section and plot.

A script prints its section and writes it, with its plot, under ``runs/bench/`` (untracked):
nothing here writes into the repository. Findings go through ``agentic-jax reproduce``, whose
result files RESULTS.md is rendered from.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import jax

OUT = Path("runs") / "bench"  # untracked: sections and plots of the benchmark scripts


def environment_line() -> str:
    """Date, machine, device and versions, for the heading of a results section."""
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("jax", "flax", "optax", "gymnax")
    )
    device = jax.devices()[0]
    return (
        f"{datetime.date.today().isoformat()}, {platform.machine()} {platform.processor() or ''}"
        f" with {jax.local_device_count()} x {device.platform} ({device.device_kind}),"
        f" Python {platform.python_version()}, {versions}"
    )


def record(section: str, dry_run: bool = False) -> None:
    """Print a section and, unless ``dry_run``, append it to ``runs/bench/sections.md``."""
    print(section)
    if not dry_run:
        OUT.mkdir(parents=True, exist_ok=True)
        with (OUT / "sections.md").open("a") as sections:
            sections.write("\n" + section)


def best_time(fn, arg, repeats: int = 3) -> float:
    """Best wall seconds of ``repeats`` calls of ``jit(fn)(arg)``, compiled and warmed first."""
    compiled = jax.jit(fn).lower(arg).compile()
    jax.block_until_ready(compiled(arg))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(arg))
        times.append(time.perf_counter() - start)
    return min(times)


def section(title: str, script: str, argv: list[str] | None, lines: list[str], extra="") -> str:
    """A section: heading, the command that made it with the machine line, body."""
    command = " ".join(
        [f"python benchmarks/{script}", *(argv if argv is not None else sys.argv[1:])]
    )
    return "\n".join([f"### {title}", "", f"`{command}` ({environment_line()}{extra})", "", *lines])


def spread(row: dict, key: str) -> str:
    """A logged value as "mean (lowest-highest seed)", or the mean alone for one seed."""
    import numpy as np

    seeds = row.get(f"{key}_per_seed")
    if seeds is None:
        return f"{row[key]:.3f}"
    return f"{np.mean(seeds):.3f} ({np.min(seeds):.3f}-{np.max(seeds):.3f})"


def plot_path(experiment: str, config_name: str) -> Path:
    """``runs/bench/<experiment>.png`` for the experiment's own config, else
    ``runs/bench/<experiment>_<config>.png``."""
    name = experiment if config_name == experiment else f"{experiment}_{config_name}"
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT / f"{name}.png"


def save_figure(fig, out: Path) -> Path:
    """Lay out, write (PNG, 110 dpi) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def record_experiment(
    title: str,
    script: str,
    argv: list[str] | None,
    png: Path,
    seeds: int,
    lines: list[str],
    dry_run: bool,
    sampled: str = "sampled held-out episodes (eval_sample)",
) -> None:
    """A seeded experiment's section: its plot, seeds and table (see ``record``)."""
    body = [f"Plot: `{png}`; {seeds} seeds (vmapped), mean (lowest-highest "
            f"seed); {sampled}.", "", *lines]  # fmt: skip
    record(section(title, script, argv, body), dry_run)


def experiment_parser(doc: str, config: str) -> argparse.ArgumentParser:
    """The arguments every seeded experiment takes: the config (``config`` by default),
    ``--seeds``, ``--runs`` (where run directories go), ``--set KEY=VALUE ...`` (config
    overrides, ``stages.1.updates=250`` included) and ``--no-record``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("config", nargs="?", default=config)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--runs", default="runs/bench")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides for every arm")
    parser.add_argument("--no-record", action="store_true", help="print only")
    return parser


def train_base(config, runs: str | Path, name: str) -> Path:
    """Train the config's first (pretrain) stage alone, once, into ``RUNS/NAME_base``: the
    base every arm starts from with ``init``. Returns its run directory."""
    from agentic_jax.train import loop

    base_dir = Path(runs) / f"{name}_base"
    loop.train(dataclasses.replace(config, stages=[config.stages[0]]), base_dir, overwrite=True)
    return base_dir
