"""Environments against their oracle, random play, determinism, splits and bad input."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.envs import make, registered_envs
from agentic_jax.harness import DONE, Harness
from agentic_jax.rollout import oracle_step, random_step, rollout_episodes

pytestmark = pytest.mark.timeout(300)

# (env id, overrides, oracle modes): every difficulty level the env offers.
LEVELS = [
    ("KBLookup-v0", {"hops": 1}, [0]),
    ("KBLookup-v0", {"hops": 2}, [0]),
    ("KBLookup-v0", {"num_entities": 2, "num_attributes": 1}, [0]),
    ("Arithmetic-v0", {"digits": 1}, [0, 1]),
    ("Arithmetic-v0", {"digits": 2}, [0, 1]),
    ("Arithmetic-v0", {"digits": 3}, [0, 1]),
]


ENVS = {env_id: make(env_id)[0] for env_id in registered_envs()}


@functools.partial(jax.jit, static_argnames=("env", "policy", "n"))
def play(env, params, policy, key, n=256):
    """Episodes of the oracle or a random legal policy; one compile per (env, policy, n)."""
    step = oracle_step(env) if policy == "oracle" else random_step
    return rollout_episodes(env, params, step, None, key, n)


def with_overrides(env_id, **overrides):
    """The shared env and its params with traced overrides (no recompile)."""
    env = ENVS[env_id]
    _, params = make(env_id, **overrides)
    return env, params


@pytest.mark.parametrize("env_id,overrides,modes", LEVELS)
def test_oracle_solves_every_task(env_id, overrides, modes):
    env, params = with_overrides(env_id, **overrides)
    for mode in modes:
        for split in (0, 1):
            p = params.replace(oracle_mode=mode, split=split)
            traj, stats, final = play(env, p, "oracle", jax.random.PRNGKey(mode))
            assert float(stats["success"]) == 1.0, (env_id, overrides, mode, split)
            assert float(stats["episodes"]) == 256
            assert float(stats["invalid"]) == 0.0
            # The oracle's tokens are agent tokens; tool results never are.
            assert bool(jnp.all(final.phase == DONE))


@pytest.mark.parametrize("env_id", registered_envs())
def test_random_policy_rarely_succeeds(env_id):
    env, params = with_overrides(env_id)
    _, stats, _ = play(env, params, "random", jax.random.PRNGKey(1))
    assert float(stats["success"]) < 0.25
    assert float(stats["invalid"]) == 0.0  # random play within the legal mask is always legal


@pytest.mark.parametrize("env_id", registered_envs())
def test_jit_vmap_random_play_api(env_id):
    """Pgx/Jumanji-style: vmapped random play, legal masks, finite outputs, no retracing."""
    chex.clear_trace_counter()
    env, params = with_overrides(env_id)
    num_envs, steps = 8, 3 * env.max_len  # several episodes per slot, with auto-reset

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(keys, state, action):
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)

    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    key = jax.random.PRNGKey(1)
    episodes = 0
    for _ in range(steps):
        key, act_key, step_key = jax.random.split(key, 3)
        assert bool(jnp.all(obs.legal_mask.any(axis=-1))), "every state has a legal token"
        action = jax.random.categorical(act_key, jnp.where(obs.legal_mask, 0.0, -jnp.inf))
        obs, state, reward, terminated, truncated, info = step(
            jax.random.split(step_key, num_envs), state, action
        )
        assert obs.token.dtype == jnp.int32 and obs.legal_mask.shape == (num_envs, tk.VOCAB_SIZE)
        assert bool(jnp.all((obs.token >= 0) & (obs.token < tk.VOCAB_SIZE)))
        assert bool(jnp.all((obs.position >= 0) & (obs.position < env.max_len)))
        assert bool(jnp.all(jnp.isfinite(reward)))
        assert float(info["invalid"].max()) == 0.0
        episodes += int((terminated | truncated).sum())
    assert episodes > 0


@pytest.mark.parametrize("env_id", registered_envs())
def test_same_key_same_transcript(env_id):
    env, params = with_overrides(env_id)
    key = jax.random.PRNGKey(7)
    _, _, first = play(env, params, "random", key)
    _, _, second = play(env, params, "random", key)
    np.testing.assert_array_equal(first.transcript, second.transcript)
    _, _, other = play(env, params, "random", jax.random.PRNGKey(8))
    assert not np.array_equal(first.transcript, other.transcript)


@pytest.mark.parametrize("env_id", registered_envs())
def test_train_and_test_tasks_are_disjoint(env_id):
    env, params = with_overrides(env_id)

    @jax.jit
    def splits_of_sampled(keys, split):
        tasks = jax.vmap(lambda k: env.family.sample(k, params.task, split, 0))(keys)
        return jax.vmap(env.family.split_of)(tasks.world)

    keys = jax.random.split(jax.random.PRNGKey(3), 2000)
    for split in (0, 1):
        assert bool(jnp.all(splits_of_sampled(keys, split) == split))


def test_kblookup_answer_never_in_the_prompt():
    env, params = with_overrides("KBLookup-v0", hops=2)
    keys = jax.random.split(jax.random.PRNGKey(4), 500)
    tasks = jax.jit(jax.vmap(lambda k: env.family.sample(k, params.task, 0, 0)))(keys)
    value_ids = jnp.asarray(tk.ids(tk.VALUES))
    assert not bool(jnp.isin(tasks.prompt, value_ids).any())


def test_think_budget_forces_the_closing_token():
    env, params = make("Arithmetic-v0", think_budget=3)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    while not bool(obs.agent_turn):
        obs, state, *_ = env.step(jax.random.PRNGKey(0), state, 0, params)
    digit = tk.token_id("5")
    forced_close = None
    for action in [tk.THINK_OPEN, digit, digit, digit, digit]:
        obs, state, _, _, _, info = env.step(jax.random.PRNGKey(0), state, action, params)
        if int(obs.token) == tk.THINK_CLOSE:
            forced_close = bool(info["agent_step"])
    assert int(state.think_tokens) == 3
    assert forced_close is False  # </think> was written by the harness, not the agent
    assert not bool(obs.legal_mask[tk.THINK_OPEN])  # the budget is spent


def test_instruct_mode_forbids_thinking():
    env, params = make("Arithmetic-v0", think_budget=0)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    while not bool(obs.agent_turn):
        obs, state, *_ = env.step(jax.random.PRNGKey(0), state, 0, params)
    assert not bool(obs.legal_mask[tk.THINK_OPEN])
    assert bool(obs.legal_mask[tk.CALL_OPEN]) and bool(obs.legal_mask[tk.ANSWER_OPEN])


def test_illegal_token_ends_the_episode_without_reward():
    env, params = make("KBLookup-v0")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    while not bool(obs.agent_turn):
        obs, state, *_ = env.step_no_reset(jax.random.PRNGKey(0), state, 0, params)
    illegal = tk.token_id("7")
    assert not bool(obs.legal_mask[illegal])
    obs, state, reward, terminated, truncated, info = env.step_no_reset(
        jax.random.PRNGKey(0), state, illegal, params
    )
    assert bool(terminated) and float(reward) == 0.0 and float(info["invalid"]) == 1.0


def test_forced_tokens_ignore_the_action():
    env, params = make("KBLookup-v0")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert not bool(obs.agent_turn)  # the prompt is being written
    a = env.step_no_reset(jax.random.PRNGKey(0), state, 0, params)
    b = env.step_no_reset(jax.random.PRNGKey(0), state, tk.token_id("red"), params)
    assert int(a[0].token) == int(b[0].token) == int(state.task.prompt[1])
    assert not bool(a[5]["agent_step"])


def test_transcript_limit_truncates():
    env, params = make("Arithmetic-v0", max_len=18)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    digit = tk.token_id("1")
    truncated = False
    for _ in range(env.max_len - 1):
        # Open an answer and keep writing digits: it never closes before the limit.
        action = tk.ANSWER_OPEN if int(state.phase) == 1 else digit
        obs, state, reward, terminated, truncated, _ = env.step_no_reset(
            jax.random.PRNGKey(0), state, action, params
        )
        if bool(truncated) or bool(terminated):
            break
    assert bool(truncated) or int(state.answer_len) == env.family.max_answer


def test_make_rejects_bad_input():
    with pytest.raises(ValueError, match="valid ids: KBLookup-v0"):
        make("KBLookUp-v0")
    with pytest.raises(ValueError, match="unknown override.*num_entites.*valid:.*num_entities"):
        make("KBLookup-v0", num_entites=4)
    with pytest.raises(TypeError, match="num_entities='4'.*expected int"):
        make("KBLookup-v0", num_entities="4")
    with pytest.raises(ValueError, match="max_len=5 is too short"):
        make("KBLookup-v0", max_len=5)
    with pytest.raises(ValueError, match="max_entities must be in"):
        make("KBLookup-v0", max_entities=40)


def test_make_passes_gymnax_ids_through():
    env, params = make("CartPole-v1")
    assert not isinstance(env, Harness)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (4,)
