"""Batch stepping: the stream's bounded resets and the uniform legal sampler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import envs
from agentic_jax.harness import Phase
from agentic_jax.rollout import random_step, sample_legal, stream_batch_step

ENV, PARAMS = envs.make("KBLookup-v0", max_len=24)


def test_sample_legal_is_uniform_over_legal_tokens():
    mask = jnp.array([[False, True, False, True, True], [False, False, True, False, False]])
    draws = jax.vmap(lambda k: sample_legal(k, mask))(jax.random.split(jax.random.PRNGKey(0), 6000))
    first, second = np.asarray(draws[:, 0]), np.asarray(draws[:, 1])
    assert set(first) == {1, 3, 4} and set(second) == {2}
    counts = np.bincount(first, minlength=5)[[1, 3, 4]]
    np.testing.assert_allclose(counts / 6000, 1 / 3, atol=0.03)


@pytest.mark.parametrize("vocab", [5, 32, 33, 98])
def test_sample_legal_picks_the_kth_legal_token(vocab):
    """The rank select equals its definition: the (k + 1)-th legal token for k = floor(u *
    count), the argmax of the prefix count exceeding k, at widths around a 32-bit word."""
    key = jax.random.PRNGKey(vocab)
    mask = jax.random.bernoulli(key, 0.3, (500, vocab)) | (jnp.arange(vocab) == vocab - 1)
    pick = jnp.floor(jax.random.uniform(key, (500,)) * mask.sum(-1)).astype(jnp.int32)
    expected = jnp.argmax(jnp.cumsum(mask, -1) > pick[:, None], axis=-1)
    np.testing.assert_array_equal(jax.jit(sample_legal)(key, mask), expected)


def test_bounded_resets_lose_no_episode():
    """With one fresh episode per step for 4 slots, finished slots queue for it in order:
    at most one reset per step, every finished slot is reset within 4 steps, and a reset
    slot starts a fresh episode (length 1, not Phase.DONE)."""
    num_envs = 4
    step_batch = stream_batch_step(ENV, max_resets=1)

    def act_and_step(carry, key):
        obs, state = carry
        act_key, step_key = jax.random.split(key)
        action, *_ = random_step(act_key, obs, state, None)
        obs, state, _, done, info = step_batch(step_key, state, action, PARAMS)
        return (obs, state), (info["reset"], state.phase, state.length, done)

    start = jax.vmap(ENV.reset, in_axes=(0, None))(
        jax.random.split(jax.random.PRNGKey(1), num_envs), PARAMS
    )
    keys = jax.random.split(jax.random.PRNGKey(2), 300)
    _, steps = jax.jit(lambda c, k: jax.lax.scan(act_and_step, c, k))(start, keys)
    waiting = np.zeros(num_envs, int)
    ended = resets = 0
    for reset, phase, length, done in zip(*map(np.asarray, steps), strict=True):
        assert reset.sum() <= 1
        assert np.all(length[reset] == 1) and np.all(phase[reset] != Phase.DONE)
        waiting = np.where(phase == Phase.DONE, waiting + 1, 0)
        assert waiting.max() <= num_envs
        ended += int(done.sum())
        resets += int(reset.sum())
    assert ended > 20  # random play ends episodes quickly
    assert ended - num_envs <= resets <= ended  # each ended episode is followed by one reset


def test_idle_share_counts_the_slot_steps_of_finished_episodes():
    """Episodes batching with the oracle: each slot runs one episode and then idles to the
    transcript's end, so the idle share is the steps after each episode's end, and agent,
    forced and idle steps share every slot-step."""
    from agentic_jax.rollout import oracle_step, rollout_episodes

    env, params = envs.make("KBLookup-v0")
    rollout = jax.jit(lambda key: rollout_episodes(env, params, oracle_step(env), None, key, 16))(
        jax.random.PRNGKey(0)
    )
    traj, stats = rollout.trajectory, rollout.stats
    idle = np.asarray(traj.segments) < 0
    assert float(stats["idle_share"]) == pytest.approx(idle.mean())
    assert 0 < float(stats["idle_share"]) < 1
    forced = ~idle & ~np.asarray(traj.agent)
    assert float(stats["slot_utilisation"]) + forced.mean() + idle.mean() == pytest.approx(1.0)
