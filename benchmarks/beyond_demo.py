"""RL beyond its demonstrator: SFT on a weak demonstrator's transcripts, then RL, against SFT
alone for as many updates; held-out and training-task success of each, over seeds.

    python benchmarks/beyond_demo.py                 # configs/beyond_demo.yaml, 3 seeds
    python benchmarks/beyond_demo.py CONFIG --seeds 3

The demonstrator is the config's pretraining corpus (its first stage's ``behaviour_probs``):
its own success is measured by playing it on 4,096 held-out episodes. Two arms, each with
``--seeds`` vmapped seeds: the config as written (pretrain, then RL) and SFT only (the
pretrain stage run for the total number of updates). The config evaluates the training
tasks beside the held-out ones (``env.eval_variants: {train: {split: 0}}``), so each arm's
train/test gap is read off its last row. Writes a table and a plot with bands
(``benchmarks/beyond_demo.png``; ``beyond_demo_<config>.png`` for another config) and appends
them to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import jax
from results import experiment_parser, plot_path, record_experiment, spread

from agentic_jax.cli import resolve_config
from agentic_jax.envs import make
from agentic_jax.plot import plot_runs
from agentic_jax.rollout import oracle_step, rollout_episodes
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop


def demonstrator_success(config: config_lib.Config, episodes: int = 4096) -> float:
    """Held-out success of the pretraining corpus itself: the behaviour mixture played out."""
    overrides = config.env.overrides | config.stages[0].env
    env, params = make(config.env.id, **overrides)
    rollout = jax.jit(lambda key: rollout_episodes(
        env, params.replace(split=1), oracle_step(env), None, key, episodes))  # fmt: skip
    return float(rollout(jax.random.PRNGKey(0)).stats["success"])


def sft_only(config: config_lib.Config) -> config_lib.Config:
    """The pretrain stage alone, for as many updates as the whole pipeline."""
    total = sum(stage.updates for stage in config.stages)
    return dataclasses.replace(
        config, stages=[dataclasses.replace(config.stages[0], updates=total)]
    )


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, "beyond_demo")
    args = parser.parse_args(argv)
    name = Path(args.config).stem  # a config name, or a file's

    config = config_lib.load(resolve_config(args.config), [f"num_seeds={args.seeds}"])
    if "train" not in config.env.eval_variants:
        raise ValueError("the config must evaluate training tasks: env.eval_variants.train")
    demo = demonstrator_success(config)
    arms = {"SFT then RL": config, "SFT only": sft_only(config)}
    runs, last = {}, {}
    for label, arm in arms.items():
        run_dir = Path(args.runs) / f"{name}_{label.replace(' ', '_')}"
        last[label] = loop.train(arm, run_dir, overwrite=True)[-1]
        runs[label] = run_dir
    png = plot_runs(list(runs.values()), plot_path("beyond_demo", name),
                    ("eval/success", "eval_train/success", "train/informative_groups"),
                    labels=list(runs))  # fmt: skip
    shutil.copy(png, Path(next(iter(runs.values()))) / png.name)

    lines = [
        f"Demonstrator (the pretraining corpus played out): {demo:.3f} held-out success.",
        "",
        "| arm | held-out success | training-task success | train - test | updates |",
        "|---|---|---|---|---|",
    ]
    for label, row in last.items():
        gap = row["eval_train/success"] - row["eval/success"]
        test, train = spread(row, "eval/success"), spread(row, "eval_train/success")
        lines.append(f"| {label} | {test} | {train} | {gap:+.3f} | {row['update']} |")
    record_experiment(f"RL beyond its demonstrator ({name})", "beyond_demo.py", argv, png,
                      args.seeds, lines, args.no_record,
                      "sampled episodes (eval_sample)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
