"""Adaptive effort learned by RL: from a base that picks its effort level at random, does RL
with a per-token thinking cost learn to spend more on longer rows, and less as thinking
costs more?

    python benchmarks/adaptive_rl.py                  # configs/adaptive_rl.yaml
    python benchmarks/adaptive_rl.py CONFIG --seeds 3 --costs 0 0.01 0.05 0.2
    python benchmarks/adaptive_rl.py --priced-levels  # a level also costs its budget

Pretrains the config's base once (its first stage, one seed), then runs its RL stage from
that base (``init``) at each thinking cost, ``--seeds`` vmapped seeds each. With
``--priced-levels`` choosing a level also costs its budget at the same price per token
(``effort_costs = cost * effort_budgets``: the budget is paid for when reserved, as well as
each token thought), so a large budget is no longer free. For the base,
each RL policy and the oracle that picks the cheapest level fitting its thinking, it samples
2,048 held-out episodes and reports the level chosen against the row's length (the mean per
length bin and the rank correlation of level with length, Spearman's, ties averaged), the
mean thinking tokens and the success. Writes a table and a plot (the success-against-tokens
trade-off over costs; the level per length) to ``benchmarks/adaptive_rl.png`` and appends
both under runs/bench/.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
from results import experiment_parser, plot_path, record, save_figure, section, train_base

from agentic_jax.cli import resolve_config
from agentic_jax.rollout import oracle_step, rollout_episodes
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop, saved

EPISODES = 2048


@dataclasses.dataclass
class Choices:
    """Held-out episodes of one policy: the row length, the level chosen, thinking, success."""

    length: np.ndarray
    level: np.ndarray
    think_tokens: np.ndarray
    success: np.ndarray


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 0, tied values sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranked[tied] = ranked[tied].mean()
    return ranked


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (0 when either is constant)."""
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def play(run_dir: Path | None, setup_source: Path, run_seed: int = 0) -> Choices:
    """Sampled held-out episodes of a saved policy, or of the cheapest-level oracle when
    ``run_dir`` is None (the environment of ``setup_source``'s run)."""
    _, setup, state = saved.load_run(run_dir or setup_source)
    actor = setup.actor
    params = actor.env_params.replace(split=1, oracle_picks_cheapest=True)
    if run_dir is None:
        step, carry = oracle_step(actor.env), None
    else:
        policy = jax.tree.map(lambda x: x[run_seed], state)
        step, carry = actor.policy_step(policy.params), actor.model.init_cache(EPISODES)
    rollout = jax.jit(lambda key: rollout_episodes(actor.env, params, step, carry, key,
                                                   EPISODES))(jax.random.PRNGKey(7))  # fmt: skip
    final = rollout.env_state
    return Choices(np.asarray(final.task.world.num_items), np.asarray(final.effort),
                   np.asarray(final.think_tokens), np.asarray(final.success))  # fmt: skip


def describe(choices: list[Choices]) -> dict[str, float | list[float]]:
    """Means over seeds: level per length bin (1-2, 3-4, 5-6, 7-8), rank correlation,
    thinking tokens and success; with the lowest and highest seed of the last three."""
    bins = [(1, 2), (3, 4), (5, 6), (7, 8)]
    per_bin = [[c.level[(c.length >= lo) & (c.length <= hi)].mean() for lo, hi in bins]
               for c in choices]  # fmt: skip
    spread = {
        "rank": [rank_correlation(c.length, c.level) for c in choices],
        "think": [c.think_tokens.mean() for c in choices],
        "success": [c.success.mean() for c in choices],
    }
    return {"levels": np.mean(per_bin, axis=0).tolist(), **spread}


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ({np.min(values):.3f}-{np.max(values):.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, "adaptive_rl")
    parser.add_argument("--costs", type=float, nargs="*", default=[0.0, 0.01, 0.05, 0.2])
    parser.add_argument("--priced-levels", action="store_true",
                        help="a level costs its budget times the thinking cost")  # fmt: skip
    args = parser.parse_args(argv)
    name = Path(args.config).stem
    path = resolve_config(args.config)
    config = config_lib.load(path)
    rl = config.stages[1]
    budgets = list(config.env.overrides["effort_budgets"])
    priced = "_priced" if args.priced_levels else ""

    base_dir = train_base(config, args.runs, name)
    results = {"oracle (cheapest fitting level)": describe([play(None, base_dir)]),
               "base (pretrain only)": describe([play(base_dir, base_dir)])}  # fmt: skip
    for cost in args.costs:
        overrides = [f"num_seeds={args.seeds}", f"env.overrides.think_cost={cost}",
                     f"init={base_dir}"]  # fmt: skip
        if args.priced_levels:
            overrides.append(f"env.overrides.effort_costs={[cost * b for b in budgets]}")
        arm = dataclasses.replace(config_lib.load(path, overrides), stages=[rl])
        run_dir = Path(args.runs) / f"{name}{priced}_cost{cost}"
        loop.train(arm, run_dir, overwrite=True)
        results[f"RL, cost {cost}"] = describe(
            [play(run_dir, run_dir, seed) for seed in range(args.seeds)]
        )

    lines = [
        "| policy | level on rows of 1-2 / 3-4 / 5-6 / 7-8 digits | rank correlation of level "
        "with length | thinking tokens | held-out success |",
        "|---|---|---|---|---|",
    ]
    for label, r in results.items():
        levels = " / ".join(f"{v:.2f}" for v in r["levels"])
        lines.append(f"| {label} | {levels} | {cell(r['rank'])} | {cell(r['think'])} | "
                     f"{cell(r['success'])} |")  # fmt: skip
    out = plot_path("adaptive_rl", name)
    png = plot(results, out.with_stem(out.stem + priced))
    body = [f"Plot: `benchmarks/{png.name}`. Levels 0 none .. 3 high (budgets "
            f"{list(config_lib.load(path).env.overrides['effort_budgets'])}); {args.seeds} "
            f"seeds per cost (vmapped), mean (lowest-highest seed); {EPISODES} sampled "
            "held-out episodes per policy.", "", *lines]  # fmt: skip
    title = f"Adaptive effort learned by RL ({name}{', priced levels' if priced else ''})"
    record(section(title, "adaptive_rl.py", argv, body),
           args.no_record)  # fmt: skip
    return 0


def plot(results: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (trade, levels) = plt.subplots(1, 2, figsize=(9, 3.6))
    for label, r in results.items():
        think, success = np.asarray(r["think"]), np.asarray(r["success"])
        xerr = [[think.mean() - think.min()], [think.max() - think.mean()]]
        yerr = [[success.mean() - success.min()], [success.max() - success.mean()]]
        trade.errorbar(think.mean(), success.mean(), xerr=xerr, yerr=yerr, marker="o",
                       capsize=3, label=label)  # fmt: skip
        levels.plot(["1-2", "3-4", "5-6", "7-8"], r["levels"], marker=".", label=label)
    trade.set_xlabel("thinking tokens per episode")
    trade.set_ylabel("held-out success")
    trade.grid(alpha=0.3)
    levels.set_xlabel("digits in the row")
    levels.set_ylabel("effort level chosen (0 none .. 3 high)")
    levels.grid(alpha=0.3)
    levels.legend(fontsize=7)
    return save_figure(fig, out)


if __name__ == "__main__":
    raise SystemExit(main())
