"""The host loop around the jitted chunks: progress, metrics.jsonl, config and checkpoints.

A run directory holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` and
``metrics.csv`` (one row per logged update, the first being the evaluation before any
training), ``tensorboard/`` event files and ``checkpoints/`` (orbax: the newest
``keep_checkpoints`` steps, each the full ``TrainState`` plus the config and progress).
``resume`` continues a stopped run from its newest checkpoint, exactly.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from agentic_jax.train import config as config_lib
from agentic_jax.train.metrics_log import METRICS_JSONL, TENSORBOARD_DIR, MetricsLog, read_rows
from agentic_jax.train.trainer import Trainer, TrainState, build_trainer

CHECKPOINT_DIR = "checkpoints"


def seed_keys(config: config_lib.Config) -> jax.Array:
    return jax.random.split(jax.random.PRNGKey(config.seed), config.num_seeds)


# Rollout statistics that are not means over finished episodes.
PER_ROLLOUT_STATS = ("train/episodes", "train/agent_tokens", "train/slot_utilisation",
                     "train/curriculum_level")  # fmt: skip


def chunk_mean(metrics: dict, name: str) -> np.ndarray:
    """A metric's mean over a chunk's updates (the last axis). Episode statistics
    (``train/...``) are weighted by the episodes each update finished: with ``stream``
    batching an update may finish none, and its 0 must not count."""
    value = np.asarray(metrics[name], np.float64)
    if name.startswith("train/") and name not in PER_ROLLOUT_STATS and "train/episodes" in metrics:
        episodes = np.asarray(metrics["train/episodes"], np.float64)
        return (value * episodes).sum(-1) / np.maximum(episodes.sum(-1), 1.0)
    return value.mean(-1) if value.ndim else value


def _scalars(metrics: dict) -> dict[str, float]:
    """Every metric as a float: its chunk mean (``chunk_mean``) averaged over seeds."""
    return {name: float(np.mean(chunk_mean(metrics, name))) for name in metrics}


class DivergenceError(RuntimeError):
    """A non-finite loss or parameter: training stopped, the last good checkpoint kept."""


def _checkpoint_manager(run_dir: Path, keep: int = 3) -> ocp.CheckpointManager:
    """Orbax writes each step into a temporary folder and renames it when complete, so a kill
    mid-save leaves no partial step behind (only the newest ``keep`` steps are kept)."""
    return ocp.CheckpointManager(
        (run_dir / CHECKPOINT_DIR).absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
    )


def save_checkpoint(manager: ocp.CheckpointManager, state: TrainState, meta: dict) -> None:
    """Parameters, optimiser state, PRNG keys, update counter (all in ``state``) and the
    config and progress (``meta``), as one orbax step named by the update counter."""
    step = int(meta["update"])
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))  # fmt: skip
    manager.wait_until_finished()


RESUMABLE_KEYS = ("updates", "eval_episodes", "checkpoint_interval", "keep_checkpoints",
                  "logging", "devices")  # fmt: skip


def config_mismatch(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two config dicts, as ``key (was A, now B)``."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_mismatch(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} (was {a!r}, now {b!r})")
    return out


def restore_checkpoint(run_dir: Path, trainer: Trainer) -> tuple[TrainState, dict]:
    """The newest checkpoint of a run: (state, meta). Clear errors for a missing, partial or
    corrupt one, or one whose config differs from ``trainer.config`` (beyond
    ``RESUMABLE_KEYS``), naming the folder, the mismatch and what to do."""
    folder = (run_dir / CHECKPOINT_DIR).absolute()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no checkpoint folder {folder}: the run stopped before its first checkpoint; "
            "start it again with `agentic-jax train`"
        )
    abstract = jax.eval_shape(jax.vmap(trainer.init), seed_keys(trainer.config))
    with ocp.CheckpointManager(folder) as manager:
        steps = manager.all_steps()
        if not steps:
            raise FileNotFoundError(
                f"no complete checkpoint in {folder}: the run stopped before its first "
                "checkpoint was written; start it again with `agentic-jax train`"
            )
        step = max(steps)
        where = folder / str(step)
        older = [s for s in steps if s != step]

        def restore(**items):
            try:
                return manager.restore(step, args=ocp.args.Composite(**items))
            except Exception as error:  # orbax raises several types for a damaged checkpoint
                reason = str(error).split("\n")[0]
                reason = reason if len(reason) <= 300 else reason[:300] + " ..."
                hint = (f"; move {where} away to use the previous one (update {max(older)})"
                        if older else "")  # fmt: skip
                raise ValueError(
                    f"checkpoint {where} could not be restored (partial, corrupt, or written "
                    f"by another version of the code): {reason}{hint}"
                ) from None

        meta = restore(meta=ocp.args.JsonRestore()).meta
        if not isinstance(meta, dict) or not {"update", "config"} <= set(meta):
            raise ValueError(f"checkpoint {where}: its metadata is damaged (got {meta!r})")
        saved, current = meta["config"], config_lib.to_dict(trainer.config)
        try:  # fill in fields added to the code since the checkpoint, with their defaults
            saved = config_lib.to_dict(config_lib.from_dict(saved))
        except config_lib.ConfigError:
            pass  # a field since removed: compared as it is
        mismatch = config_mismatch(
            {k: v for k, v in saved.items() if k not in RESUMABLE_KEYS},
            {k: v for k, v in current.items() if k not in RESUMABLE_KEYS},
        )
        if mismatch:
            raise ValueError(
                f"checkpoint {where} was written with another config: it differs in "
                f"{'; '.join(mismatch)}. Only {', '.join(RESUMABLE_KEYS)} may change on "
                "resume; start a new run (another --run-dir) for anything else"
            )
        state = restore(state=ocp.args.StandardRestore(abstract)).state
    return trainer.place(state), meta


def run_config(run_dir: Path, overrides: list[str] | None = None) -> config_lib.Config:
    """The resolved config a run directory was made with, plus ``overrides``."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} not found: {run_dir} is not a run directory "
            "(create one with `agentic-jax train`)"
        )
    return config_lib.load(config_path, overrides)


def load_run(run_dir: str | Path) -> tuple[config_lib.Config, Trainer, TrainState]:
    """The config, trainer and latest checkpointed state of a run directory."""
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    trainer = build_trainer(config)
    state, _ = restore_checkpoint(run_dir, trainer)
    return config, trainer, state


def _number(value) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def progress_line(row: dict, total: int, eta_s: float | None = None) -> str:
    return (
        f"update {row['update']:>5}/{total} [{row['stage']}]"
        f" | reward {_number(row.get('train/reward'))}"
        f" | held-out success {row['eval/success']:.3f}"
        f" | tool calls {_number(row.get('train/tool_calls', row.get('eval/tool_calls')))}"
        f" | think tokens {_number(row.get('train/think_tokens', row.get('eval/think_tokens')))}"
        f" | {row['tokens_per_s']:,.0f} tok/s | {row['wall_s']:.0f}s"
        + (f" | eta {eta_s:.0f}s" if eta_s is not None else "")
        + (
            f" | level {row['train/curriculum_level']:.0f}"
            if "train/curriculum_level" in row
            else ""
        )
    )


def first_non_finite(metrics: dict, first_update: int) -> tuple[int, str] | None:
    """The first (update, loss metric) that is not finite in a chunk's per-update metrics
    (arrays [seeds, updates]), or None."""
    worst = None
    for name, value in metrics.items():
        if not (name.startswith("loss/") or name == "sft/loss"):
            continue
        bad = ~np.isfinite(np.asarray(value, np.float64).reshape(-1, np.shape(value)[-1]))
        if bad.any():
            index = int(np.argmax(bad.any(axis=0)))
            if worst is None or index < worst[0]:
                worst = (index, name)
    return None if worst is None else (first_update + worst[0], worst[1])


def first_non_finite_parameter(params) -> str | None:
    """The path of the first parameter array holding a NaN or an infinity, or None."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    finite = jax.device_get([jnp.isfinite(leaf).all() for _, leaf in leaves])
    for (path, _), ok in zip(leaves, finite, strict=True):
        if not ok:
            return jax.tree_util.keystr(path)
    return None


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=console, disable=not console.is_terminal,
    )  # fmt: skip


def _prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    held = [p for p in (CHECKPOINT_DIR, METRICS_JSONL) if (run_dir / p).exists()]
    if held and not overwrite:
        raise FileExistsError(
            f"{run_dir} already holds a run ({', '.join(held)}): continue it with "
            f"`agentic-jax train --resume {run_dir}`, or choose another --run-dir"
        )
    for name in (CHECKPOINT_DIR, TENSORBOARD_DIR):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)


def train(
    config: config_lib.Config,
    run_dir: Path,
    console: Console | None = None,
    overwrite: bool = False,
    command: str | None = None,
) -> list[dict]:
    """Train as the config says, writing everything into ``run_dir``; returns the metric rows.

    A run directory that already holds a run is an error unless ``overwrite``. ``command``,
    if given, is written to ``command.txt``.
    """
    start = time.time()
    console = console or Console()
    trainer = build_trainer(
        config
    )  # builds the environments: config errors surface before compiling
    _prepare_run_dir(run_dir, overwrite)
    if command:
        (run_dir / "command.txt").write_text(command + "\n")
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(config_lib.to_dict(config), sort_keys=False)
    )
    log = MetricsLog(run_dir, config)
    state = trainer.place(jax.jit(jax.vmap(trainer.init))(seed_keys(config)))
    first = _scalars(jax.jit(jax.vmap(trainer.evaluate))(state))
    log.log({"update": 0, "stage": "init", "env_steps": 0, "wall_s": time.time() - start,
             "tokens_per_s": 0.0, "train/reward": None, **first})  # fmt: skip
    return _run_stages(trainer, state, log, run_dir, console, start)


def resume(
    run_dir: str | Path, overrides: list[str] | None = None, console: Console | None = None
) -> list[dict]:
    """Continue a stopped run from its newest checkpoint. From there on its metrics are
    those of an uninterrupted run with the same config (``wall_s`` and ``tokens_per_s``
    aside). ``overrides`` may change only ``RESUMABLE_KEYS`` (e.g. ``updates`` to extend)."""
    start = time.time()
    console = console or Console()
    run_dir = Path(run_dir)
    config = run_config(run_dir, overrides)
    trainer = build_trainer(config)
    state, meta = restore_checkpoint(run_dir, trainer)
    total = sum(stage.updates for stage in trainer.stages)
    if meta["update"] > total:
        raise ValueError(
            f"cannot resume {run_dir}: its checkpoint is at update {meta['update']}, beyond "
            f"the config's {total} updates"
        )
    kept = [row for row in read_rows(run_dir) if row["update"] <= meta["update"]]
    if not kept or kept[-1]["update"] != meta["update"]:
        raise ValueError(
            f"cannot resume {run_dir}: {run_dir / METRICS_JSONL} has no row for the "
            f"checkpoint's update {meta['update']} (the file was edited or lost)"
        )
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(config_lib.to_dict(config), sort_keys=False)
    )
    console.print(f"resuming {run_dir} from update {meta['update']}")
    log = MetricsLog(run_dir, config, kept)
    wall_offset = kept[-1]["wall_s"]
    return _run_stages(trainer, state, log, run_dir, console, start - wall_offset)


def _run_stages(trainer, state, log, run_dir, console, start) -> list[dict]:
    """The host loop: each stage's chunks from wherever ``state.update`` stands, logging,
    guarding against divergence and checkpointing between chunks."""
    config = trainer.config
    chunk_fns: dict[tuple[int, int], object] = {}

    def compiled_chunk(state, num_updates, index):
        """The chunk function, compiled ahead of time so compilation is not timed as training."""
        if (num_updates, index) not in chunk_fns:
            fn = jax.jit(jax.vmap(lambda s: trainer.run_chunk(s, num_updates, index)))
            chunk_fns[(num_updates, index)] = fn.lower(state).compile()
        return chunk_fns[(num_updates, index)]

    total = sum(stage.updates for stage in trainer.stages)
    update = int(np.asarray(state.update).reshape(-1)[0])
    env_steps = log.rows[-1]["env_steps"]
    interval = config.checkpoint_interval or config.eval_interval
    manager = _checkpoint_manager(run_dir, config.keep_checkpoints)
    last_saved = update

    def checkpoint(state, stage_name):
        save_checkpoint(manager, state, {
            "update": update, "stage": stage_name, "env_steps": env_steps,
            "config": config_lib.to_dict(config)})  # fmt: skip

    if manager.latest_step() is None:
        checkpoint(state, "init")
    console.print(progress_line(log.rows[-1], total), soft_wrap=True)
    training_s, trained = 0.0, 0
    try:
        with _progress(console) as progress:
            bar = progress.add_task("training", total=total, completed=update)
            stage_start = 0
            for index, stage in enumerate(trainer.stages):
                stage_end = stage_start + stage.updates
                if update == stage_start:
                    state = jax.jit(jax.vmap(lambda s, i=index: trainer.start_stage(s, i)))(state)
                while update < stage_end:
                    n = min(config.eval_interval, stage_end - update)
                    chunk_fn = compiled_chunk(state, n, index)
                    chunk_start = time.time()
                    state, metrics, eval_metrics = chunk_fn(state)
                    jax.block_until_ready(state.params)
                    seconds = time.time() - chunk_start
                    steps = float(np.asarray(metrics.pop("env_steps")).sum())  # seeds x updates
                    env_steps += int(steps)
                    bad = first_non_finite(metrics, update + 1)
                    update += n
                    training_s, trained = training_s + seconds, trained + n
                    row = {
                        "train/reward": None,  # no sampled episodes in the SFT stage
                        "update": update,
                        "stage": stage.name,
                        "env_steps": env_steps,
                        "wall_s": time.time() - start,
                        "tokens_per_s": steps / seconds,
                        **_scalars(metrics),
                        **_scalars(eval_metrics),
                    }
                    if config.num_seeds > 1:
                        per_seed = np.asarray(eval_metrics["eval/success"]).tolist()
                        row["eval/success_per_seed"] = per_seed
                    log.log(row)
                    eta = training_s / trained * (total - update)
                    progress.console.print(progress_line(row, total, eta), soft_wrap=True)
                    progress.update(bar, completed=update)
                    parameter = first_non_finite_parameter(state.params)
                    if bad or parameter:
                        what = (f"loss {bad[1]} at update {bad[0]}" if bad else
                                f"parameter {parameter} after update {update}")  # fmt: skip
                        raise DivergenceError(
                            f"training diverged: non-finite {what} (stage {stage.name}); "
                            f"stopped. The last good checkpoint, update {last_saved}, is kept "
                            f"in {run_dir / CHECKPOINT_DIR}. Lower the learning rate, raise "
                            "the clipping, or check the reward"
                        )
                    if update - last_saved >= interval or update == stage_end:
                        checkpoint(state, stage.name)
                        last_saved = update
                stage_start = stage_end  # a stage already done on resume runs no chunk
    finally:
        manager.close()
        log.close()
    return log.rows


def evaluate_run(run_dir: str | Path, episodes: int | None = None) -> dict[str, float]:
    config, trainer, state = load_run(run_dir)
    if episodes:
        config = config_lib.from_dict(config_lib.to_dict(config) | {"eval_episodes": episodes})
        trainer = build_trainer(config)
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
