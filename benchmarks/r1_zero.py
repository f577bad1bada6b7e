"""R1-Zero length growth: from a base that thinks little, does RL on the answer alone make the
policy think longer, and how long do the failed episodes think under GRPO and Dr.GRPO?

    python benchmarks/r1_zero.py                 # configs/r1_zero.yaml, 3 seeds per arm
    python benchmarks/r1_zero.py CONFIG --seeds 3
    python benchmarks/r1_zero.py --arms GRPO --set stages.1.updates=250   # a longer RL stage

Six arms of the config (``--arms`` picks some), each with ``--seeds`` vmapped seeds: GRPO
(per-sequence length normalisation, ``algo.loss_agg=sequence``, rewards scaled by the group's
std), Dr.GRPO (``algo.loss_agg=constant``, ``algo.normalize_std=false``), and GRPO with the
think/no-think decision (the first agent token) as a loss term of its own
(``algo.mode_decision=apart``), and GRPO with AdaptThink's balanced sampling of that decision
(``rollout.balance_modes=true``), and GRPO with a KL penalty to the base or an entropy floor:
four fixes tried for a seed that collapses to not thinking. For each:
held-out success and thinking tokens per episode at the base (the end of the pretrain
stage) and after RL, and the thinking tokens of the failed episodes
(``eval/failed_think_tokens``; Dr.GRPO's claim is that the per-sequence normalisation lets
wrong answers grow long). Writes a table and a plot
with bands (``benchmarks/r1_zero.png``; ``r1_zero_<config>.png`` for another config, and the
arms' names appended when not all run) and appends
them to benchmarks/RESULTS.md.
"""

from __future__ import annotations

from pathlib import Path

from results import experiment_parser, plot_path, record_experiment, spread

from agentic_jax.cli import resolve_config
from agentic_jax.plot import plot_runs
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop

ARMS = {
    "GRPO": ["algo.loss_agg=sequence", "algo.normalize_std=true"],
    "Dr.GRPO": ["algo.loss_agg=constant", "algo.normalize_std=false"],
    # The first agent token (<think> or <answer>) is the think/no-think decision: its own term.
    "GRPO, mode decision apart": [
        "algo.loss_agg=sequence",
        "algo.normalize_std=true",
        "algo.mode_decision=apart",
    ],
    # AdaptThink's fix: half of every group is made to think, half not (importance-weighted).
    "GRPO, balanced modes": [
        "algo.loss_agg=sequence",
        "algo.normalize_std=true",
        "rollout.balance_modes=true",
    ],
    # Regularisers that keep the decision from collapsing: a KL penalty to the base (the
    # frozen policy the RL stage starts from), or an entropy floor on every agent token.
    "GRPO, KL to the base": [
        "algo.loss_agg=sequence",
        "algo.normalize_std=true",
        "algo.kl_coef=0.05",
    ],
    "GRPO, entropy floor": [
        "algo.loss_agg=sequence",
        "algo.normalize_std=true",
        "algo.entropy_coef=0.02",
        "algo.entropy_floor=0.3",
    ],
}
METRICS = ("eval/success", "eval/think_tokens", "eval/failed_think_tokens")


def slug(label: str) -> str:
    """An arm's name as a file name: ``GRPO, mode decision apart``, GRPO_mode_decision_apart."""
    return label.replace(".", "").replace(",", "").replace(" ", "_")


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, "r1_zero")
    parser.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    args = parser.parse_args(argv)
    name = Path(args.config).stem  # a config name, or a file's

    runs, rows = {}, {}
    for label in args.arms:
        overrides = ARMS[label]
        config = config_lib.load(
            resolve_config(args.config), [f"num_seeds={args.seeds}", *args.set, *overrides]
        )
        run_dir = Path(args.runs) / f"{name}_{slug(label)}"
        rows[label] = loop.train(config, run_dir, overwrite=True)
        runs[label] = run_dir
    out = plot_path("r1_zero", name)
    if args.arms != list(ARMS):
        out = out.with_stem("_".join([out.stem, *map(slug, args.arms)]))
    if args.set:  # stages.1.updates=250: r1_zero_..._stages1updates250.png
        out = out.with_stem("_".join([out.stem, *(s.replace(".", "").replace("=", "")
                                                   for s in args.set)]))  # fmt: skip
    png = plot_runs(list(runs.values()), out, METRICS, labels=list(runs))

    lines = [
        "| arm | | held-out success | thinking tokens | thinking tokens of failed episodes |",
        "|---|---|---|---|---|",
    ]
    for label, arm_rows in rows.items():
        rl_start = next(i for i, r in enumerate(arm_rows) if r.get("stage") == "rl")
        for when, row in (("base", arm_rows[rl_start - 1]), ("after RL", arm_rows[-1])):
            cells = " | ".join(spread(row, m) for m in METRICS)
            lines.append(f"| {label} | {when} (update {row['update']}) | {cells} |")
    record_experiment(f"R1-Zero length growth ({name})", "r1_zero.py", argv, png, args.seeds,
                      lines, args.no_record)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
