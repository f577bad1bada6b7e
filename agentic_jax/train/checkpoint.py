"""Checkpoints: orbax save and restore of the ``TrainState`` with the config and progress,
and the checks that make a resume safe (a missing, partial or corrupt checkpoint, or one
written with another config, is a one-line error that says what to do)."""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp

from agentic_jax.train import config as config_lib
from agentic_jax.train import update
from agentic_jax.train.base import CHECKPOINT_DIR
from agentic_jax.train.setup import Setup, TrainState, seed_keys


def checkpoint_manager(run_dir: Path, keep: int = 3) -> ocp.CheckpointManager:
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
    manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
    )
    manager.wait_until_finished()


RESUMABLE_KEYS = (
    "updates",
    "eval_episodes",
    "checkpoint_interval",
    "keep_checkpoints",
    "logging",
    "devices",
)


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


def abstract_state(setup: Setup):
    """The shapes and dtypes of a run's ``TrainState`` (every seed), computing nothing."""
    return jax.eval_shape(jax.vmap(lambda key: update.init(setup, key)), seed_keys(setup.config))


def check_same_config(meta, setup: Setup, where: Path) -> None:
    """Refuse a checkpoint whose metadata is damaged, or whose config differs from the run's
    beyond ``RESUMABLE_KEYS``."""
    if not isinstance(meta, dict) or not {"update", "config"} <= set(meta):
        raise ValueError(f"checkpoint {where}: its metadata is damaged (got {meta!r})")
    saved, current = meta["config"], config_lib.to_dict(setup.config)
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


def restore_checkpoint(
    run_dir: Path, setup: Setup, step: int | None = None
) -> tuple[TrainState, dict]:
    """The newest checkpoint of a run (or the one after update ``step``): (state, meta). Clear
    errors for a missing, partial or corrupt one, a step not kept, or one whose config
    differs from ``setup.config`` (beyond ``RESUMABLE_KEYS``), naming the folder, the
    mismatch and what to do."""
    folder = (run_dir / CHECKPOINT_DIR).absolute()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no checkpoint folder {folder}: the run stopped before its first checkpoint; "
            f"start it over with `agentic-jax train ... --run-dir {run_dir} --overwrite`"
        )
    abstract = abstract_state(setup)
    with ocp.CheckpointManager(folder) as manager:
        steps = manager.all_steps()
        if not steps:
            raise FileNotFoundError(
                f"no complete checkpoint in {folder}: the run stopped before its first "
                f"checkpoint was written; start it over with `agentic-jax train ... --run-dir "
                f"{run_dir} --overwrite`"
            )
        if step is not None and step not in steps:
            raise FileNotFoundError(
                f"no checkpoint of update {step} in {folder}; kept: {sorted(steps)}"
            )
        step = max(steps) if step is None else step
        where = folder / str(step)
        older = [s for s in steps if s != step]

        def restore(**items):
            try:
                return manager.restore(step, args=ocp.args.Composite(**items))
            except Exception as error:  # orbax raises several types for a damaged checkpoint
                reason = str(error).split("\n")[0]
                reason = reason if len(reason) <= 300 else reason[:300] + " ..."
                hint = (
                    f"; move {where} away to use the previous one (update {max(older)})"
                    if older
                    else ""
                )
                raise ValueError(
                    f"checkpoint {where} could not be restored (partial, corrupt, or written "
                    f"by another version of the code): {reason}{hint}"
                ) from None

        meta = restore(meta=ocp.args.JsonRestore()).meta
        check_same_config(meta, setup, where)
        state = restore(state=ocp.args.StandardRestore(abstract)).state
    return setup.place(state), meta
