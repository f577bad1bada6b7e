"""Learning curves: train configs and record held-out success against updates and wall time.

    python benchmarks/learning.py default kblookup_rl kblookup_ppo [--set key=value ...]
    python benchmarks/learning.py --from-run RUN_DIR [RUN_DIR ...]
    python benchmarks/learning.py default --set num_seeds=4 updates=0   # a recipe over 4 seeds
    python benchmarks/learning.py webnav --no-tool-baseline   # and the same run without tools

Each config trains from its YAML (as `agentic-jax train` would), or an existing run made by
`agentic-jax train` is read back, and a section with the command, date, machine, device,
versions and the curve is appended to benchmarks/RESULTS.md. With ``--no-tool-baseline``
each config is trained a second time with ``env.overrides.tools_enabled=false`` (``<call>``
masked out, the SFT oracle's tool calls removed) and a comparison of the two is recorded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from results import environment_line, record

from agentic_jax.cli import resolve_config
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop


def first_reaching(rows: list[dict], threshold: float) -> str:
    for row in rows:
        if row["eval/success"] >= threshold:
            return f"update {row['update']} at {row['wall_s']:.0f} s"
    return "not reached"


def per_seed_summary(rows: list[dict]) -> str:
    """With ``num_seeds`` > 1: the update at which each seed first reached 90% held-out."""
    seeds = len(rows[-1]["eval/success_per_seed"])
    firsts = []
    for seed in range(seeds):
        hit = [r["update"] for r in rows[1:] if r["eval/success_per_seed"][seed] >= 0.9]
        firsts.append(str(hit[0]) if hit else "never")
    return f" Per seed, first update at >= 90%: {', '.join(firsts)}."


def curve_section(name: str, command: str, rows: list[dict]) -> str:
    seeded = "eval/success_per_seed" in rows[-1]
    lines = [
        f"### {name}",
        "",
        f"`{command}` ({environment_line()})",
        "",
        f"Held-out success {rows[0]['eval/success']:.3f} -> {rows[-1]['eval/success']:.3f}"
        f"{' (mean over seeds)' if seeded else ''};"
        f" 80% first reached: {first_reaching(rows, 0.8)}; 90%: {first_reaching(rows, 0.9)}."
        + (per_seed_summary(rows) if seeded else ""),
        "",
        "| update | stage | wall s | env steps | train reward | held-out success | tokens/s |"
        + (" per seed |" if seeded else ""),
        "|---:|---|---:|---:|---:|---:|---:|" + ("---|" if seeded else ""),
    ]
    for row in rows:
        reward = row.get("train/reward")
        per_seed = row.get("eval/success_per_seed")
        lines.append(
            f"| {row['update']} | {row['stage']} | {row['wall_s']:.0f} | {row['env_steps']:,} |"
            f" {'-' if reward is None else f'{reward:.3f}'} | {row['eval/success']:.3f} |"
            f" {row['tokens_per_s']:,.0f} |"
            + (f" {' '.join(f'{x:.2f}' for x in per_seed)} |" if per_seed else "")
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*")
    parser.add_argument("--from-run", nargs="*", default=[], help="record existing run dirs")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every config")
    parser.add_argument("--runs", default="runs/bench", help="where the run directories go")
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--no-tool-baseline", action="store_true",
                        help="also train each config with tool calls masked out")  # fmt: skip
    args = parser.parse_args(argv)
    for run_dir in map(Path, args.from_run):
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        command = (run_dir / "command.txt").read_text().strip()
        record(curve_section(run_dir.name, command, rows), args.no_record)
    for name in args.configs:
        command = " ".join(["python benchmarks/learning.py", name, *(
            ["--set", *args.set] if args.set else []), *(
            ["--no-tool-baseline"] if args.no_tool_baseline else [])])  # fmt: skip
        with_tools = train_and_record(name, args.set, command, args)
        if args.no_tool_baseline:
            without = train_and_record(name, [*args.set, NO_TOOLS], command, args)
            record(comparison_section(name, command, with_tools, without), args.no_record)
    return 0


NO_TOOLS = "env.overrides.tools_enabled=false"


def train_and_record(name: str, overrides: list[str], command: str, args) -> list[dict]:
    path = resolve_config(name)
    config = config_lib.load(path, overrides)
    title = " ".join([path.stem, *overrides])
    run_dir = Path(args.runs) / title.replace(" ", "_")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "command.txt").write_text(command + "\n")
    rows = loop.train(config, run_dir, overwrite=True)
    record(curve_section(title, command, rows), args.no_record)
    return rows


def comparison_section(name: str, command: str, with_tools: list[dict], without: list[dict]):
    """Final and best held-out success with tools and with tool calls masked out."""

    def cells(rows):
        best = max(r["eval/success"] for r in rows)
        calls = rows[-1].get("eval/tool_calls", 0.0)
        return (f"{rows[-1]['eval/success']:.3f} | {best:.3f} | {calls:.2f} |"
                f" {rows[-1]['wall_s']:.0f}")  # fmt: skip

    return "\n".join([
        f"### {name}: with tools against the no-tool baseline",
        "",
        f"`{command}` ({environment_line()})",
        "",
        "| run | final held-out success | best | tool calls per episode | wall s |",
        "|---|---:|---:|---:|---:|",
        f"| with tools | {cells(with_tools)} |",
        f"| no tools (`{NO_TOOLS}`) | {cells(without)} |",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
