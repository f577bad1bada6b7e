"""Behaviour corpora: the mixture's weights hold over many draws, each behaviour changes the
plan as documented, and the default (all on the oracle) changes nothing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.behaviours import BEHAVIOURS, GUESS, NO_THINKING, ORACLE, WRONG_ANSWER, inside
from agentic_jax.envs import make
from agentic_jax.rollout import oracle_step, rollout_episodes

pytestmark = pytest.mark.timeout(300)


def starts(env, params, count, key=0):
    keys = jax.random.split(jax.random.PRNGKey(key), count)
    return jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)[1]


def one_hot(index):
    return tuple(float(i == index) for i in range(len(BEHAVIOURS)))


def test_the_mixture_weights_hold_in_10000_draws():
    """Each behaviour's share of 10,000 episodes, told apart by its plan (KBLookup: a search
    then an answer; a guess has no call; a wrong answer keeps the call)."""
    weights = (0.4, 0.3, 0.2, 0.0, 0.1)
    env, params = make("KBLookup-v0", behaviour_probs=weights)
    oracle_env, oracle_params = make("KBLookup-v0")
    state = starts(env, params, 10_000)
    oracle = starts(oracle_env, oracle_params, 10_000)
    same = np.asarray((state.task.plan == oracle.task.plan).all(axis=1))
    has_call = np.asarray((state.task.plan == tk.CALL_OPEN).any(axis=1))
    # A random answer can equal the right one (1 in 8 values): count those as the oracle's.
    guesses = ~has_call
    np.testing.assert_allclose(guesses.mean(), 0.2, atol=0.015)
    changed = ~same & has_call  # wrong answers (KBLookup has no thinking to drop)
    np.testing.assert_allclose(changed.mean(), 0.3 * (1 - 1 / 8), atol=0.02)
    np.testing.assert_allclose((same & has_call).mean(), 0.4 + 0.1 + 0.3 / 8, atol=0.02)


def test_the_default_leaves_every_plan_as_it_was():
    env, params = make("KBLookup-v0")
    explicit_env, explicit = make("KBLookup-v0", behaviour_probs=one_hot(ORACLE))
    a, b = starts(env, params, 64), starts(explicit_env, explicit, 64)
    assert np.array_equal(a.task.plan, b.task.plan)


def test_each_behaviour_changes_what_it_says():
    env, params = make("Tally-v0")
    oracle = starts(env, params, 256).task
    thinks = np.asarray((oracle.plan == tk.THINK_OPEN).any(axis=1))
    assert thinks.any()
    env, params = make("Tally-v0", behaviour_probs=one_hot(NO_THINKING))
    plain = starts(env, params, 256).task
    assert not np.asarray(plain.plan == tk.THINK_OPEN).any()
    answer = np.asarray(inside(oracle.plan, tk.ANSWER_OPEN, tk.ANSWER_CLOSE)
                        & (oracle.plan != tk.ANSWER_CLOSE))  # fmt: skip
    env, params = make("Tally-v0", behaviour_probs=one_hot(WRONG_ANSWER))
    wrong = starts(env, params, 256).task
    assert np.array_equal(np.asarray(wrong.plan)[~answer], np.asarray(oracle.plan)[~answer])
    assert (np.asarray(wrong.plan)[answer] != np.asarray(oracle.plan)[answer]).mean() > 0.5


@pytest.mark.parametrize("behaviour", range(len(BEHAVIOURS)), ids=BEHAVIOURS)
def test_every_behaviour_plays_legally(behaviour):
    """The oracle policy following a corrupted plan never writes an illegal token, and only
    the oracle itself always succeeds; a guess never calls a tool."""
    env, params = make("KBLookup-v0", behaviour_probs=one_hot(behaviour))
    rollout = jax.jit(lambda k: rollout_episodes(env, params, oracle_step(env), None, k, 256))(
        jax.random.PRNGKey(3)
    )
    assert float(rollout.stats["invalid"]) == 0.0
    success = float(rollout.stats["success"])
    assert success == 1.0 if behaviour in (ORACLE, NO_THINKING) else success < 0.5
    if behaviour == GUESS:
        assert float(rollout.stats["tool_calls"]) == 0.0


def test_weights_that_sum_to_zero_are_refused():
    with pytest.raises(ValueError, match="behaviour_probs=.* sum to 0"):
        make("KBLookup-v0", behaviour_probs=(0.0,) * len(BEHAVIOURS))
    with pytest.raises(ValueError, match="behaviour_probs=-1.0 is outside"):
        make("KBLookup-v0", behaviour_probs=(-1.0, 1.0, 0.0, 0.0, 0.0))
    with pytest.raises(TypeError, match="must be a list of 5 numbers"):
        make("KBLookup-v0", behaviour_probs=(1.0, 0.0))
    assert jnp.asarray(one_hot(0)).sum() == 1
