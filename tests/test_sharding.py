"""Data parallelism: the batch axis split over 4 (fake CPU) devices gives the results of one.

``XLA_FLAGS=--xla_force_host_platform_device_count=4`` must be set before jax starts, so the
comparison runs in a subprocess: a tiny PPO run with stream batching (its environments'
carry stays split between updates) and an SFT stage, with ``devices=1`` and ``devices=4``,
compared in parameters and metrics.
"""

import json
import textwrap

import pytest
from fake_devices import report_on_devices

from agentic_jax.train import config as config_lib
from agentic_jax.train.setup import build

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from agentic_jax.train import config as config_lib
    from agentic_jax.train.loop import make_train

    assert jax.local_device_count() == 4, jax.devices()
    tiny = json.loads(sys.argv[1])
    extra = ["algo.name=ppo", "rollout.batching=stream", "rollout.num_envs=16",
             "rollout.rollout_len=16", "algo.num_minibatches=2", "sft.updates=2",
             "sft.num_episodes=16", "updates=2"]
    results = {}
    for devices in (1, 4):
        config = config_lib.load(None, tiny + extra + [f"devices={devices}"])
        key = jax.random.PRNGKey(0)
        train = jax.jit(make_train(config)).lower(key).compile()
        state, outputs = train(key)
        params = jax.tree.leaves(state.params)
        evals = [np.asarray(e["eval/success"]).tolist() for stage in outputs for _, e in stage]
        results[devices] = (params, evals)
    (p1, e1), (p4, e4) = results[1], results[4]
    transcript = state.env_state.transcript
    report = {
        # The batch really is split: the compiled program all-reduces gradients, and the
        # environments' carry stays split over the devices.
        "all_reduce": "all-reduce" in train.as_text(),
        "carry_devices": len(transcript.sharding.device_set),
        "carry_replicated": transcript.sharding.is_fully_replicated,
        "max_param_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(p1, p4)),
        "evals_1": e1, "evals_4": e4,
    }
    print("REPORT" + json.dumps(report))
    """
)


@pytest.mark.slow  # compiles the whole pipeline twice in a 4-device subprocess
@pytest.mark.timeout(600)
def test_four_devices_match_one():
    from conftest import TINY

    report = report_on_devices(SCRIPT, 4, json.dumps(TINY))
    assert report["all_reduce"]
    assert report["carry_devices"] == 4 and not report["carry_replicated"]
    assert report["max_param_diff"] < 1e-4, report
    for a, b in zip(report["evals_1"], report["evals_4"], strict=True):
        assert a == pytest.approx(b, abs=1.5 / 32), report  # at most one episode


def test_impossible_device_counts_are_clear_errors():
    from conftest import TINY

    with pytest.raises(ValueError, match="only 1 device"):
        build(config_lib.load(None, [*TINY, "devices=3"]))
