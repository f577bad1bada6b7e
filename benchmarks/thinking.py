"""Thinking budgets and modes (issue 5): each experiment trains, then writes a table and a PNG.

    python benchmarks/thinking.py budget thinking_budget      # accuracy against budget
    python benchmarks/thinking.py modes thinking_modes        # merged against two specialists
    python benchmarks/thinking.py adaptive thinking_adaptive  # chosen effort per difficulty
    python benchmarks/thinking.py pipeline qwen3_pipeline     # a multi-stage run, per stage
    python benchmarks/thinking.py interleaved thinking_interleaved  # think between calls or not

Every experiment's runs go under ``--runs``; its table and plot go into the (first) run
directory, the plot also to ``benchmarks/thinking_<experiment>.png``, and the table, with
the command, date, machine and versions, is appended to benchmarks/RESULTS.md.
Mean thinking length over training (``train/think_tokens``) is logged by every run and
drawn in each experiment's plot.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from results import environment_line, record

from agentic_jax import tokens as tk
from agentic_jax.cli import resolve_config
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop

HERE = Path(__file__).parent


def train(name: str, overrides: list[str], runs: Path, command: str) -> tuple[Path, list[dict]]:
    path = resolve_config(name)
    config = config_lib.load(path, overrides)
    run_dir = runs / "_".join([path.stem, *overrides]).replace("/", "-").replace(" ", "")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "command.txt").write_text(command + "\n")
    return run_dir, loop.train(config, run_dir, overwrite=True)


def budgets_of(config_name: str) -> list[int]:
    config = config_lib.load(resolve_config(config_name))
    return list(config.env.overrides["effort_budgets"])


def write(run_dir: Path, experiment: str, title: str, args, table: list[str], fig):
    # A run with --set overrides gets its own plot: thinking_adaptive_think_cost0.2.png
    suffix = "".join("_" + o.split("=")[0].split(".")[-1] + o.split("=")[-1] for o in args.set)
    png = run_dir / f"thinking_{experiment}{suffix}.png"
    fig.savefig(png, dpi=110)
    if not args.no_record:
        shutil.copy(png, HERE / png.name)
    (run_dir / f"thinking_{experiment}.md").write_text("\n".join(table) + "\n")
    section = [f"### {title}", "", f"`{args.command}` ({environment_line()}); plot:"
               f" `benchmarks/{png.name}`", "", *table]  # fmt: skip
    return "\n".join(section) + "\n"


def figure(panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(4.4 * panels, 3.4), squeeze=False)
    return fig, axes[0]


def thinking_curve(ax, runs: dict[str, list[dict]]):
    """Mean thinking tokens per training episode across training (R1-style growth or not)."""
    for label, rows in runs.items():
        points = [(r["update"], r["train/think_tokens"]) for r in rows if "train/think_tokens" in r]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", label=label)
    ax.set(title="thinking tokens per episode (RL)", xlabel="update")
    ax.legend(fontsize=8)


def variant_budgets(config_name: str, overrides: list[str]) -> dict[str, int]:
    """Each eval variant that fixes one effort level: its thinking budget, smallest first."""
    env = config_lib.load(resolve_config(config_name), overrides).env
    found = {}
    for name, variant in env.eval_variants.items():
        settings = {**env.overrides, **variant}
        probs = list(settings["effort_probs"])
        if probs.count(1.0) == 1:
            found[name] = int(settings["effort_budgets"][probs.index(1.0)])
    return dict(sorted(found.items(), key=lambda item: item[1]))


def budget(args) -> str:
    run_dir, rows = train(args.config, args.set, args.runs, args.command)
    last, budgets = rows[-1], variant_budgets(args.config, args.set)
    table = ["| effort | budget | held-out success | thinking tokens | transcript tokens |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, budget_tokens in budgets.items():
        p = f"eval_{name}/"
        table.append(f"| {name} | {budget_tokens} | {last[p + 'success']:.3f} |"
                     f" {last[p + 'think_tokens']:.2f} | {last[p + 'length']:.1f} |")  # fmt: skip
    fig, (ax, ax_think) = figure(2)
    success = [last[f"eval_{name}/success"] for name in budgets]
    ax.plot(list(budgets.values()), success, marker="o")
    for name, x, y in zip(budgets, budgets.values(), success, strict=True):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.set(title="held-out success against thinking budget", xlabel="budget (tokens)",
           ylim=(0, 1.05))  # fmt: skip
    thinking_curve(ax_think, {"training mixture": rows})
    fig.tight_layout()
    return write(run_dir, "budget", "Budget scaling: one policy at every effort level",
                 args, table, fig)  # fmt: skip


def modes(args) -> str:
    config = config_lib.load(resolve_config(args.config), args.set)
    half = [f"sft.updates={config.sft.updates // 2}", f"updates={config.updates // 2}"]
    specs = {
        "merged (none + high)": [],
        "instruct specialist (none)": [*half, "env.overrides.effort_probs=[1.0,0.0,0.0,0.0]"],
        "thinking specialist (high)": [*half, "env.overrides.effort_probs=[0.0,0.0,0.0,1.0]"],
    }
    results, first_dir = {}, None
    for label, extra in specs.items():
        run_dir, rows = train(args.config, [*args.set, *extra], args.runs, args.command)
        first_dir = first_dir or run_dir
        results[label] = rows
    table = [
        "| policy | env steps | none: success | none: tokens | high: success |"
        " high: thinking tokens | high: tokens |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, rows in results.items():
        r = rows[-1]
        table.append(
            f"| {label} | {r['env_steps']:,} | {r['eval_none/success']:.3f} |"
            f" {r['eval_none/length']:.1f} | {r['eval_high/success']:.3f} |"
            f" {r['eval_high/think_tokens']:.2f} | {r['eval_high/length']:.1f} |"
        )
    fig, (ax, ax_think) = figure(2)
    labels = list(results)
    for offset, mode in ((-0.2, "none"), (0.2, "high")):
        values = [results[label][-1][f"eval_{mode}/success"] for label in labels]
        positions = [i + offset for i in range(len(labels))]
        ax.bar(positions, values, width=0.4, label=f"<effort> {mode}")
    ax.set_xticks(range(len(labels)), [label.split(" (")[0] for label in labels], fontsize=7)
    ax.set(title="held-out success per mode", ylim=(0, 1.05))
    ax.legend(fontsize=8)
    thinking_curve(ax_think, results)
    fig.tight_layout()
    return write(first_dir, "modes", "Merged against separate thinking and instruct policies",
                 args, table, fig)  # fmt: skip


def adaptive(args) -> str:
    run_dir, rows = train(args.config, args.set, args.runs, args.command)
    budgets = budgets_of(args.config)
    variants = list(config_lib.load(resolve_config(args.config), args.set).env.eval_variants)
    table = ["| difficulty | chosen effort (0 none .. 3 high) | thinking tokens |"
             " held-out success |", "|---|---:|---:|---:|"]  # fmt: skip
    last = rows[-1]
    for name in variants:
        p = f"eval_{name}/"
        table.append(f"| {name} | {last[p + 'effort']:.2f} | {last[p + 'think_tokens']:.2f} |"
                     f" {last[p + 'success']:.3f} |")  # fmt: skip
    table.append("")
    table.append(f"Budgets per level: {dict(zip(tk.EFFORT_LEVELS, budgets, strict=True))}.")
    fig, (ax, ax_tokens, ax_think) = figure(3)
    for name in variants:
        points = [(r["update"], r[f"eval_{name}/effort"]) for r in rows]
        ax.plot(*zip(*points, strict=True), marker=".", label=name)
    ax.set(title="chosen effort level (held-out) over training", xlabel="update",
           ylim=(-0.1, 3.1))  # fmt: skip
    ax.legend(fontsize=8)
    ax_tokens.bar(variants, [last[f"eval_{name}/think_tokens"] for name in variants])
    ax_tokens.set(title="thinking tokens per task, end of training", xlabel="difficulty")
    thinking_curve(ax_think, {"training mixture": rows})
    fig.tight_layout()
    return write(run_dir, "adaptive", "Adaptive effort: the agent picks its level, thinking costs",
                 args, table, fig)  # fmt: skip


def pipeline(args) -> str:
    run_dir, rows = train(args.config, args.set, args.runs, args.command)
    table = ["| stage | updates | wall s | held-out success (none) | (high) |"
             " thinking tokens (high) |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for row in rows[::4]:  # every 100 updates (the curve has every evaluation)
        table.append(f"| {row['stage']} | {row['update']} | {row['wall_s']:.0f} |"
                     f" {row['eval_none/success']:.3f} | {row['eval_high/success']:.3f} |"
                     f" {row['eval_high/think_tokens']:.2f} |")  # fmt: skip
    fig, (ax, ax_think) = figure(2)
    for mode in ("none", "high"):
        ax.plot([r["update"] for r in rows], [r[f"eval_{mode}/success"] for r in rows],
                marker=".", label=f"<effort> {mode}")  # fmt: skip
    ax.set(title="held-out success across the stages", xlabel="update", ylim=(0, 1.05))
    ax.legend(fontsize=8)
    thinking_curve(ax_think, {"pipeline": rows})
    fig.tight_layout()
    return write(run_dir, "pipeline", "A four-stage pipeline (the shape of Qwen3's)",
                 args, table, fig)  # fmt: skip


def interleaved(args) -> str:
    specs = {
        "interleaved (think between calls)": ["env.overrides.think_between_calls=true"],
        "monologue (think before the first call)": ["env.overrides.think_between_calls=false"],
    }
    results, first_dir = {}, None
    for label, extra in specs.items():
        run_dir, rows = train(args.config, [*args.set, *extra], args.runs, args.command)
        first_dir = first_dir or run_dir
        results[label] = rows
    sizes = {"two_items": 2, "three_items": 3, "four_items": 4}
    table = [
        "| agent | held-out success | " + " | ".join(f"{n} items" for n in sizes.values())
        + " | tool calls | thinking tokens | transcript tokens |",
        "|---|---:|" + "---:|" * len(sizes) + "---:|---:|---:|",
    ]  # fmt: skip
    for label, rows in results.items():
        r = rows[-1]
        by_size = " | ".join(f"{r[f'eval_{name}/success']:.3f}" for name in sizes)
        table.append(f"| {label} | {r['eval/success']:.3f} | {by_size} | {r['eval/tool_calls']:.2f}"
                     f" | {r['eval/think_tokens']:.2f} | {r['eval/length']:.1f} |")  # fmt: skip
    fig, (ax, ax_think) = figure(2)
    for offset, (label, rows) in zip((-0.2, 0.2), results.items(), strict=True):
        values = [rows[-1][f"eval_{name}/success"] for name in sizes]
        ax.bar([n + offset for n in sizes.values()], values, width=0.4, label=label.split(" (")[0])
    ax.set(title="held-out success by number of items", xlabel="items to add up",
           ylim=(0, 1.05), xticks=list(sizes.values()))  # fmt: skip
    ax.legend(fontsize=8)
    thinking_curve(ax_think, {label.split(" (")[0]: rows for label, rows in results.items()})
    fig.tight_layout()
    return write(first_dir, "interleaved", "Interleaved against monologue thinking",
                 args, table, fig)  # fmt: skip


EXPERIMENTS = {
    "budget": budget, "modes": modes, "adaptive": adaptive, "pipeline": pipeline,
    "interleaved": interleaved,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=list(EXPERIMENTS))
    parser.add_argument("config")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides")
    parser.add_argument("--runs", type=Path, default=Path("runs/thinking"))
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    args.command = " ".join(["python benchmarks/thinking.py", args.experiment, args.config, *(
        ["--set", *args.set] if args.set else [])])  # fmt: skip
    record(EXPERIMENTS[args.experiment](args), args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
