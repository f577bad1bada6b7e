"""PPO on gymnax CartPole-v1 through our trainer, against the PureJaxRL-style reference."""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from agentic_jax.cli import resolve_config
from agentic_jax.train import config as config_lib
from agentic_jax.train.loop import make_train
from agentic_jax.train.setup import build

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import purejaxrl_ppo  # noqa: E402

UPDATES = 200  # 1e5 steps: both loops get far above a random policy's ~22


def last_tenth(return_sum, episodes) -> float:
    tail = len(return_sum) // 10
    return float(return_sum[-tail:].sum() / max(episodes[-tail:].sum(), 1))


@pytest.fixture(scope="module")
def both_returns():
    config = config_lib.load(
        resolve_config("cartpole_ppo"), [f"updates={UPDATES}", f"eval_interval={UPDATES}"]
    )
    _, outputs = jax.jit(make_train(config))(jax.random.PRNGKey(0))
    metrics, evals = outputs[0][0]
    reward = np.asarray(metrics["train/reward"]).reshape(-1)
    episodes = np.asarray(metrics["train/episodes"]).reshape(-1)
    ours = last_tenth(reward * episodes, episodes)
    reference = purejaxrl_ppo.make_train(
        purejaxrl_ppo.CARTPOLE | {"TOTAL_TIMESTEPS": UPDATES * 4 * 128}
    )
    _, ref_metrics = jax.jit(reference)(jax.random.PRNGKey(0))
    ref = last_tenth(np.asarray(ref_metrics["return_sum"]), np.asarray(ref_metrics["episodes"]))
    return ours, ref, float(np.asarray(evals["eval/return"]).reshape(-1)[-1])


@pytest.mark.slow  # a learning run, with the reference's beside it
def test_cartpole_learns_like_the_reference(both_returns):
    ours, reference, greedy = both_returns
    assert ours > 100 and reference > 100, both_returns
    assert 0.5 < ours / reference < 2.0, both_returns  # the same recipe, other random draws
    assert greedy > 100


@pytest.mark.parametrize(
    "overrides, message",
    [(["algo.name=grpo", "algo.gamma=1.0", "rollout.batching=episodes"],
      "an algorithm with a critic \\(ppo\\)"),
     (["model.kind=transformer"], "model.kind=mlp"),
     (["sft.updates=5"], "no sft stage")],
)  # fmt: skip
def test_gymnax_config_errors(overrides, message):
    config = config_lib.load(resolve_config("cartpole_ppo"), overrides)
    with pytest.raises(ValueError, match=message):
        build(config)


def test_mlp_on_a_token_environment_is_an_error():
    with pytest.raises(ValueError, match="model.kind=transformer"):
        build(config_lib.load(None, ["model.kind=mlp"]))
