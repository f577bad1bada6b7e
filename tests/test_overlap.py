"""Asynchronous acting (``rollout.overlap``): the actor and the learner pipelined on two
devices give the metrics of the same stale run on one device.

Two devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` before jax starts, so
the comparison runs in a subprocess: a tiny SFT + GRPO run with ``rollout.staleness=1``,
trained by the host loop (``loop.train``) with ``overlap`` off on one device and on over two.
"""

import json
import textwrap

import pytest
from fake_devices import report_on_devices

from agentic_jax.train import config as config_lib
from agentic_jax.train.setup import build

SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path
    import jax
    from rich.console import Console
    from agentic_jax.train import config as config_lib
    from agentic_jax.train.loop import train

    assert jax.local_device_count() == 2, jax.devices()
    tiny = json.loads(sys.argv[1])
    extra = ["rollout.staleness=1", "sft.updates=2", "sft.num_episodes=16", "updates=5",
             "eval_interval=3", "num_seeds=2"]
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, more in {"in_turn": ["devices=1"],
                           "overlap": ["devices=2", "rollout.overlap=true"]}.items():
            config = config_lib.load(None, tiny + extra + more)
            rows[name] = train(config, Path(scratch) / name, Console(quiet=True))
    print("REPORT" + json.dumps(rows))
    """
)


@pytest.mark.slow  # two short runs in a 2-device subprocess
@pytest.mark.timeout(600)
def test_overlapped_actor_and_learner_match_the_stale_run_in_turn():
    from conftest import TINY

    rows = report_on_devices(SCRIPT, 2, json.dumps(TINY))
    in_turn, overlap = rows["in_turn"], rows["overlap"]
    assert [r["update"] for r in in_turn] == [r["update"] for r in overlap] == [0, 2, 5, 7]
    compared = 0
    for a, b in zip(in_turn, overlap, strict=True):
        for key, value in a.items():
            if key in ("wall_s", "tokens_per_s", "compile_s") or not isinstance(value, float | int):
                continue
            assert b[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (a["update"], key)
            compared += 1
    assert compared > 40
    assert any("loss/is_weight" in r for r in overlap)  # the stale correction ran


@pytest.mark.parametrize(
    "overrides, complaint",
    [
        (["rollout.overlap=true", "devices=2"], "rollout.staleness >= 1"),
        (["rollout.overlap=true", "rollout.staleness=1"], "devices=2 with two devices"),
        (["rollout.overlap=true", "rollout.staleness=1", "rollout.batching=stream",
          "algo.name=ppo"], "rollout.batching=episodes"),
    ],
)  # fmt: skip
def test_overlap_refuses_what_it_cannot_pipeline(overrides, complaint):
    from conftest import TINY

    with pytest.raises(ValueError, match="rollout.overlap=true needs") as error:
        build(config_lib.load(None, [*TINY, *overrides]))
    assert complaint in str(error.value)
