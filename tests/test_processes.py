"""Two processes on one machine (``jax.distributed`` over localhost, CPU collectives over
gloo) train as one: the same metrics as a single process, one writer, and resume works."""

import json
import socket
import subprocess
import sys

import pytest

from agentic_jax import cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CONFIG = str(cli.resolve_config("kblookup_sft_rl"))
TINY = ["env.overrides.max_len=28", "model.d_model=32", "model.n_layers=1",
        "rollout.num_tasks=8", "rollout.group_size=4", "eval_episodes=32", "eval_interval=2",
        "sft.updates=4", "sft.num_episodes=16", "devices=0"]  # fmt: skip
TIMING = ("wall_s", "tokens_per_s", "compile_s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def train(run_dir, *items, processes=1, resume=False):
    """``agentic-jax train`` in ``processes`` processes sharing ``run_dir``; their outputs."""
    where = ["--resume", str(run_dir)] if resume else ["--run-dir", str(run_dir)]
    config = [] if resume else [CONFIG]
    command = [sys.executable, "-m", "agentic_jax.cli", "train", *config, *items, *where]
    if processes > 1:
        command += ["--processes", str(processes), "--coordinator", f"localhost:{free_port()}"]
    started = [subprocess.Popen([*command, "--process-id", str(i)] if processes > 1 else command,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for i in range(processes)]  # fmt: skip
    outputs = [p.communicate(timeout=600)[0] for p in started]
    for process, output in zip(started, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    return outputs


def rows(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]  # fmt: skip


def assert_close(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key, value in x.items():
            if isinstance(value, float):
                assert value == pytest.approx(y[key], rel=1e-5, abs=1e-6), (x["update"], key)
            else:
                assert value == y[key], (x["update"], key)


def test_two_processes_train_as_one_and_resume(tmp_path):
    single, pair = tmp_path / "single", tmp_path / "pair"
    train(single, *TINY, "updates=6")
    train(pair, *TINY, "updates=4", processes=2)
    assert sorted(p.name for p in pair.iterdir()) == sorted(p.name for p in single.iterdir())
    train(pair, "updates=6", processes=2, resume=True)  # continue from its checkpoint
    assert_close(rows(pair), rows(single))
