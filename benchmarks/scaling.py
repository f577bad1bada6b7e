"""Data-parallel scaling: one GRPO update of the default transformer with the batch split
over 1, 2 and 4 local devices (``devices=N``), parameters replicated.

python benchmarks/scaling.py [--tasks 64] [--no-record]

On a CPU-only machine the script asks XLA for 4 host devices
(``--xla_force_host_platform_device_count=4``), which share the machine's cores: the table
then shows the cost of the sharding machinery, not a speed-up. On accelerators it uses the
real devices. Best of 3 timed updates after compilation.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import argparse  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402
from results import best_time, record, section  # noqa: E402

from agentic_jax.cli import resolve_config  # noqa: E402
from agentic_jax.train import config as config_lib  # noqa: E402
from agentic_jax.train import update  # noqa: E402
from agentic_jax.train.setup import build  # noqa: E402


def update_seconds(devices: int, num_tasks: int, repeats: int = 3) -> tuple[float, int]:
    config = config_lib.load(
        resolve_config("kblookup_sft_rl"),
        [f"rollout.num_tasks={num_tasks}", "sft.updates=0", f"devices={devices}"],
    )
    setup = build(config)
    stage = len(setup.stages) - 1
    state = setup.place(update.start_stage(setup, update.init(setup, jax.random.PRNGKey(0)), stage))
    seconds = best_time(lambda s: update.rl_update(setup, stage, s)[0], state, repeats)
    return seconds, setup.num_envs * (setup.actor.env.max_len - 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    counts = [n for n in (1, 2, 4) if n <= jax.local_device_count()]
    lines = ["| devices | update s | tokens/s | speed-up |", "|---:|---:|---:|---:|"]
    base = None
    for n in counts:
        seconds, tokens = update_seconds(n, args.tasks)
        base = base or seconds
        lines.append(f"| {n} | {seconds:.3f} | {tokens / seconds:,.0f} | {base / seconds:.2f} |")
        print(lines[-1], flush=True)
    kind = jax.devices()[0].device_kind
    text = section("Data-parallel scaling (GRPO update, default transformer)", "scaling.py",
                   argv, lines, f"; devices: {jax.local_device_count()} x {kind}")  # fmt: skip
    record(text + "\n", args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
