"""RLOO's leave-one-out advantages, by hand, and its registration."""

import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax.algos import ALGORITHMS
from agentic_jax.algos.rloo import leave_one_out_advantages
from agentic_jax.train import config as config_lib


def test_leave_one_out_advantages_by_hand():
    # group 0: rewards 1, 0, 0 -> baselines 0, 0.5, 0.5 -> 1, -0.5, -0.5
    # group 1: rewards 1, 1 (and a row with no episode) -> baselines 1, 1 -> 0, 0; absent 0
    rewards = jnp.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.7])
    group = jnp.array([0, 0, 0, 1, 1, 1])
    present = jnp.array([True, True, True, True, True, False])
    advantages = leave_one_out_advantages(rewards, group, 2, present)
    np.testing.assert_allclose(advantages, [1.0, -0.5, -0.5, 0.0, 0.0, 0.0], atol=1e-7)


def test_leave_one_out_is_g_over_g_minus_one_times_the_centred_reward():
    rewards = jnp.array([0.3, 1.0, 0.0, 0.5])
    advantages = leave_one_out_advantages(rewards, jnp.zeros(4, jnp.int32), 1, jnp.ones(4, bool))
    np.testing.assert_allclose(advantages, 4 / 3 * (rewards - rewards.mean()), rtol=1e-6)


def test_a_lone_episode_has_no_baseline_and_no_advantage():
    advantages = leave_one_out_advantages(jnp.array([1.0]), jnp.array([0]), 1, jnp.array([True]))
    np.testing.assert_allclose(advantages, [0.0])


def test_rloo_is_registered_and_needs_groups():
    assert ALGORITHMS["rloo"].grouped and not ALGORITHMS["rloo"].critic
    with pytest.raises(config_lib.ConfigError, match="algo.name=rloo needs rollout.batching"):
        config_lib.from_dict({"algo": {"name": "rloo"}, "rollout": {"batching": "stream"}})
