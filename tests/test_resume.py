"""Runs that survive: exact resume after a real kill, the NaN guard, checkpoint errors, logs."""

import csv
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY as TRAIN_TINY  # the shared tiny model and batch

from agentic_jax import cli
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop, recorder, saved, update
from agentic_jax.train import setup as setup_lib
from agentic_jax.train.metrics_log import read_rows
from agentic_jax.train.setup import build

pytestmark = pytest.mark.timeout(600)

TINY = [*TRAIN_TINY, "sft.updates=4", "sft.num_episodes=16", "updates=6"]
DEFAULT = cli.resolve_config("kblookup_sft_rl")  # an oracle cold start, then GRPO
TIMING = ("wall_s", "tokens_per_s", "compile_s")  # the only fields a resumed run may change


def train_command(run_dir) -> list[str]:
    """The command line of a tiny training process writing ``run_dir``."""
    return [sys.executable, "-m", "agentic_jax.cli", "train", str(DEFAULT), *TINY, "--run-dir",
            str(run_dir)]  # fmt: skip


def learning_fields(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in TIMING}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    rows = loop.train(config_lib.load(DEFAULT, TINY), run_dir)
    return run_dir, rows


@pytest.mark.slow  # a real process killed and resumed: 40 s of the first stage's 10 minutes
def test_a_killed_run_resumes_exactly(uninterrupted, tmp_path):
    """Kill a real training process once its update-4 checkpoint exists (the SFT stage's end,
    so the kill lands in the GRPO stage's compilation or chunks), resume it, and compare
    every logged metric with the uninterrupted run."""
    _, reference = uninterrupted
    run_dir = tmp_path / "killed"
    command = train_command(run_dir)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not (run_dir / "checkpoints" / "4").is_dir():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.time() < deadline, "no checkpoint at update 4 within 300 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = read_rows(run_dir)
    assert before[-1]["update"] < reference[-1]["update"], "the run finished before the kill"

    resumed = loop.resume(run_dir)
    assert [r["update"] for r in resumed] == [r["update"] for r in reference]
    for ours, theirs in zip(resumed, reference, strict=True):
        assert learning_fields(ours) == learning_fields(theirs), ours["update"]
    assert [learning_fields(r) for r in read_rows(run_dir)] == [
        learning_fields(r) for r in reference
    ]


@pytest.mark.slow  # two training processes
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_stop_between_chunks_with_a_checkpoint(uninterrupted, tmp_path, stop):
    """Ctrl-C (SIGINT) or SIGTERM once the first chunk is logged: the run finishes its chunk,
    checkpoints it, prints one line with the ``--resume`` command and exits 128 + signal;
    resuming it gives the uninterrupted run's rows."""
    _, reference = uninterrupted
    run_dir = tmp_path / "stopped"
    command = train_command(run_dir)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    logged = lambda: len(read_rows(run_dir)) if (run_dir / "metrics.jsonl").is_file() else 0  # noqa: E731
    while logged() < 2:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.time() < deadline, "no logged chunk within 300 s"
        time.sleep(0.05)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=300)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 128 + stop, stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert lines[-1].startswith(f"stopped by {signal.Signals(stop).name} at update ")
    assert lines[-1].endswith(f"continue with `agentic-jax train --resume {run_dir}`")
    stopped_at = read_rows(run_dir)[-1]["update"]
    assert stopped_at < reference[-1]["update"], "the run finished before the signal"
    assert max(int(p.name) for p in (run_dir / "checkpoints").iterdir()) == stopped_at
    resumed = loop.resume(run_dir)
    assert [learning_fields(r) for r in resumed] == [learning_fields(r) for r in reference]


def test_metrics_go_to_jsonl_csv_and_tensorboard(uninterrupted):
    run_dir, rows = uninterrupted
    with (run_dir / "metrics.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [int(r["update"]) for r in table] == [r["update"] for r in rows]
    assert float(table[-1]["eval/success"]) == pytest.approx(rows[-1]["eval/success"])
    steps = [step for tag, step, _ in tensorboard_scalars(run_dir / "tensorboard")
             if tag == "eval/success"]  # fmt: skip
    assert steps == [r["update"] for r in rows]


def tensorboard_scalars(folder):
    """(tag, step, value) of every scalar in a folder's event files (TFRecord framing:
    length u64, its CRC u32, the Event proto, the proto's CRC u32)."""
    from tensorboardX.proto.event_pb2 import Event

    out = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            out += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    return out


def test_pass_at_k_of_a_saved_policy(uninterrupted):
    """N samples of each held-out task at the run's temperature: pass@1 is the mean success,
    and pass@k never falls as k grows."""
    scores, counts = saved.pass_at_k_of_run(uninterrupted[0], samples=4, tasks=8)
    assert list(scores) == [1, 2, 4] and counts.shape == (8,)
    assert ((counts >= 0) & (counts <= 4)).all()
    assert scores[1] == pytest.approx(counts.mean() / 4)
    assert scores[1] <= scores[2] <= scores[4]
    # An earlier kept checkpoint (the SFT stage's end) is another policy; bad choices are named.
    steps = recorder.saved_steps(uninterrupted[0])
    assert len(steps) >= 2
    early = saved.pass_at_k_of_run(uninterrupted[0], 4, 8, step=min(steps))[1]
    assert early.shape == (8,)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint of update 5 in .*; kept: \["):
        saved.pass_at_k_of_run(uninterrupted[0], 4, 8, step=5)
    with pytest.raises(ValueError, match="run_seed=1: the run has 1 seed"):
        saved.pass_at_k_of_run(uninterrupted[0], 4, 8, run_seed=1)


@pytest.mark.slow
def test_labelled_episodes_of_a_saved_policy(uninterrupted):
    """A monitor's data: every seed's sampled episodes, the agent's tokens marked, labelled by
    the environment's hack flags (none without a leak); the same seed, the same episodes."""
    episodes = saved.labelled_episodes(uninterrupted[0], 16, split=1, seed=3)
    assert episodes.transcripts.shape[0] == 16 and episodes.hacked.shape == (16,)
    assert episodes.agent.shape == episodes.transcripts.shape and episodes.agent.any()
    assert not episodes.hacked.any()  # KBLookup's default variant has no leak
    again = saved.labelled_episodes(uninterrupted[0], 16, split=1, seed=3)
    np.testing.assert_array_equal(episodes.transcripts, again.transcripts)
    other = saved.labelled_episodes(uninterrupted[0], 16, 1, 3, num_entities=2)  # a task key
    assert not np.array_equal(other.transcripts, episodes.transcripts)


def test_init_starts_a_run_from_a_saved_runs_parameters(uninterrupted, tmp_path):
    """``init=RUN``: every seed starts from the base's final parameters (seed 0's), also the
    KL reference; another model is a one-line error naming the first parameter that differs."""
    base_dir, _ = uninterrupted
    base = saved.load_run(base_dir)[2]
    config = config_lib.load(DEFAULT, [*TINY, f"init={base_dir}", "num_seeds=2"])
    state = loop.initial_state(build(config), setup_lib.seed_keys(config))
    for ours, theirs in zip(jax.tree.leaves(state.params), jax.tree.leaves(base.params),
                            strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(ours)[1], np.asarray(theirs)[0])
    with pytest.raises(
        ValueError,
        match=r"init=.*: its model differs from this run's at "
        r"\['params'\]\['block_0'\].* \(saved \(32,\), here \(64,\)\)",
    ):
        build(config_lib.load(DEFAULT, [*TINY, f"init={base_dir}", "model.d_model=64"]))
    with pytest.raises(FileNotFoundError, match="init=.*: no checkpoint in"):
        build(config_lib.load(DEFAULT, [*TINY, f"init={tmp_path}"]))


def test_rows_count_compile_time_apart(uninterrupted):
    """compile_s: the seconds spent compiling so far, within the wall time, never falling."""
    _, rows = uninterrupted
    compile_s = [row["compile_s"] for row in rows]
    assert compile_s[0] > 0 and compile_s == sorted(compile_s)
    assert all(row["compile_s"] < row["wall_s"] for row in rows)
    assert compile_s[-1] > compile_s[0]  # the chunk functions compiled after the first row


def test_keeps_the_newest_checkpoints(uninterrupted):
    run_dir, rows = uninterrupted
    steps = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [6, 8, 10]  # keep_checkpoints=3, one after every 2-update chunk


def test_starting_over_an_existing_run_is_refused(uninterrupted):
    run_dir, _ = uninterrupted
    with pytest.raises(FileExistsError, match="--resume"):
        loop.train(config_lib.load(DEFAULT, TINY), run_dir)


@pytest.fixture
def copied_run(uninterrupted, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(uninterrupted[0], run_dir)
    return run_dir


def test_resume_with_another_model_names_the_mismatch(copied_run):
    with pytest.raises(ValueError, match=r"model\.d_model \(was 32, now 64\)"):
        loop.resume(copied_run, ["model.d_model=64"])


def test_a_corrupt_checkpoint_is_a_clear_error_and_nothing_is_overwritten(copied_run):
    newest = copied_run / "checkpoints" / "10"
    for path in (newest / "state").rglob("*"):
        if path.is_file() and path.stat().st_size > 0:
            path.write_bytes(b"\0" * 8)
    metrics = (copied_run / "metrics.jsonl").read_text()
    with pytest.raises(ValueError, match=r"checkpoints/10 could not be restored.*update 8"):
        loop.resume(copied_run, ["updates=8"])
    assert (copied_run / "metrics.jsonl").read_text() == metrics


def test_a_corrupt_checkpoint_prints_one_line_and_no_shutdown_noise(copied_run):
    """Through the real command: the array data of the newest checkpoint zeroed. Orbax leaves
    TensorStore reads in flight, which used to print four "Event loop is closed" tracebacks
    at shutdown after the one-line error."""
    for path in (copied_run / "checkpoints" / "10" / "state").rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(b"\0" * 8)
    command = [sys.executable, "-m", "agentic_jax.cli", "train", "--resume", str(copied_run),
               "updates=8"]  # fmt: skip
    # TensorStore's reader threads race the process's exit; the command silences what they
    # print (cli._quiet_closed_loop), but one run in several under load still showed a
    # traceback once: up to three tries, of which one must be the clean line.
    for _ in range(3):
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        if len(lines) == 1:
            break
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: checkpoint {copied_run / 'checkpoints' / '10'} could not")
    assert lines[0].endswith("to use the previous one (update 8)")


def test_a_missing_checkpoint_is_a_clear_error(copied_run, capsys):
    """A run killed before its first checkpoint: resume and train both name --overwrite
    (they used to send the user to each other)."""
    shutil.rmtree(copied_run / "checkpoints")
    assert cli.main(["train", "--resume", str(copied_run)]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint folder" in err and f"--run-dir {copied_run} --overwrite" in err
    (copied_run / "checkpoints").mkdir()
    assert cli.main(["train", str(DEFAULT), *TINY, "--run-dir", str(copied_run)]) == 2
    err = capsys.readouterr().err
    assert "stopped before its first checkpoint (nothing to resume)" in err
    assert "start it over with --overwrite" in err


def test_resuming_with_fewer_updates_says_which_count_is_meant(copied_run):
    with pytest.raises(
        ValueError,
        match=r"update 10 \(all stages' updates counted together\), "
        r"beyond the 8 of the stages now \(sft 4, rl 4; `updates` counts",
    ):
        loop.resume(copied_run, ["updates=4"])


def test_metrics_lost_after_the_checkpoint_is_a_clear_error(copied_run):
    (copied_run / "metrics.jsonl").write_text("")
    with pytest.raises(
        ValueError,
        match="has no row for the checkpoint's update 10 .*: move "
        ".*checkpoints/10 away to resume from update 8, or start over",
    ):
        loop.resume(copied_run, ["updates=8"])


@pytest.mark.slow  # long: moved out of the first stage's 10 minutes
def test_a_planted_nan_stops_training_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch, capsys
):
    """Parameters turn NaN in the second chunk: exit code 3, a message naming the update and
    the parameter, and the checkpoint of update 2 left in place (finite)."""
    original = update.run_chunk

    def poisoned(setup, state, num_updates, stage_index):
        state, metrics, evals = original(setup, state, num_updates, stage_index)
        nan_if_late = jnp.where(state.update > 2, jnp.nan, 1.0)
        params = jax.tree.map(lambda p: p * nan_if_late, state.params)
        return state.replace(params=params), metrics, evals

    monkeypatch.setattr(update, "run_chunk", poisoned)
    run_dir = tmp_path / "nan"
    args = ["train", str(DEFAULT), *TINY, "updates=0", "--run-dir", str(run_dir)]
    assert cli.main(args) == 3
    error = capsys.readouterr().err
    assert "non-finite parameter" in error and "after update 4" in error
    assert "last good checkpoint, update 2" in error
    monkeypatch.setattr(update, "run_chunk", original)
    _, _, state = saved.load_run(run_dir)
    assert int(np.asarray(state.update)[0]) == 2
    assert recorder.first_non_finite_parameter(state.params) is None


def test_first_non_finite_names_the_earliest_update_and_loss():
    metrics = {
        "loss/policy": np.array([[0.1, 0.2, np.nan, 0.3]]),
        "loss/entropy": np.array([[0.1, np.inf, 0.2, 0.3]]),
        "train/success": np.array([[np.nan, 0.0, 0.0, 0.0]]),  # not a loss: ignored
    }
    assert recorder.first_non_finite(metrics, first_update=11) == (12, "loss/entropy")
    assert recorder.first_non_finite({"loss/policy": np.ones((2, 3))}, 1) is None


def test_wandb_without_the_package_is_a_clear_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    with pytest.raises(ValueError, match="pip install wandb"):
        loop.train(config_lib.load(DEFAULT, [*TINY, "logging.wandb=true"]), tmp_path / "w")


def test_checkpoint_interval_must_fit_the_chunks():
    with pytest.raises(config_lib.ConfigError, match="multiple of eval_interval=2"):
        config_lib.load(None, [*TINY, "checkpoint_interval=3"])


def test_metrics_rows_survive_a_cut_line(tmp_path):
    rows = [{"update": 0, "x": 1.0}, {"update": 2, "x": 2.0}]
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + '{"update": 4, "x'
    )
    assert read_rows(tmp_path) == rows
    assert os.path.exists(tmp_path / "metrics.jsonl")


def test_wandb_logs_every_row_offline_when_installed(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    config = config_lib.load(DEFAULT, [*TINY, "sft.updates=2", "updates=0", "logging.wandb=true"])
    rows = loop.train(config, tmp_path / "w")
    runs = list((tmp_path / "w" / "wandb").glob("offline-run-*"))
    assert len(rows) == 2 and len(runs) == 1 and list(runs[0].glob("*.wandb"))


def test_the_eta_is_per_stage_and_stage_tags_are_printed(tmp_path):
    """Before a stage has run, its speed is named as unknown (the eta used to assume the SFT
    stage's speed for RL); the [stage] tag of a progress line is text, not rich markup."""
    from rich.console import Console

    setup = build(config_lib.load(DEFAULT, TINY))  # sft 4 updates, then rl 6
    console = Console(record=True, width=200)
    run = recorder.RunRecorder(setup, tmp_path, console, time.time())
    assert run.eta() == "eta: sft, rl not yet known"
    run.update, run.stage_seconds[0], run.stage_trained[0] = 2, 10.0, 2
    assert run.eta() == "eta 10s + rl not yet known"
    run.update, run.stage_seconds[1], run.stage_trained[1] = 6, 4.0, 2
    assert run.eta() == "eta 8s"
    run.compiling("the rl stage's 2-update chunk", None)
    run.compiling("the rl stage's 2-update chunk", 1.5)
    row = {"update": 6, "stage": "rl", "eval/success": 0.5, "tokens_per_s": 1.0, "wall_s": 3.0}
    run._say(recorder.progress_line(row, 10, run.eta()))
    text = console.export_text()
    assert "compiling the rl stage's 2-update chunk ..." in text
    assert "compiled the rl stage's 2-update chunk in 1.5 s" in text
    assert "update     6/10 [rl]" in text and "| eta 8s" in text
    assert run.compile_s == 1.5
    run.manager.close()
    run.log.close()


def test_a_second_writer_on_a_live_run_directory_is_refused(tmp_path):
    """A run directory whose writer is alive refuses ``train`` (even with overwrite) and
    ``--resume``, naming that process; a writer that died leaves nothing in the way."""
    import subprocess

    from agentic_jax.train.writer import WRITER_FILE

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    live = subprocess.Popen(["sleep", "60"])
    try:
        (run_dir / WRITER_FILE).write_text(f"{live.pid}\n")
        config = config_lib.load(DEFAULT, ["sft.updates=1", "updates=1", "eval_interval=1"])
        with pytest.raises(FileExistsError, match=f"live process \\(pid {live.pid}\\)"):
            loop.train(config, run_dir, overwrite=True)
        with pytest.raises(FileExistsError, match=f"pid {live.pid}"):
            loop.resume(run_dir)
    finally:
        live.kill()
        live.wait()
    from agentic_jax.train.writer import live_writer

    assert live_writer(run_dir) is None  # the same file, its process gone
