"""Effort levels: ``<effort> LEVEL`` prompts, per-level thinking budgets, adaptive effort."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.envs import make
from agentic_jax.harness import Phase
from agentic_jax.rollout import oracle_step, random_step, rollout_episodes

pytestmark = pytest.mark.timeout(300)

BUDGETS = [0, 4, 8, 21]  # none, low, mid, high; 21 fits every two-digit scratchpad
ENV, PARAMS = make(
    "Arithmetic-v0", effort=True, tools_enabled=False, oracle_mode=1, effort_budgets=BUDGETS
)
LEVEL_IDS = tk.ids(tk.EFFORT_LEVELS)


def one_hot(level):
    return tuple(float(i == level) for i in range(4))


@functools.partial(jax.jit, static_argnames=("oracle",))
def play(params, key, oracle=True):
    policy = oracle_step(ENV) if oracle else random_step
    rollout = rollout_episodes(ENV, params, policy, None, key, 128)
    return rollout.trajectory, rollout.stats, rollout.env_state


def test_fixed_level_is_written_after_the_prompt_and_sets_the_budget():
    for level, budget in enumerate(BUDGETS):
        params = PARAMS.replace(effort_probs=one_hot(level))
        _, stats, final = play(params, jax.random.PRNGKey(level))
        transcript = np.asarray(final.transcript)
        close = np.argmax(transcript == tk.TASK_CLOSE, axis=1)
        rows = np.arange(len(transcript))
        assert np.all(transcript[rows, close + 1] == tk.EFFORT)
        assert np.all(transcript[rows, close + 2] == LEVEL_IDS[level])
        assert float(stats["effort"]) == level
        assert float(np.asarray(final.think_tokens).max()) <= budget
        assert float(stats["success"]) == 1.0  # the oracle answers without thinking if it must
        if budget == 0:  # instruct mode: no <think> at all
            assert not np.any(transcript == tk.THINK_OPEN)


def test_more_budget_lets_the_oracle_think_more():
    thinking = [
        float(play(PARAMS.replace(effort_probs=one_hot(level)), jax.random.PRNGKey(9))[1][
            "think_tokens"])
        for level in range(4)
    ]  # fmt: skip
    assert thinking[0] == 0.0 and thinking == sorted(thinking) and thinking[3] > thinking[1]


def test_random_policy_never_thinks_past_its_budget():
    params = PARAMS.replace(effort_probs=one_hot(1))  # low: 4 tokens
    _, stats, final = play(params, jax.random.PRNGKey(3), oracle=False)
    assert float(np.asarray(final.think_tokens).max()) <= 4
    assert float(stats["invalid"]) == 0.0


def test_sampled_levels_follow_the_distribution():
    params = PARAMS.replace(effort_probs=(0.5, 0.0, 0.0, 0.5))
    _, _, final = play(params, jax.random.PRNGKey(4))
    effort = np.asarray(final.effort)
    assert set(effort.tolist()) == {0, 3} and 0.3 < (effort == 3).mean() < 0.7


def test_adaptive_effort_is_the_agents_first_action():
    params = PARAMS.replace(agent_effort=True)
    obs, state = ENV.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(ENV.step_without_reset)
    while bool(~obs.agent_turn):  # the prompt, then <effort>, are forced
        obs, state, *_ = step(jax.random.PRNGKey(1), state, 0, params)
    assert int(state.phase) == Phase.EFFORT and int(obs.token) == tk.EFFORT
    legal = np.flatnonzero(np.asarray(obs.legal_mask))
    assert sorted(legal.tolist()) == sorted(LEVEL_IDS)
    obs, state, *_ = step(jax.random.PRNGKey(1), state, LEVEL_IDS[2], params)  # mid
    assert int(state.effort) == 2 and int(state.think_budget) == BUDGETS[2]
    obs, state, *_ = step(jax.random.PRNGKey(1), state, tk.THINK_OPEN, params)
    assert int(state.phase) == Phase.THINK
    # A non-level token at the effort choice is illegal: the episode ends, unrewarded.
    obs, state = ENV.reset(jax.random.PRNGKey(0), params)
    while bool(~obs.agent_turn):
        obs, state, *_ = step(jax.random.PRNGKey(1), state, 0, params)
    _, state, reward, done, *_ = step(jax.random.PRNGKey(1), state, tk.THINK_OPEN, params)
    assert bool(done) and bool(state.invalid) and float(reward) == 0.0


def test_adaptive_oracle_picks_the_cheapest_level_that_fits_its_thinking():
    params = PARAMS.replace(agent_effort=True)
    _, stats, final = play(params, jax.random.PRNGKey(5))
    effort, thought = np.asarray(final.effort), np.asarray(final.think_tokens)
    budgets = np.asarray(BUDGETS)
    assert float(stats["success"]) == 1.0 and np.all(effort >= 1)  # every scratchpad > 0
    assert np.all(budgets[effort] >= thought) and np.all(budgets[effort - 1] < thought)


def test_a_demonstrator_may_pick_its_level_at_random():
    """``oracle_picks_cheapest=False``: the level drawn from ``effort_probs`` (all four here),
    thinking only where its budget fits, and never past it."""
    params = PARAMS.replace(agent_effort=True, oracle_picks_cheapest=False)
    _, stats, final = play(params, jax.random.PRNGKey(5))
    effort, thought = np.asarray(final.effort), np.asarray(final.think_tokens)
    assert set(effort.tolist()) == {0, 1, 2, 3}
    assert np.all(np.asarray(BUDGETS)[effort] >= thought) and np.all(thought[effort == 0] == 0)
    assert float(stats["invalid"]) == 0.0


def test_think_cost_is_charged_per_thinking_token():
    free = PARAMS.replace(effort_probs=one_hot(3))
    costly = free.replace(think_cost=0.01)
    traj_free, stats, final = play(free, jax.random.PRNGKey(6))
    traj_cost, _, _ = play(costly, jax.random.PRNGKey(6))
    charged = np.asarray(traj_free.rewards.sum(1) - traj_cost.rewards.sum(1))
    np.testing.assert_allclose(charged, 0.01 * np.asarray(final.think_tokens), atol=1e-6)


def test_effort_overrides_are_checked():
    with pytest.raises(TypeError, match="effort_budgets=.* must be a list of 4 numbers"):
        make("Arithmetic-v0", effort=True, effort_budgets=[1, 2])
    env, _ = make("Arithmetic-v0")
    assert ENV.max_len == env.max_len + 2  # room for <effort> LEVEL
    # Without effort=True nothing is written and the plain think_budget applies.
    plain, params = make("Arithmetic-v0", tools_enabled=False, oracle_mode=1)
    rollout = rollout_episodes(plain, params, oracle_step(plain), None, jax.random.PRNGKey(8), 16)
    stats, final = rollout.stats, rollout.env_state
    assert float(stats["effort"]) == -1.0 and not bool(jnp.any(final.transcript == tk.EFFORT))
    assert float(stats["success"]) == 1.0 and float(stats["think_tokens"]) > 0
