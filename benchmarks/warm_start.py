"""Warm starts: time to the first logged training row of ``agentic-jax train`` (the default
config) and the wall time of a small ``agentic-jax sweep``, with an empty persistent
compilation cache (cold) and again with the cache the first run filled (warm).

    python benchmarks/warm_start.py [--no-record]

Each command runs as a fresh process with ``AGENTIC_JAX_COMPILE_CACHE`` pointing at a new
temporary folder; times are from the process start (imports included). The training run is
stopped once its first row after the initial evaluation is written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import record, section

from agentic_jax.compile_cache import CACHE_VARIABLE

SWEEP = ["kblookup_rl", "algo.lr=3e-4,1e-3", "updates=20", "eval_interval=20",
         "rollout.num_tasks=16", "logging.tensorboard=false"]  # fmt: skip


def first_training_row(cache: Path, run_dir: Path) -> float:
    """Seconds from the start of ``agentic-jax train`` to its first training row."""
    command = [sys.executable, "-m", "agentic_jax.cli", "train", "--run-dir", str(run_dir),
               "--overwrite"]  # fmt: skip
    env = os.environ | {CACHE_VARIABLE: str(cache)}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    metrics = run_dir / "metrics.jsonl"
    try:
        while process.poll() is None:
            if metrics.exists():
                rows = [json.loads(line) for line in metrics.read_text().splitlines() if line]
                if any(row.get("stage") != "init" for row in rows):
                    return time.perf_counter() - start
            time.sleep(0.2)
        raise RuntimeError(f"agentic-jax train ended (exit {process.returncode}) before a row")
    finally:
        process.kill()
        process.wait()


def sweep_seconds(cache: Path, out: Path) -> float:
    """Wall seconds of the small sweep, start to finish."""
    command = [sys.executable, "-m", "agentic_jax.cli", "sweep", *SWEEP, "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(command, env=os.environ | {CACHE_VARIABLE: str(cache)}, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        train = [first_training_row(folder / "cache", folder / f"run{i}") for i in range(2)]
        sweep = [sweep_seconds(folder / "cache", folder / f"sweep{i}") for i in range(2)]
    lines = [
        "| command | cold (empty cache) | warm (second run) | warm / cold |",
        "|---|---:|---:|---:|",
        f"| `agentic-jax train` (default): seconds to the first training row | {train[0]:.1f} "
        f"| {train[1]:.1f} | {train[1] / train[0]:.2f} |",
        f"| `agentic-jax sweep {' '.join(SWEEP)}`: seconds, start to finish | {sweep[0]:.1f} "
        f"| {sweep[1]:.1f} | {sweep[1] / sweep[0]:.2f} |",
    ]
    record(section("Warm starts: the persistent compilation cache", "warm_start.py", argv,
                   lines), args.no_record)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
