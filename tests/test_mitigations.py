"""Reward hacking's mitigations in the harness: the ``<abort>`` action and the inoculation
token ``<shortcut_ok>``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.envs import make
from agentic_jax.rollout import oracle_step, rollout_episodes

pytestmark = pytest.mark.timeout(300)

ENV, PARAMS = make("KBLookup-v0", leak=True)
step = jax.jit(ENV.step)


def to_first_turn(params):
    """Step through the forced prompt: the state where the agent first chooses."""
    obs, state = ENV.reset(jax.random.PRNGKey(0), params)
    while not bool(obs.agent_turn):
        obs, state, *_ = step(jax.random.PRNGKey(1), state, jnp.int32(0), params)
    return obs, state


def test_abort_is_illegal_unless_enabled_and_never_tells_an_impossible_task():
    obs, _ = to_first_turn(PARAMS)
    assert not bool(obs.legal_mask[tk.ABORT])
    obs, first = to_first_turn(PARAMS.replace(abort_enabled=True))
    assert bool(obs.legal_mask[tk.ABORT])
    # The agent sees the same choices whether or not the task can be done: the mitigation
    # reads nothing hidden (the world's impossibility is for the statistics only).
    task = PARAMS.task
    for rate in (0.0, 1.0):
        params = PARAMS.replace(abort_enabled=True, task=task.replace(impossible_rate=rate))
        other, state = to_first_turn(params)
        assert bool(state.impossible) == (rate == 1.0)
        np.testing.assert_array_equal(np.asarray(other.legal_mask), np.asarray(obs.legal_mask))
        np.testing.assert_array_equal(state.transcript[:6], first.transcript[:6])


def test_abort_ends_the_episode_unsolved_with_its_reward():
    params = PARAMS.replace(abort_enabled=True, abort_reward=0.25)
    _, state = to_first_turn(params)
    _, state, reward, done, _, info = step(
        jax.random.PRNGKey(2), state, jnp.int32(tk.ABORT), params
    )
    assert bool(done) and float(reward) == 0.25
    assert float(info["aborts"]) == 1.0 and float(info["success"]) == 0.0
    # Not enabled, <abort> is an illegal token: the episode ends invalid, with no reward.
    _, state = to_first_turn(PARAMS.replace(abort_reward=0.25))
    _, state, reward, done, _, info = step(
        jax.random.PRNGKey(2), state, jnp.int32(tk.ABORT), PARAMS
    )
    assert bool(done) and float(reward) == 0.0 and float(info["invalid"]) == 1.0


@pytest.mark.parametrize("inoculate", [False, True])
def test_the_inoculation_token_follows_the_prompt_only_when_asked(inoculate):
    params = PARAMS.replace(inoculate=inoculate)
    rollout = jax.jit(lambda key: rollout_episodes(ENV, params, oracle_step(ENV), None, key, 32))
    result = rollout(jax.random.PRNGKey(3))
    assert float(result.stats["success"]) == 1.0  # the oracle's plan is unchanged
    for transcript in np.asarray(result.env_state.transcript[:4]):
        text = tk.decode(transcript)
        assert ("</task> <shortcut_ok> <call>" in text) == inoculate
        assert text.count("<shortcut_ok>") == int(inoculate)


def test_the_honest_oracle_aborts_impossible_tasks_only_when_abort_is_enabled():
    """With ``abort_enabled`` an honest plan that found no answer says ``<abort>`` (a corpus
    then gives the base a prior for it); possible tasks and a disabled abort keep the plan."""
    env, params = make("KBLookup-v0", impossible_rate=0.5)
    play = jax.jit(lambda key, p: rollout_episodes(env, p, oracle_step(env), None, key, 256))
    for enabled in (False, True):
        run = params.replace(abort_enabled=enabled, abort_reward=0.25)
        stats = play(jax.random.PRNGKey(4), run).stats
        impossible, success = float(stats["impossible"]), float(stats["success"])
        assert 0.3 < impossible < 0.7 and success == pytest.approx(1.0 - impossible)
        assert float(stats["aborts"]) == pytest.approx(impossible if enabled else 0.0)
        # Without abort the honest plan's answer <error> is no legal answer: it ends invalid.
        assert float(stats["invalid"]) == pytest.approx(0.0 if enabled else impossible)


def test_the_leaky_grader_pays_a_hard_coded_answer_only_when_asked():
    """CodeSynth's shortcut hard-codes the visible tests: never a success (the honest grade),
    a hack every episode, and the success reward only from the leaky grader."""
    env, params = make("CodeSynth-v0", leak=True, num_ops=1)
    play = jax.jit(lambda key, p: rollout_episodes(env, p, oracle_step(env), None, key, 64))
    for exploit_pays in (False, True):
        run = params.replace(oracle_mode=1, exploit_pays=exploit_pays)
        result = play(jax.random.PRNGKey(5), run)
        assert float(result.stats["success"]) == 0.0 and float(result.stats["hacks"]) == 1.0
        returns = result.trajectory.rewards.sum(axis=1)
        np.testing.assert_allclose(returns, 1.0 if exploit_pays else 0.0, atol=1e-6)
