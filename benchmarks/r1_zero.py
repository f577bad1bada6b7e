"""R1-Zero length growth: from a base that thinks little, does RL on the answer alone make the
policy think longer, and how long do the failed episodes think under GRPO and Dr.GRPO?

    python benchmarks/r1_zero.py                 # configs/r1_zero.yaml, 3 seeds per arm
    python benchmarks/r1_zero.py CONFIG --seeds 3
    python benchmarks/r1_zero.py --arms GRPO --set stages.1.updates=250   # a longer RL stage
    python benchmarks/r1_zero.py --shared-base    # every seed's RL from one pretrained base
    python benchmarks/r1_zero.py --made-to-think RUN_DIR ...   # what a saved run's thinking can do

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

import dataclasses
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from results import experiment_parser, plot_path, record_experiment, spread, train_base

from agentic_jax import tokens as tk
from agentic_jax.cli import resolve_config
from agentic_jax.plot import plot_runs
from agentic_jax.rollout import rollout_episodes
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop, saved

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


def made_to_think(run_dir: Path, episodes: int = 2048) -> list[list[float]]:
    """Per seed of a saved run, held-out success by row length (1..width digits) when the
    policy is made to open ``<think>`` at its mode decision and samples everything else: what
    its thinking can do, whatever it now prefers (the measure of a mode it stopped using)."""
    _, setup, state = saved.load_run(run_dir)
    actor = setup.actor
    env_params = actor.env_params.replace(split=1)

    def thinking_step(params):
        step = actor.policy_step(params)

        def forced(key, obs, env_state, cache):
            action, log_prob, value, cache = step(key, obs, env_state, cache)
            deciding = ~env_state.agent_written.any(axis=-1) & obs.legal_mask[:, tk.THINK_OPEN]
            return jnp.where(deciding, tk.THINK_OPEN, action), log_prob, value, cache

        return forced

    @jax.jit
    def play(params):
        rollout = rollout_episodes(actor.env, env_params, thinking_step(params),
                                   actor.model.init_cache(episodes), jax.random.PRNGKey(7),
                                   episodes)  # fmt: skip
        return rollout.env_state.task.world.num_items, rollout.env_state.success

    by_seed = []
    for seed in range(setup.config.num_seeds):
        params = jax.tree.map(lambda x, i=seed: x[i], state).params
        length, success = map(np.asarray, play(params))
        by_seed.append([float(success[length == n].mean()) for n in range(1, length.max() + 1)])
    return by_seed


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, "r1_zero")
    parser.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    parser.add_argument(
        "--shared-base", action="store_true", help="every seed's RL from one pretrained base"
    )
    parser.add_argument("--made-to-think", nargs="*", metavar="RUN_DIR",
                        help="only print, per seed of saved runs, success by row length when "
                        "made to think")  # fmt: skip
    args = parser.parse_args(argv)
    if args.made_to_think:
        for run_dir in args.made_to_think:
            for seed, row in enumerate(made_to_think(Path(run_dir))):
                cells = " / ".join(f"{value:.2f}" for value in row)
                print(f"{run_dir} seed {seed}: success by row length when made to think {cells}")
        return 0
    name = Path(args.config).stem  # a config name, or a file's

    path = resolve_config(args.config)
    runs, rows = {}, {}
    base = []
    if args.shared_base:  # one base (seed 0's pretraining), every seed's RL starts from it
        base_dir = train_base(config_lib.load(path, args.set), args.runs, name)
        base = [f"init={base_dir}"]
        name = f"{name}_shared_base"
    for label in args.arms:
        overrides = ARMS[label]
        config = config_lib.load(path, [f"num_seeds={args.seeds}", *args.set, *overrides, *base])
        if args.shared_base:
            config = dataclasses.replace(config, stages=config.stages[1:])
        run_dir = Path(args.runs) / f"{name}_{slug(label)}"
        rows[label] = loop.train(config, run_dir, overwrite=True)
        runs[label] = run_dir
    out = plot_path("r1_zero", name)
    if args.arms != list(ARMS):
        out = out.with_stem("_".join([out.stem, *map(slug, args.arms)]))
    if args.set:  # stages.1.updates=250: r1_zero_..._stages1updates250.png
        out = out.with_stem("_".join([out.stem, *(re.sub(r"\W", "", s) for s in args.set)]))
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
