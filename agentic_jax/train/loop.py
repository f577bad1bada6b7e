"""The one stage -> chunk driver, and the runs built on it.

A pipeline is its stages' updates cut into chunks of ``eval_interval`` updates (a stage's
last chunk may be shorter), each followed by a held-out evaluation: ``schedule``. ``drive``
runs a schedule, and is the only such loop:

- ``make_train(config) -> train(key)`` (PureJaxRL's shape): traced, so ``jax.jit`` and
  ``jax.vmap`` of it compile the whole pipeline into one program; each run of equal chunks is
  one ``lax.scan``.
- ``train(config, run_dir)`` (what ``agentic-jax train`` runs) and ``resume(run_dir)``: on the
  host, chunk by chunk through one compile cache, with seeds vmapped; between chunks a
  ``RunRecorder`` logs a row, stops on a NaN and writes checkpoints.
- ``agentic-jax sweep`` drives each compile group of settings the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import chex
import jax
from rich.console import Console

from agentic_jax.train import update
from agentic_jax.train.checkpoint import CHECKPOINT_DIR, restore_checkpoint
from agentic_jax.train.config import Config, StageConfig
from agentic_jax.train.metrics_log import read_rows
from agentic_jax.train.overlap import OverlappedChunks
from agentic_jax.train.processes import is_primary, wait_for_every_process
from agentic_jax.train.recorder import (
    RunRecorder,
    check_room_for_checkpoints,
    prepare_run_dir,
    run_config,
    saved_steps,
    write_config,
)
from agentic_jax.train.setup import Hyperparams, Setup, build, seed_keys
from agentic_jax.train.writer import refuse_if_written, sole_writer


@dataclass(frozen=True)
class ChunkRun:
    """``count`` consecutive chunks of ``num_updates`` updates each, in one stage."""

    stage_index: int
    num_updates: int
    count: int
    starts_stage: bool  # the first of them begins the stage (fresh optimiser, ...)


def schedule(stages: list[StageConfig], eval_interval: int, done: int = 0) -> list[ChunkRun]:
    """The chunks still to run after ``done`` updates, grouped into runs of equal chunks."""
    runs, stage_start = [], 0
    for stage_index, stage in enumerate(stages):
        stage_end = stage_start + stage.updates
        position = max(done, stage_start)
        starts = position == stage_start
        left = stage_end - position
        if left > 0 and left >= eval_interval:
            runs.append(ChunkRun(stage_index, eval_interval, left // eval_interval, starts))
            starts = False
        if left > 0 and left % eval_interval:
            runs.append(ChunkRun(stage_index, left % eval_interval, 1, starts))
        stage_start = stage_end
    return runs


class TracedChunks:
    """The update functions as they are, for tracing into one program (``make_train``)."""

    def __init__(self, setup: Setup):
        self.setup = setup

    def start_stage(self, stage_index: int) -> Callable:
        return partial(update.start_stage, self.setup, stage_index=stage_index)

    def chunk(self, num_updates: int, stage_index: int, state) -> Callable:
        """The chunk function (``state``, the one it will run on, is for the compiled set)."""
        return partial(
            update.run_chunk, self.setup, num_updates=num_updates, stage_index=stage_index
        )


class CompiledChunks:
    """The update functions vmapped over seeds (or settings) and compiled, once per chunk
    shape: the host loop's compile cache. ``report(what, seconds)``, if given, is called when a
    chunk function starts compiling (``seconds`` None) and when it is done: compiling is the
    longest wait of a run, and a user should see it."""

    def __init__(self, setup: Setup, report: Callable[[str, float | None], None] | None = None):
        self.setup = setup
        self.cache: dict[tuple, Callable] = {}
        self.report = report or (lambda what, seconds: None)

    def start_stage(self, stage_index: int) -> Callable:
        key = ("start", stage_index)
        if key not in self.cache:
            self.cache[key] = jax.jit(jax.vmap(TracedChunks(self.setup).start_stage(stage_index)))
        return self.cache[key]

    def chunk(self, num_updates: int, stage_index: int, state) -> Callable:
        """The compiled chunk (compiled ahead of time, so compiling is not timed as training)."""
        key = ("chunk", num_updates, stage_index)
        if key not in self.cache:
            what = f"the {self.setup.stages[stage_index].name} stage's {num_updates}-update chunk"
            self.report(what, None)
            started = time.time()
            traced = TracedChunks(self.setup).chunk(num_updates, stage_index, state)
            self.cache[key] = jax.jit(jax.vmap(traced)).lower(state).compile()
            self.report(what, time.time() - started)
        return self.cache[key]


def host_chunks(setup: Setup, report: Callable[[str, float | None], None] | None = None):
    """The host loop's chunk functions: ``CompiledChunks``, or with ``rollout.overlap`` the
    actor and the learner pipelined on two devices (``overlap.OverlappedChunks``)."""
    if setup.overlap_devices is not None:
        return OverlappedChunks(setup, report)
    return CompiledChunks(setup, report)


AfterChunk = Callable[[object, ChunkRun, dict, dict, float], None]


def drive(setup: Setup, state, functions, done: int = 0, after_chunk: AfterChunk | None = None):
    """Run the pipeline's chunks from update ``done``: the one stage -> chunk loop.

    ``functions``: ``TracedChunks`` (traced: each run of equal chunks is a ``lax.scan`` and the
    outputs are returned, per stage a list of ``(metrics, evals)`` stacked per chunk) or
    ``host_chunks`` (host: chunk by chunk, ``after_chunk(state, run, metrics, evals, seconds)``
    after each). Returns (state, outputs).
    """
    outputs: list[list] = [[] for _ in setup.stages]
    for run in schedule(setup.stages, setup.config.eval_interval, done):
        if run.starts_stage:
            state = functions.start_stage(run.stage_index)(state)
        chunk = functions.chunk(run.num_updates, run.stage_index, state)
        if after_chunk is None:
            state, out = jax.lax.scan(
                lambda s, _, c=chunk: _as_carry(c(s)), state, None, length=run.count
            )
            outputs[run.stage_index].append(out)
            continue
        for _ in range(run.count):
            started = time.time()
            state, metrics, evals = chunk(state)
            jax.block_until_ready(state.params)
            after_chunk(state, run, metrics, evals, time.time() - started)
    return state, tuple(outputs)


def _as_carry(chunk_output):
    state, metrics, evals = chunk_output
    return state, (metrics, evals)


def make_train(config: Config):
    """PureJaxRL-style: ``train(key, hyper=None) -> (state, stage_metrics)``, jit- and
    vmap-able over both (``hyper``: ``Hyperparams``, by default the config's).

    ``stage_metrics`` has one entry per pipeline stage: a list of ``(metrics, evals)`` pairs,
    metrics stacked per chunk and update, evaluation metrics per chunk.
    """
    setup = build(config)

    def train(key: jax.Array, hyper: Hyperparams | None = None):
        chex.assert_shape(key, jax.random.PRNGKey(0).shape)
        state = update.init(setup, key, hyper)
        return drive(setup, state, TracedChunks(setup))

    return train


def initial_state(setup: Setup, keys: jax.Array, hyper: Hyperparams | None = None):
    """Each seed's (or setting's) fresh state, vmapped and placed on the mesh."""
    state = jax.jit(jax.vmap(partial(update.init, setup)))(keys, hyper)
    return setup.place(state)


def train(
    config: Config,
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
    setup = build(config)  # builds the environments: config errors surface before compiling
    run_dir = Path(run_dir)
    if is_primary():  # one process of a multi-process run writes the run directory
        refuse_if_written(run_dir)
        prepare_run_dir(run_dir, overwrite)
        check_room_for_checkpoints(run_dir, setup)
        if command:
            (run_dir / "command.txt").write_text(command + "\n")
        write_config(run_dir, config)
    wait_for_every_process("run directory ready")
    with sole_writer(run_dir) if is_primary() else nullcontext():
        state = initial_state(setup, seed_keys(config))
        recorder = RunRecorder(setup, run_dir, console or Console(), start)
        recorder.first_row(state)
        with recorder:
            chunks = host_chunks(setup, recorder.compiling)
            drive(setup, state, chunks, 0, recorder.after_chunk)
    return recorder.log.rows


def resume(
    run_dir: str | Path, overrides: list[str] | None = None, console: Console | None = None
) -> list[dict]:
    """Continue a stopped run from its newest checkpoint. From there on its metrics are
    those of an uninterrupted run with the same config (``wall_s`` and ``tokens_per_s``
    aside). ``overrides`` may change only ``checkpoint.RESUMABLE_KEYS`` (e.g. ``updates``)."""
    start = time.time()
    console = console or Console()
    run_dir = Path(run_dir)
    if is_primary():
        refuse_if_written(run_dir)
    config = run_config(run_dir, overrides)
    setup = build(config)
    state, meta = restore_checkpoint(run_dir, setup)
    if meta["update"] > setup.total_updates:
        stages = ", ".join(f"{stage.name} {stage.updates}" for stage in setup.stages)
        raise ValueError(
            f"cannot resume {run_dir}: its checkpoint is at update {meta['update']} (all "
            f"stages' updates counted together), beyond the {setup.total_updates} of the "
            f"stages now ({stages}; `updates` counts the RL stage's alone): raise it"
        )
    kept = [row for row in read_rows(run_dir) if row["update"] <= meta["update"]]
    if not kept or kept[-1]["update"] != meta["update"]:
        older = [step for step in saved_steps(run_dir) if step < meta["update"]]
        hint = (
            f"move {run_dir / CHECKPOINT_DIR / str(meta['update'])} away to resume from "
            f"update {max(older)}, or start over with --overwrite"
            if older
            else "start over with --overwrite"
        )
        raise ValueError(
            f"cannot resume {run_dir}: {run_dir / 'metrics.jsonl'} has no row for the "
            f"checkpoint's update {meta['update']} (the file was edited or lost): {hint}"
        )
    if is_primary():
        write_config(run_dir, config)
    console.print(f"resuming {run_dir} from update {meta['update']}")
    with sole_writer(run_dir) if is_primary() else nullcontext():
        recorder = RunRecorder(setup, run_dir, console, start - kept[-1]["wall_s"], kept)
        with recorder:
            compiled = host_chunks(setup, recorder.compiling)
            drive(setup, state, compiled, meta["update"], recorder.after_chunk)
    return recorder.log.rows
