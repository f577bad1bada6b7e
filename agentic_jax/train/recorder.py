"""What the host loop does between chunks: a metric row, the progress line, the NaN guard
and checkpoints (``RunRecorder.after_chunk``), for one run directory.

A run directory holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` and
``metrics.csv`` (one row per logged update, the first being the evaluation before any
training), ``tensorboard/`` event files and ``checkpoints/`` (orbax: the newest
``keep_checkpoints`` steps, each the full ``TrainState`` plus the config and progress).
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from agentic_jax.stats import chunk_scalars
from agentic_jax.train import config as config_lib
from agentic_jax.train import update
from agentic_jax.train.checkpoint import (
    CHECKPOINT_DIR,
    abstract_state,
    checkpoint_manager,
    save_checkpoint,
)
from agentic_jax.train.metrics_log import METRICS_JSONL, TENSORBOARD_DIR, MetricsLog
from agentic_jax.train.paths import OutputPathError, check_free_space, writable_dir
from agentic_jax.train.setup import Setup


class DivergenceError(RuntimeError):
    """A non-finite loss or parameter: training stopped, the last good checkpoint kept."""


class RunStopped(RuntimeError):
    """Ctrl-C or SIGTERM: the run stopped between chunks with a checkpoint of where it was."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.exit_code = 128 + signal_number  # the shell's code for death by that signal


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """A run directory ready to be written: writable, and holding no run unless
    ``overwrite`` (then the old run's checkpoints and event files are removed)."""
    held = [p for p in (CHECKPOINT_DIR, METRICS_JSONL) if (run_dir / p).exists()]
    if held and not overwrite and not saved_steps(run_dir):
        raise FileExistsError(
            f"{run_dir} holds a run that stopped before its first checkpoint (nothing to "
            "resume): start it over with --overwrite, or choose another --run-dir"
        )
    if held and not overwrite:
        raise FileExistsError(
            f"{run_dir} already holds a run ({', '.join(held)}): continue it with "
            f"`agentic-jax train --resume {run_dir}`, start it over with --overwrite, or "
            "choose another --run-dir"
        )
    writable_dir(run_dir, "--run-dir")
    for name in (CHECKPOINT_DIR, TENSORBOARD_DIR):
        shutil.rmtree(run_dir / name, ignore_errors=True)


def saved_steps(run_dir: Path) -> list[int]:
    """The updates of a run's complete checkpoints (orbax renames a step's folder to its
    number only once it is written)."""
    folder = run_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def check_room_for_checkpoints(run_dir: Path, setup: Setup) -> None:
    """Refuse to start a run whose checkpoints would not fit on its disk (the newest
    ``keep_checkpoints`` and one being written, with a margin for the logs)."""
    leaves = jax.tree.leaves(abstract_state(setup))
    state_bytes = sum(leaf.size * leaf.dtype.itemsize for leaf in leaves)
    needed = (setup.config.keep_checkpoints + 1) * state_bytes + 16 * 2**20
    check_free_space(run_dir, needed, f"{setup.config.keep_checkpoints + 1} checkpoints")


def run_config(run_dir: Path, overrides: list[str] | None = None) -> config_lib.Config:
    """The resolved config a run directory was made with, plus ``overrides``."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} not found: {run_dir} is not a run directory "
            "(create one with `agentic-jax train`)"
        )
    return config_lib.load(config_path, overrides)


def write_config(run_dir: Path, config: config_lib.Config) -> None:
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(config_lib.to_dict(config), sort_keys=False)
    )


def _number(value) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def progress_line(row: dict, total: int, eta: str = "") -> str:
    """One logged row as the console shows it (plain text: print it with markup off)."""
    return (
        f"update {row['update']:>5}/{total} [{row['stage']}]"
        f" | reward {_number(row.get('train/reward'))}"
        f" | held-out success {row['eval/success']:.3f}"
        f" | tool calls {_number(row.get('train/tool_calls', row.get('eval/tool_calls')))}"
        f" | think tokens {_number(row.get('train/think_tokens', row.get('eval/think_tokens')))}"
        f" | {row['tokens_per_s']:,.0f} tok/s | {row['wall_s']:.0f}s"
        + (f" | {eta}" if eta else "")
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
    """The live bar; its eta is ours (per stage): rich's own needs an update every few seconds
    and showed -:--:-- for chunks longer than that."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),
        console=console,
        disable=not console.is_terminal,
    )


class RunRecorder:
    """The host side of one run: its metric log, checkpoints and progress.

    Use it as a context manager around ``loop.drive(..., recorder.after_chunk)``: it closes
    the checkpoint manager and the log however the run ends.
    """

    def __init__(
        self,
        setup: Setup,
        run_dir: Path,
        console: Console,
        start: float,
        kept_rows: list[dict] | None = None,
    ):
        self.setup, self.run_dir, self.console, self.start = setup, run_dir, console, start
        config = setup.config
        self.log = MetricsLog(run_dir, config, kept_rows)
        self.manager = checkpoint_manager(run_dir, config.keep_checkpoints)
        self.update = kept_rows[-1]["update"] if kept_rows else 0
        self.env_steps = kept_rows[-1]["env_steps"] if kept_rows else 0
        self.last_saved = self.update
        self.interval = config.checkpoint_interval or config.eval_interval
        self.stage_ends = np.cumsum([stage.updates for stage in setup.stages])
        self.stage_seconds = np.zeros(len(setup.stages))  # training time (no compiling)
        self.stage_trained = np.zeros(len(setup.stages), int)  # updates timed
        self.compile_s = kept_rows[-1].get("compile_s", 0.0) if kept_rows else 0.0
        self.progress: Progress | None = None  # the live bar, while the run is entered

    def first_row(self, state) -> None:
        """The evaluation before any training (update 0), and the ``init`` checkpoint."""
        self.compiling("the evaluation", None)
        started = time.time()
        evaluate = jax.jit(jax.vmap(lambda s: update.evaluate(self.setup, s))).lower(state)
        evaluate = evaluate.compile()
        self.compiling("the evaluation", time.time() - started)
        first = chunk_scalars(evaluate(state))
        self.log.log(
            {
                "update": 0,
                "stage": "init",
                "env_steps": 0,
                "wall_s": time.time() - self.start,
                "tokens_per_s": 0.0,
                "compile_s": self.compile_s,
                "train/reward": None,
                **first,
            }
        )
        self.checkpoint(state, "init")

    def compiling(self, what: str, seconds: float | None) -> None:
        """Show a compile (``CompiledChunks``' report): when it starts and how long it took;
        the rows' ``compile_s`` counts it apart from training."""
        if seconds is None:
            self._say(f"compiling {what} ...")
            return
        self.compile_s += seconds
        self._say(f"compiled {what} in {seconds:.1f} s")

    def _say(self, line: str) -> None:
        console = self.progress.console if self.progress is not None else self.console
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    def eta(self) -> str:
        """Time left from each stage's own speed; a stage not yet run is named as unknown
        (its speed, and its compiling)."""
        known, unknown = 0.0, []
        for index, stage in enumerate(self.setup.stages):
            end = int(self.stage_ends[index])
            left = end - max(self.update, end - stage.updates)
            if left <= 0:
                continue
            if self.stage_trained[index]:
                known += self.stage_seconds[index] / self.stage_trained[index] * left
            else:
                unknown.append(stage.name)
        if not unknown:
            return f"eta {known:.0f}s" if known else ""
        names = f"{', '.join(unknown)} not yet known"
        return f"eta {known:.0f}s + {names}" if known >= 0.5 else f"eta: {names}"

    def checkpoint(self, state, stage_name: str) -> None:
        meta = {
            "update": self.update,
            "stage": stage_name,
            "env_steps": self.env_steps,
            "config": config_lib.to_dict(self.setup.config),
        }
        try:
            save_checkpoint(self.manager, state, meta)
        except Exception as error:  # orbax wraps a full disk in several exception types
            if "No space left on device" not in str(error):
                raise
            raise OutputPathError(
                f"{self.run_dir / CHECKPOINT_DIR}: no space left on the device while writing "
                f"the checkpoint of update {self.update}; the previous one, update "
                f"{self.last_saved}, is kept. Free some space and resume with "
                f"`agentic-jax train --resume {self.run_dir}`"
            ) from None
        self.last_saved = self.update

    def _request_stop(self, signal_number: int, frame) -> None:
        """The first Ctrl-C or SIGTERM: stop after the running chunk; a second: at once."""
        del frame
        if self.stop_signal is not None:
            raise KeyboardInterrupt
        self.stop_signal = signal_number
        sys.stderr.write(
            f"\n{signal.Signals(signal_number).name}: stopping after the running chunk, with a "
            "checkpoint (press Ctrl-C again to stop at once, losing the chunk)\n"
        )

    def __enter__(self) -> RunRecorder:
        self.stop_signal, self.handlers = None, {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.handlers[number] = signal.signal(number, self._request_stop)
        total = self.setup.total_updates
        self._say(progress_line(self.log.rows[-1], total))
        self.absl_level = logging.getLogger("absl").level
        logging.getLogger("absl").setLevel(logging.ERROR)  # orbax's waits broke the bar's line
        self.progress = _progress(self.console).__enter__()
        self.bar = self.progress.add_task(
            "training", total=total, completed=self.update, eta=self.eta()
        )
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self.handlers.items():
            signal.signal(number, handler)
        self.progress.__exit__(*exc)
        logging.getLogger("absl").setLevel(self.absl_level)
        self.manager.close()
        self.log.close()

    def after_chunk(self, state, run, metrics: dict, evals: dict, seconds: float) -> None:
        """Log the chunk's row, stop on a non-finite loss or parameter, checkpoint."""
        setup, config = self.setup, self.setup.config
        stage = setup.stages[run.stage_index]
        steps = float(np.asarray(metrics.pop("env_steps")).sum())  # seeds x updates
        self.env_steps += int(steps)
        bad = first_non_finite(metrics, self.update + 1)
        self.update += run.num_updates
        self.stage_seconds[run.stage_index] += seconds
        self.stage_trained[run.stage_index] += run.num_updates
        row = {
            "train/reward": None,  # no sampled episodes in an SFT stage
            "update": self.update,
            "stage": stage.name,
            "env_steps": self.env_steps,
            "wall_s": time.time() - self.start,
            "tokens_per_s": steps / seconds,
            "compile_s": self.compile_s,
            **chunk_scalars(metrics),
            **chunk_scalars(evals),
        }
        if config.num_seeds > 1:  # every evaluation metric per seed too (for the spread)
            for key in evals:
                row[f"{key}_per_seed"] = np.asarray(evals[key]).tolist()
        self.log.log(row)
        total = setup.total_updates
        eta = self.eta()
        self._say(progress_line(row, total, eta))
        self.progress.update(self.bar, completed=self.update, eta=eta)
        parameter = first_non_finite_parameter(state.params)
        if bad or parameter:
            what = (
                f"loss {bad[1]} at update {bad[0]}"
                if bad
                else f"parameter {parameter} after update {self.update}"
            )
            raise DivergenceError(
                f"training diverged: non-finite {what} (stage {stage.name}); stopped. The "
                f"last good checkpoint, update {self.last_saved}, is kept in "
                f"{self.run_dir / CHECKPOINT_DIR}. Lower the learning rate, raise the "
                "clipping, or check the reward"
            )
        stage_end = int(self.stage_ends[run.stage_index])
        stopping = self.stop_signal is not None and self.update < total
        if self.update - self.last_saved >= self.interval or self.update == stage_end or stopping:
            self.checkpoint(state, stage.name)
        if stopping:
            raise RunStopped(
                f"stopped by {signal.Signals(self.stop_signal).name} at update {self.update}"
                f"/{total}, with a checkpoint; continue with "
                f"`agentic-jax train --resume {self.run_dir}`",
                self.stop_signal,
            )
