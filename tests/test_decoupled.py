"""Decoupled (stale) rollouts: the staleness buffer and the off-policy corrections."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from agentic_jax.algos import corrections
from agentic_jax.train import update
from agentic_jax.train.setup import build


def test_truncated_is_weights_and_loss_by_hand():
    log_pi = jnp.log(jnp.array([[0.5, 0.2, 0.9]]))
    log_mu = jnp.log(jnp.array([[0.25, 0.4, 0.3]]))
    weights = corrections.truncated_is_weights(log_pi, log_mu, cap=2.5)
    np.testing.assert_allclose(weights, [[2.0, 0.5, 2.5]], rtol=1e-6)  # 3.0 capped at 2.5
    adv = jnp.array([[1.0, -2.0, 0.5]])
    mask = jnp.array([[True, True, False]])
    loss = corrections.truncated_is_policy_loss(log_pi, log_mu, adv, mask, 2.5)
    expected = -(2.0 * 1.0 * math.log(0.5) + 0.5 * -2.0 * math.log(0.2)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # The weight carries no gradient: d loss / d log_pi = -w * A / count.
    grad = jax.grad(lambda lp: corrections.truncated_is_policy_loss(lp, log_mu, adv, mask, 2.5))(
        log_pi
    )
    np.testing.assert_allclose(grad, [[-1.0, 0.5, 0.0]], rtol=1e-6)


def test_clipped_policy_loss_weights():
    log_probs = jnp.zeros((1, 2))
    adv = jnp.array([[1.0, 2.0]])
    mask = jnp.ones((1, 2), bool)
    plain, _ = corrections.clipped_policy_loss(log_probs, log_probs, adv, mask, 0.2, 0.2)
    weighted, _ = corrections.clipped_policy_loss(
        log_probs, log_probs, adv, mask, 0.2, 0.2, weights=jnp.array([[0.5, 2.0]])
    )
    assert float(plain) == pytest.approx(-1.5)  # ratio 1: -(1 + 2) / 2
    assert float(weighted) == pytest.approx(-(0.5 * 1 + 2.0 * 2) / 2)


def updates(config, count):
    setup = build(config)
    state = update.start_stage(setup, update.init(setup, jax.random.PRNGKey(0)), 0)
    step = jax.jit(lambda s: update.rl_update(setup, 0, s))
    states = [state]
    for _ in range(count):
        states.append(step(states[-1])[0])
    return states


def first_leaf(tree):
    return np.asarray(jax.tree.leaves(tree)[0])


@pytest.fixture(scope="module")
def on_policy():
    return updates(tiny("updates=2"), 1)


@pytest.fixture(scope="module")
def stale_decoupled():
    return updates(tiny("rollout.staleness=2", "updates=3"), 3)


def test_staleness_buffer_holds_the_last_k_parameters(stale_decoupled):
    """With k = 2, after 3 updates the buffer is [params after update 1, after update 2]:
    the next rollout acts with parameters two updates old."""
    states = stale_decoupled
    buffer = first_leaf(states[3].stale_params)
    assert buffer.shape[0] == 2
    np.testing.assert_array_equal(buffer[0], first_leaf(states[1].params))
    np.testing.assert_array_equal(buffer[1], first_leaf(states[2].params))
    # Before any update the buffer holds the initial parameters (staleness bounded by k).
    np.testing.assert_array_equal(
        first_leaf(states[0].stale_params)[1], first_leaf(states[0].params)
    )


def test_first_stale_update_equals_the_on_policy_one(on_policy, stale_decoupled):
    """The first update acts with the initial parameters either way; decoupled PPO's weights
    are then 1, so it equals the on-policy update (float noise aside)."""
    np.testing.assert_allclose(
        first_leaf(stale_decoupled[1].params), first_leaf(on_policy[1].params), atol=1e-5
    )


def test_truncated_is_trains(on_policy):
    before = first_leaf(on_policy[0].params)
    stale = updates(tiny("rollout.staleness=1", "algo.off_policy=tis", "updates=2"), 1)[1]
    assert np.all(np.isfinite(first_leaf(stale.params)))
    assert not np.allclose(first_leaf(stale.params), before)
