"""A vmapped sweep of 8 settings against the same 8 settings trained one after another.

python benchmarks/sweep.py [--updates 50] [--no-record]

Settings: ``algo.lr`` in {3e-4, 1e-3, 3e-3, 1e-2} x ``seed`` in {0, 1} on ``kblookup_rl``
(RL only, 256 episodes per update). The sweep is ``agentic-jax sweep``'s code path: one
compile, the 8 settings vmapped. The sequential side is 8 ``agentic-jax train`` runs (each
compiles, logs and checkpoints). Wall seconds include compilation on both sides; the final
held-out success of every setting is compared.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from results import environment_line, record

from agentic_jax.cli import resolve_config
from agentic_jax.train import loop, sweep

AXES = ["algo.lr=3e-4,1e-3,3e-3,1e-2", "seed=0:2"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    base = yaml.safe_load(resolve_config("kblookup_rl").read_text())
    fixed = [f"updates={args.updates}", f"eval_interval={args.updates}", "rollout.num_tasks=32",
             "logging.tensorboard=false"]  # fmt: skip
    _, settings = sweep.grid(base, AXES + fixed)
    start = time.perf_counter()
    (group,) = sweep.compile_groups(settings)
    together = sweep.run_group(group)["eval/success"][:, -1]
    vmapped_s = time.perf_counter() - start
    start = time.perf_counter()
    alone = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, setting in enumerate(settings):
            rows = loop.train(setting.config, Path(tmp) / str(i), overwrite=True)
            alone.append(rows[-1]["eval/success"])
    sequential_s = time.perf_counter() - start
    lines = ["| setting | vmapped: final held-out success | sequential |", "|---|---:|---:|"]
    for setting, a, b in zip(settings, together, alone, strict=True):
        lines.append(f"| {setting.label} | {a:.3f} | {b:.3f} |")
    gap = float(np.max(np.abs(np.asarray(together) - np.asarray(alone))))
    summary = (
        f"8 settings, {args.updates} updates each: vmapped {vmapped_s:.0f} s, sequential "
        f"{sequential_s:.0f} s ({sequential_s / vmapped_s:.2f}x); largest difference in final "
        f"held-out success {gap:.3f}."
    )
    print(summary)
    command = " ".join(["python benchmarks/sweep.py", *(argv or sys.argv[1:])])
    section = "\n".join(
        ["### Sweep: vmapped against sequential", "", f"`{command}` ({environment_line()})", "",
         summary, "", *lines]
    )  # fmt: skip
    record(section + "\n", args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
