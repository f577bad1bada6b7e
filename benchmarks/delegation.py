"""An orchestrator and its sub-agents (issue 20): three experiments, each a table and a plot.

    python benchmarks/delegation.py compare   # single agent against orchestrator + sub-agents
    python benchmarks/delegation.py credit    # the credit schemes, RL from one base
    python benchmarks/delegation.py habits    # lazy / serial use under outcome reward, and a fix
    python benchmarks/delegation.py plans     # the oracle's plans played exactly (seconds)

Options: ``--config`` (default ``kbgather_delegate``), ``--seeds`` (3, vmapped), ``--runs``
(where run directories go), ``--set KEY=VALUE ...`` (overrides for every arm), ``--no-record``.

- ``compare``: the config as written (SFT on the parallel delegating oracle, then GRPO) against
  a single agent on the same task with the same model and attention window, trained the same
  way on the single agent's oracle, whose transcript may be as long as the whole delegating
  system's (its total tokens; the room beyond its own plan is thinking budget, for notes).
  Reports held-out success, the orchestrator's context (tokens in its transcript), the
  critical path and total tokens.
- ``plans``: the oracle's plans played exactly: parallel against sequential delegation (the
  critical path at the same success) and the single agent's plan.
- ``credit``: one base (the config's SFT stage, ``--base-updates`` updates, one seed), then
  GRPO from it with each ``algo.credit`` (outcome / subtask / per_level).
- ``habits``: a base pretrained on a corpus of mixed habits (``oracle_mode: 3``: each
  episode's plan drawn from searching itself, parallel and sequential delegation), three
  entities per task and room for a sequential plan (``max_steps``), then GRPO with the
  outcome reward alone and with a parallelism term (``critical_path_cost``): does delegation
  collapse to none (the lazy agent) or to serial use, and does the term fix it?
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import jax
from results import plot_path, record, record_experiment, section, spread

from agentic_jax.cli import resolve_config
from agentic_jax.envs import make
from agentic_jax.plot import plot_runs
from agentic_jax.rollout import oracle_step, rollout_episodes
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop

PLANS = {0: "single agent (searches itself)", 1: "parallel delegation", 2: "sequential delegation"}


def oracle_plans(config: config_lib.Config, episodes: int = 1024) -> dict[int, dict]:
    """Each oracle plan played exactly on held-out tasks, with room for the longest
    (``max_steps`` at its default): its statistics."""
    overrides = {k: v for k, v in config.env.overrides.items() if k != "max_steps"}
    env, params = make(config.env.id, **overrides)
    out = {}
    for mode in PLANS:
        play = jax.jit(lambda key, p: rollout_episodes(env, p, oracle_step(env), None, key,
                                                       episodes))  # fmt: skip
        stats = play(jax.random.PRNGKey(0), params.replace(split=1, oracle_mode=mode)).stats
        out[mode] = {k: float(v) for k, v in stats.items()}
    return out


def single_agent(config: config_lib.Config, total_tokens: int) -> config_lib.Config:
    """The same task for one agent: no sub-agents, a transcript as long as the delegating
    system's total tokens, the room beyond the single agent's own plan as thinking budget."""
    overrides = {k: v for k, v in config.env.overrides.items()
                 if k not in ("sub_agents", "max_steps")}  # fmt: skip
    plain_len = make(config.env.id, **overrides)[0].max_len
    overrides |= {"max_len": max(total_tokens, plain_len),
                  "think_budget": max(total_tokens - plain_len, 0)}  # fmt: skip
    return dataclasses.replace(
        config,
        env=dataclasses.replace(config.env, overrides=overrides),
        sft=dataclasses.replace(config.sft, oracle_mode=0),
    )


def last_row(config, run_dir: Path) -> dict:
    return loop.train(config, run_dir, overwrite=True)[-1]


def compare(args, config, name) -> tuple[list[str], list[Path], list[str], tuple]:
    total = int(round(oracle_plans(config)[1]["total_tokens"]))
    arms = {"orchestrator + sub-agents": config, "single agent": single_agent(config, total)}
    rows, dirs = {}, []
    for label, arm in arms.items():
        dirs.append(Path(args.runs) / f"{name}_{label.split()[0]}")
        rows[label] = last_row(arm, dirs[-1])
    window = config.model.attention_window
    lines = [
        f"Attention window {window} for both; the single agent's transcript bound is the "
        f"delegating oracle's total tokens ({total}).",
        "",
        "| arm | held-out success | orchestrator context (tokens) | critical path (steps) | "
        "total tokens | sub-agents per episode |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in rows.items():
        critical = row.get("eval/critical_path", row["eval/length"] - 1)
        lines.append(
            f"| {label} | {spread(row, 'eval/success')} | {row['eval/length']:.1f} | "
            f"{critical:.1f} | {row.get('eval/total_tokens', row['eval/length']):.1f} | "
            f"{row.get('eval/sub_agents', 0.0):.2f} |"
        )
    return lines, dirs, list(rows), ("eval/success", "eval/length")


def plans(args, config, name) -> list[str]:
    """The oracle's plans played exactly: no training, no plot."""
    del args, name
    lines = ["The oracle's plans played exactly on 1,024 held-out tasks (the model's attention "
             "window does not apply: the oracle reads the world), with room for the longest "
             "plan (default `max_steps`).", "",
             "| plan | success | orchestrator context | critical path | total tokens |",
             "|---|---|---|---|---|"]  # fmt: skip
    for mode, stats in oracle_plans(config).items():
        lines.append(f"| {PLANS[mode]} | {stats['success']:.3f} | {stats['length']:.1f} | "
                     f"{stats['critical_path']:.1f} | {stats['total_tokens']:.1f} |")  # fmt: skip
    return lines


def credit(args, config, name):
    sft = dataclasses.replace(config.sft, updates=args.base_updates)
    base_config = dataclasses.replace(config, updates=0, num_seeds=1, sft=sft)
    base_dir = Path(args.runs) / f"{name}_credit_base"
    base = last_row(base_config, base_dir)
    rows, dirs = {}, []
    for scheme in ("outcome", "subtask", "per_level"):
        arm = dataclasses.replace(
            config, init=str(base_dir), sft=dataclasses.replace(config.sft, updates=0),
            algo=dataclasses.replace(config.algo, credit=scheme), updates=args.rl_updates,
            eval_interval=max(args.rl_updates // 4, 1),
        )  # fmt: skip
        dirs.append(Path(args.runs) / f"{name}_credit_{scheme}")
        rows[scheme] = last_row(arm, dirs[-1])
    lines = [
        f"Base: the config's SFT stage for {args.base_updates} updates, one seed: held-out "
        f"success {base['eval/success']:.3f}, sub-agents' own {base['eval/subagent_success']:.3f}. "
        f"Then {args.rl_updates} GRPO updates from it with each scheme.",
        "",
        "| credit | held-out success | sub-agents' own success | informative groups |",
        "|---|---|---|---|",
    ]
    for scheme, row in rows.items():
        lines.append(f"| {scheme} | {spread(row, 'eval/success')} | "
                     f"{spread(row, 'eval/subagent_success')} | "
                     f"{row.get('train/informative_groups', float('nan')):.3f} |")  # fmt: skip
    return lines, dirs, list(rows), ("eval/success", "eval/subagent_success",
                                     "train/informative_groups")  # fmt: skip


def habits(args, config, name):
    overrides = config.env.overrides | {
        "num_queried": 3, "num_attributes": 4, "sub_agents": 3, "max_steps": 116,
        "plan_probs": [1.0, 1.0, 1.0],
    }  # fmt: skip
    # Habits are a distribution: evaluate sampled episodes (greedy decoding shows only the mode).
    config = dataclasses.replace(
        config, env=dataclasses.replace(config.env, overrides=overrides), eval_sample=True,
        sft=dataclasses.replace(config.sft, oracle_mode=3, updates=args.base_updates),
    )  # fmt: skip
    base_dir = Path(args.runs) / f"{name}_habits_base"
    last_row(dataclasses.replace(config, updates=0, num_seeds=1), base_dir)
    arms = {"outcome only": {}, f"outcome + parallelism term ({args.path_cost}/step)":
            {"critical_path_cost": args.path_cost}}  # fmt: skip
    rows, dirs = {}, []
    for label, extra in arms.items():
        env = dataclasses.replace(config.env, overrides=overrides | extra)
        arm = dataclasses.replace(
            config, env=env, init=str(base_dir), sft=dataclasses.replace(config.sft, updates=0),
            updates=args.rl_updates, eval_interval=max(args.rl_updates // 4, 1),
        )  # fmt: skip
        dirs.append(Path(args.runs) / f"{name}_habits_{len(dirs)}")
        history = loop.train(arm, dirs[-1], overwrite=True)
        base, rows[label] = history[0], history[-1]  # update 0: the base, on these seeds' keys
    lines = [
        f"Three entities per task, 3 sub-agent slots, {overrides['max_steps']} steps per "
        f"episode (a sequential plan fits). Base: SFT on the mixed-habit corpus for "
        f"{args.base_updates} updates, one seed; every row sampled held-out episodes.",
        "",
        "| policy | held-out success | sub-agents per episode | delegate calls | sub-tasks per "
        "call | critical path |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in {"base": base, **rows}.items():
        calls = row["eval/delegate_calls"]
        per_call = row["eval/sub_agents"] / calls if calls else 0.0
        lines.append(
            f"| {label} | {spread(row, 'eval/success')} | {row['eval/sub_agents']:.2f} | "
            f"{calls:.2f} | {per_call:.2f} | {row['eval/critical_path']:.1f} |"
        )
    return lines, dirs, list(rows), ("eval/success", "eval/sub_agents", "eval/delegate_calls",
                                     "eval/critical_path")  # fmt: skip


EXPERIMENTS = {"compare": compare, "credit": credit, "habits": habits}  # each trains and plots
TITLES = {
    "compare": "Single agent against orchestrator and sub-agents",
    "credit": "Credit assignment across roles",
    "habits": "Lazy and serial delegation",
    "plans": "The delegating oracle's plans",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=[*EXPERIMENTS, "plans"])
    parser.add_argument("--config", default="kbgather_delegate")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--runs", default="runs/bench")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides for every arm")
    parser.add_argument("--base-updates", type=int, default=200, help="credit, habits: SFT")
    parser.add_argument("--rl-updates", type=int, default=60, help="credit, habits: GRPO")
    parser.add_argument("--path-cost", type=float, default=0.004, help="habits: per step")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    name = Path(args.config).stem
    config = config_lib.load(resolve_config(args.config), [f"num_seeds={args.seeds}", *args.set])
    if args.experiment == "plans":
        lines = plans(args, config, name)
        record(section(f"{TITLES['plans']} ({name})", "delegation.py", argv, lines),
               args.no_record)  # fmt: skip
        print("\n".join(lines))
        return 0
    lines, dirs, labels, metrics = EXPERIMENTS[args.experiment](args, config, name)
    png = plot_runs(dirs, plot_path(f"delegation_{args.experiment}", name), metrics, labels)
    episodes = ("sampled" if args.experiment == "habits" else "greedy") + " held-out episodes"
    record_experiment(f"{TITLES[args.experiment]} ({name})", "delegation.py", argv, png,
                      args.seeds, lines, args.no_record, episodes)  # fmt: skip
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
