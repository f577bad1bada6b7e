"""Learning from failure: a base pretrained on a corpus that debugs, then GRPO with ``run``;
held-out success at one and at two operations, per stage, over seeds.

    python benchmarks/codesynth_debug.py                      # configs/codesynth_debug.yaml
    python benchmarks/codesynth_debug.py --no-tool-baseline   # and the same without tools
    python benchmarks/codesynth_debug.py --set env.overrides.run_output=verdicts

Trains the config with ``--seeds`` vmapped seeds (and, with ``--no-tool-baseline``, again
with ``env.overrides.tools_enabled=false``: the corpus is then the oracle's answers without
calls), then writes a table of every evaluation (held-out success at one operation,
``eval_one_op/success``, and at two, ``eval_two_op/success``; ``run`` calls per held-out
episode; training success and informative groups in the RL stage) and a plot with bands
(``benchmarks/codesynth_debug.png``; ``codesynth_debug_<config>.png`` for another config),
and writes them under runs/bench/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from results import experiment_parser, plot_path, record_experiment, spread

from agentic_jax.cli import resolve_config
from agentic_jax.plot import plot_runs
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop

NO_TOOLS = "env.overrides.tools_enabled=false"
METRICS = ("eval_one_op/success", "eval_two_op/success", "eval_one_op/tool_calls",
           "train/informative_groups")  # fmt: skip


def optional(row: dict, key: str, digits: int) -> str:
    value = row.get(key)
    return "-" if value is None else f"{value:.{digits}f}"


def stage_table(label: str, rows: list[dict]) -> list[str]:
    """One line per evaluation of one run."""
    lines = [
        f"| {label}: update | stage | held-out success, one operation | held-out, two "
        "operations | `run` calls per held-out episode (one operation) | training success "
        "(sampled) | informative groups |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "eval_one_op/success" not in row:
            continue
        lines.append(
            f"| {row['update']} | {row['stage']} | {spread(row, 'eval_one_op/success')} | "
            f"{spread(row, 'eval_two_op/success')} | {row['eval_one_op/tool_calls']:.2f} | "
            f"{optional(row, 'train/success', 3)} | "
            f"{optional(row, 'train/informative_groups', 2)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, "codesynth_debug")
    parser.add_argument("--no-tool-baseline", action="store_true",
                        help=f"also train with {NO_TOOLS}")  # fmt: skip
    args = parser.parse_args(argv)
    name = Path(args.config).stem
    arms = {"with run": args.set}
    if args.no_tool_baseline:
        arms["no tools"] = [*args.set, NO_TOOLS]
    runs, tables = {}, []
    for label, overrides in arms.items():
        config = config_lib.load(resolve_config(args.config),
                                 [*overrides, f"num_seeds={args.seeds}"])  # fmt: skip
        run_dir = Path(args.runs) / f"{name}_{label.replace(' ', '_')}"
        rows = loop.train(config, run_dir, overwrite=True)
        runs[label] = run_dir
        tables += [*stage_table(label, rows), ""]
    png = plot_runs(list(runs.values()), plot_path("codesynth_debug", name), METRICS,
                    labels=list(runs))  # fmt: skip
    shutil.copy(png, Path(next(iter(runs.values()))) / png.name)
    record_experiment(f"Learning from failure ({name})", "codesynth_debug.py", argv, png,
                      args.seeds, tables, args.no_record)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
