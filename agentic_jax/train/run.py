"""The host loop around the jitted chunks: progress, metrics.jsonl, config and checkpoints.

A run directory holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one JSON
object per logged update, the first being the evaluation before any training) and
``checkpoints/`` (orbax).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import yaml
from rich.console import Console

from agentic_jax.train import config as config_lib
from agentic_jax.train.trainer import Trainer, TrainState

CHECKPOINT_DIR = "checkpoints"


def seed_keys(config: config_lib.Config) -> jax.Array:
    return jax.random.split(jax.random.PRNGKey(config.seed), config.num_seeds)


def _scalars(metrics: dict, prefix_filter: tuple[str, ...] = ()) -> dict[str, float]:
    """Mean over seeds (and over updates in a chunk) of every metric, as floats."""
    out = {}
    for name, value in metrics.items():
        if prefix_filter and not name.startswith(prefix_filter):
            continue
        out[name] = float(np.mean(np.asarray(value)))
    return out


def save_checkpoint(run_dir: Path, state: TrainState, step: int) -> None:
    with ocp.CheckpointManager(
        (run_dir / CHECKPOINT_DIR).absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=3),
    ) as manager:
        manager.save(step, args=ocp.args.StandardSave(state))
        manager.wait_until_finished()


def load_run(run_dir: str | Path) -> tuple[config_lib.Config, Trainer, TrainState]:
    """The config, trainer and latest checkpointed state of a run directory."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} not found: {run_dir} is not a run directory "
            "(create one with `agentic-jax train`)"
        )
    config = config_lib.load(config_path)
    trainer = Trainer(config)
    abstract = jax.eval_shape(jax.vmap(trainer.init), seed_keys(config))
    checkpoints = (run_dir / CHECKPOINT_DIR).absolute()
    with ocp.CheckpointManager(checkpoints) as manager:
        step = manager.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {checkpoints}")
        try:
            state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as error:  # orbax raises several types for a damaged checkpoint
            reason = str(error).split("\n")[0]
            reason = reason if len(reason) <= 300 else reason[:300] + " ..."
            raise ValueError(
                f"checkpoint {checkpoints / str(step)} could not be restored "
                f"(corrupt, from a different config or an older version of the code): {reason}"
            ) from None
    return config, trainer, state


def _number(value) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def progress_line(row: dict, total: int) -> str:
    return (
        f"update {row['update']:>5}/{total} [{row['stage']}]"
        f" | reward {_number(row.get('train/reward'))}"
        f" | held-out success {row['eval/success']:.3f}"
        f" | tool calls {_number(row.get('train/tool_calls', row.get('eval/tool_calls')))}"
        f" | think tokens {_number(row.get('train/think_tokens', row.get('eval/think_tokens')))}"
        f" | {row['tokens_per_s']:,.0f} tok/s | {row['wall_s']:.0f}s"
        + (
            f" | level {row['train/curriculum_level']:.0f}"
            if "train/curriculum_level" in row
            else ""
        )
    )


def train(config: config_lib.Config, run_dir: Path, console: Console | None = None) -> list[dict]:
    """Train as the config says, writing everything into ``run_dir``; returns the metric rows."""
    start = time.time()
    console = console or Console()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(config_lib.to_dict(config), sort_keys=False)
    )
    trainer = Trainer(config)
    init = jax.jit(jax.vmap(trainer.init))
    evaluate = jax.jit(jax.vmap(trainer.evaluate))
    chunk_fns: dict[tuple[int, int], object] = {}

    def compiled_chunk(state, num_updates, index):
        """The chunk function, compiled ahead of time so compilation is not timed as training."""
        if (num_updates, index) not in chunk_fns:
            fn = jax.jit(jax.vmap(lambda s: trainer.run_chunk(s, num_updates, index)))
            chunk_fns[(num_updates, index)] = fn.lower(state).compile()
        return chunk_fns[(num_updates, index)]

    state = init(seed_keys(config))
    rows: list[dict] = []
    metrics_file = (run_dir / "metrics.jsonl").open("w")

    def log(row: dict) -> None:
        rows.append(row)
        metrics_file.write(json.dumps(row) + "\n")
        metrics_file.flush()

    first = _scalars(evaluate(state))
    log({"update": 0, "stage": "init", "env_steps": 0, "wall_s": time.time() - start,
         "tokens_per_s": 0.0, "train/reward": None, **first})  # fmt: skip
    total = sum(stage.updates for stage in trainer.stages)
    console.print(progress_line(rows[-1], total), soft_wrap=True)
    env_steps = 0
    for index, stage in enumerate(trainer.stages):
        state = jax.jit(jax.vmap(lambda s, i=index: trainer.start_stage(s, i)))(state)
        done = 0
        while done < stage.updates:
            n = min(config.eval_interval, stage.updates - done)
            chunk_fn = compiled_chunk(state, n, index)
            chunk_start = time.time()
            state, metrics, eval_metrics = chunk_fn(state)
            jax.block_until_ready(state.params)
            seconds = time.time() - chunk_start
            done += n
            steps = float(np.asarray(metrics.pop("env_steps")).sum())  # over seeds and updates
            env_steps += int(steps)
            row = {
                "train/reward": None,  # no sampled episodes in the SFT stage
                "update": int(np.asarray(state.update).reshape(-1)[0]),
                "stage": stage.name,
                "env_steps": env_steps,
                "wall_s": time.time() - start,
                "tokens_per_s": steps / seconds,
                **_scalars(metrics),
                **_scalars(eval_metrics),
            }
            if config.num_seeds > 1:
                row["eval/success_per_seed"] = np.asarray(eval_metrics["eval/success"]).tolist()
            log(row)
            console.print(progress_line(row, total), soft_wrap=True)
            save_checkpoint(run_dir, state, row["update"])
    metrics_file.close()
    if not any(r["stage"] != "init" for r in rows):
        save_checkpoint(run_dir, state, 0)
    return rows


def evaluate_run(run_dir: str | Path, episodes: int | None = None) -> dict[str, float]:
    config, trainer, state = load_run(run_dir)
    if episodes:
        config = config_lib.from_dict(config_lib.to_dict(config) | {"eval_episodes": episodes})
        trainer = Trainer(config)
    return _scalars(jax.jit(jax.vmap(trainer.evaluate))(state))


def sample_transcripts(run_dir: str | Path, count: int = 3, split: int = 1, seed: int = 0):
    """Greedy episodes of the first seed's policy: (transcripts [count, T], success [count])."""
    from agentic_jax.rollout import rollout_episodes

    _, trainer, state = load_run(run_dir)
    first = jax.tree.map(lambda x: x[0], state)
    env_params = trainer.env_params.replace(split=split)

    @jax.jit
    def play(params, key):
        _, _, final = rollout_episodes(
            trainer.env, env_params, trainer.policy_step(params, greedy=True),
            trainer.empty_cache(count), key, count,
        )  # fmt: skip
        return final.transcript, final.success

    transcripts, success = play(first.params, jax.random.PRNGKey(seed))
    return np.asarray(transcripts), np.asarray(success)
