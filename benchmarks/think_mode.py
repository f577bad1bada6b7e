"""Think/no-think collapse: from a base that picks thinking or not at random, does plain GRPO
keep both modes where each pays, or collapse to one; and does giving the mode decision a loss
term of its own (``algo.mode_decision=apart``, Thinkless's decoupled GRPO) keep both?

    python benchmarks/think_mode.py                  # configs/think_mode.yaml
    python benchmarks/think_mode.py CONFIG --seeds 3 --arms joint apart entropy_floor

Pretrains the config's base once (its first stage, one seed), then runs its RL stages (every
stage after the first: ``think_mode_early`` has two) from that base (``init``) in each arm,
``--seeds`` vmapped seeds each: the mode decision as one token among the others (``joint``,
plain GRPO), apart (``apart``), or plain GRPO with an entropy floor that keeps every token's
entropy, the decision's included, from falling below 0.3 nats (``entropy_floor``), or one on
the mode decision alone, 0.5 nats (``decision_entropy``), or with the decision's advantage
apart from the advantage of its mode's tokens (``per_mode``: ``algo.mode_advantage``; with
the decision's floor, ``per_mode_explore``). For the base, each arm and the oracle (the
cheapest level whose budget fits its thinking: no thinking where none is needed) it samples
2,048 held-out episodes and reports the share of episodes that chose a thinking mode on short
rows (1-2 digits, where answering directly pays) and on long rows (5-8, where thinking pays),
the success and the mean reward. Writes the table and the curves (``eval_short/effort``,
``eval_long/effort``: the mean level, 0 none, 3 the demonstrator's thinking level) to
``benchmarks/think_mode.png`` (``think_mode_<config>[_<arms>].png`` for another config or
other arms) and appends both under runs/bench/.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from adaptive_rl import Choices, cell, play
from results import experiment_parser, plot_path, record_experiment, train_base

from agentic_jax.cli import resolve_config
from agentic_jax.plot import plot_runs
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop

ARMS = {
    "joint": ("plain GRPO (joint)", ["algo.mode_decision=joint"]),
    "apart": ("mode decision apart", ["algo.mode_decision=apart"]),
    "entropy_floor": ("GRPO, entropy floor", ["algo.entropy_coef=0.02", "algo.entropy_floor=0.3"]),
    # The floor on the mode decision alone: its entropy kept at 0.5 nats or more, the answers
    # untouched (algo.entropy_tokens=decision).
    "decision_entropy": (
        "GRPO, entropy floor on the decision",
        ["algo.entropy_tokens=decision", "algo.entropy_coef=1.0", "algo.entropy_floor=0.5"],
    ),
    # The decision's advantage apart from its mode's tokens' (algo.mode_advantage=per_mode):
    # a mode's tokens are judged only against the same mode's samples in their group.
    "per_mode": ("GRPO, advantage per mode", ["algo.mode_advantage=per_mode"]),
    "per_mode_explore": (
        "GRPO, advantage per mode and the decision's entropy floor",
        [
            "algo.mode_advantage=per_mode",
            "algo.entropy_tokens=decision",
            "algo.entropy_coef=1.0",
            "algo.entropy_floor=0.5",
        ],
    ),
}
DEFAULT_ARMS = ["joint", "apart"]
SHORT, LONG = (1, 2), (5, 8)
METRICS = ("eval_short/effort", "eval_long/effort", "eval/success")


def thinks_on(choices: Choices, rows: tuple[int, int]) -> float:
    """The share of episodes on rows of ``rows`` digits that chose a thinking mode."""
    low, high = rows
    on = (choices.length >= low) & (choices.length <= high)
    return float((choices.level[on] > 0).mean())


def success_thinking_on(choices: Choices, rows: tuple[int, int]) -> float:
    """Success of the episodes on rows of ``rows`` digits that chose a thinking mode (nan when
    none did): whether thinking still pays where it should."""
    low, high = rows
    on = (choices.length >= low) & (choices.length <= high) & (choices.level > 0)
    return float(choices.success[on].mean()) if on.any() else float("nan")


def describe(choices: list[Choices], level_costs: np.ndarray) -> dict[str, list[float]]:
    """Per seed: thinking share on short and long rows, success and mean reward."""
    return {
        "short": [thinks_on(c, SHORT) for c in choices],
        "long": [thinks_on(c, LONG) for c in choices],
        "thinking pays": [success_thinking_on(c, LONG) for c in choices],
        "success": [float(c.success.mean()) for c in choices],
        "reward": [float((c.success - level_costs[c.level]).mean()) for c in choices],
    }


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, "think_mode")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=DEFAULT_ARMS)
    args = parser.parse_args(argv)
    name = Path(args.config).stem
    path = resolve_config(args.config)
    config = config_lib.load(path, args.set)
    rl_stages = config.stages[1:]
    costs = np.asarray(config.env.overrides["effort_costs"], np.float64)

    base_dir = train_base(config, args.runs, name)
    results = {"oracle (cheapest fitting level)": describe([play(None, base_dir)], costs),
               "base (pretrain only)": describe([play(base_dir, base_dir)], costs)}  # fmt: skip
    runs, histories = {}, {}
    for arm_name in args.arms:
        label, arm_overrides = ARMS[arm_name]
        overrides = [*args.set, f"num_seeds={args.seeds}", *arm_overrides, f"init={base_dir}"]
        arm = dataclasses.replace(config_lib.load(path, overrides), stages=rl_stages)
        runs[label] = Path(args.runs) / f"{name}_{arm_name}"
        histories[label] = loop.train(arm, runs[label], overwrite=True)
        results[label] = describe(
            [play(runs[label], runs[label], seed) for seed in range(args.seeds)], costs
        )
    arms = "" if args.arms == DEFAULT_ARMS else "_" + "_".join(args.arms)
    png = plot_runs(list(runs.values()), plot_path("think_mode", name + arms), METRICS,
                    labels=list(runs))  # fmt: skip

    lines = [
        f"| policy | thinks on rows of {SHORT[0]}-{SHORT[1]} digits | thinks on rows of "
        f"{LONG[0]}-{LONG[1]} digits | success when thinking on rows of {LONG[0]}-{LONG[1]} | "
        "held-out success | mean reward |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        cells = " | ".join(
            cell(r[key]) for key in ("short", "long", "thinking pays", "success", "reward")
        )
        lines.append(f"| {label} | {cells} |")
    if len(rl_stages) > 1:  # where each RL stage left the mode decision
        ends = np.cumsum([stage.updates for stage in rl_stages])
        lines += ["", "Mean level chosen on short / long rows (`eval_short/effort`, `eval_long/"
                  "effort`: 0 none, 3 high) at the end of each RL stage:", "",
                  "| arm | " + " | ".join(f"after {st.name} (update {end})"
                                         for st, end in zip(rl_stages, ends, strict=True)) + " |",
                  "|---|" + "---|" * len(rl_stages)]  # fmt: skip
        for label, history in histories.items():
            by_update = {row["update"]: row for row in history}
            cells = [f"{by_update[end]['eval_short/effort']:.2f} / "
                     f"{by_update[end]['eval_long/effort']:.2f}" for end in ends]  # fmt: skip
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    record_experiment(f"Think/no-think collapse ({name})", "think_mode.py", argv, png,
                      args.seeds, lines, args.no_record,
                      sampled="2,048 sampled held-out episodes per policy "
                      "(eval_sample)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
