"""Property-based fuzzing (hypothesis): random token streams into every environment and random
argument tokens into every tool, all inside jit; shapes, dtypes and bounds must always hold.

An environment is fed a sequence of choices: a choice >= 0 picks the (choice mod n)-th of
the n legal tokens, so the agent writes arbitrary well-formed-looking transcripts (calls to
any tool with any arguments: wrong names, missing or extra arguments, empty calls); a
choice < 0 writes a raw token that may be illegal (which must end the episode, not break
it). Every environment is compiled once; hypothesis varies only the arrays.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentic_jax import tokens as tk
from agentic_jax.envs import REGISTRY, make

pytestmark = pytest.mark.timeout(600)

STEPS = 48
V = tk.VOCAB_SIZE
FUZZ = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
choices = st.lists(st.integers(-V, 8 * V), min_size=STEPS, max_size=STEPS)


@functools.cache
def compiled_play(env_id: str):
    env, params = make(env_id)

    @jax.jit
    def play(key, choices):
        obs, state = env.reset(key, params)

        def step(carry, inputs):
            obs, state = carry
            key, choice = inputs
            legal = obs.legal_mask
            rank = jnp.cumsum(legal) - 1  # the index of each legal token among the legal ones
            nth = choice % jnp.maximum(legal.sum(), 1)
            picked = jnp.argmax(legal & (rank == nth))
            action = jnp.where(choice >= 0, picked, (-choice - 1) % V).astype(jnp.int32)
            obs, state, reward, done, _, info = env.step(key, state, action, params)
            out = (obs, reward, done, info, state.transcript, state.length)
            return (obs, state), out

        keys = jax.random.split(key, STEPS)
        _, outs = jax.lax.scan(step, (obs, state), (keys, choices))
        return outs

    return env, play


@pytest.mark.parametrize("env_id", list(REGISTRY))
@FUZZ
@given(seed=st.integers(0, 2**31 - 1), sequence=choices)
def test_random_token_streams_keep_every_invariant(env_id, seed, sequence):
    env, play = compiled_play(env_id)
    obs, reward, done, info, transcript, length = jax.device_get(
        play(jax.random.PRNGKey(seed), jnp.asarray(sequence, jnp.int32))
    )
    assert obs.token.shape == (STEPS,) and obs.token.dtype == np.int32
    assert ((obs.token >= 0) & (obs.token < V)).all()
    assert ((obs.position >= 0) & (obs.position < env.max_len)).all()
    assert obs.legal_mask.shape == (STEPS, V) and obs.legal_mask.dtype == np.bool_
    assert obs.legal_mask.any(axis=1).all(), "a state with no legal token"
    assert reward.dtype == np.float32 and np.isfinite(reward).all()
    assert (np.abs(reward) <= 2.0).all()
    assert done.dtype == np.bool_
    assert transcript.shape == (STEPS, env.max_len)
    assert ((transcript >= 0) & (transcript < V)).all()
    assert ((length >= 1) & (length <= env.max_len)).all()
    for name, value in info.items():
        if name == "final_observation":  # gymnax's auto-reset: the observation before reset
            assert value.token.shape == obs.token.shape
            continue
        assert np.issubdtype(value.dtype, np.bool_) or np.isfinite(value).all(), name
    assert ((info["success"] == 0) | (info["success"] == 1)).all()


def tool_cases():
    for env_id in REGISTRY:
        env, _ = make(env_id)
        for index, tool in enumerate(env.family.tools):
            yield pytest.param(env_id, index, id=f"{env_id}-{tool.name}")


@functools.cache
def compiled_tool(env_id: str, index: int):
    env, params = make(env_id)
    family, tool = env.family, env.family.tools[index]

    @jax.jit
    def call(key, args, args_len):
        world_key, tool_key = jax.random.split(key)
        world = family.sample(world_key, params.task, jnp.int32(0), jnp.int32(0)).world
        return tool.fn(world, args, args_len, tool_key)

    return family, tool, call


@pytest.mark.parametrize("env_id,index", list(tool_cases()))
@FUZZ
@given(seed=st.integers(0, 2**31 - 1), data=st.data())
def test_tools_answer_any_arguments_within_bounds(env_id, index, seed, data):
    family, tool, call = compiled_tool(env_id, index)
    width = family.max_args
    args = data.draw(st.lists(st.integers(0, V - 1), min_size=width, max_size=width))
    args_len = data.draw(st.integers(0, width))
    out = jax.device_get(
        call(jax.random.PRNGKey(seed), jnp.asarray(args, jnp.int32), jnp.int32(args_len))
    )
    assert out.tokens.shape == (tool.result_width,) and out.tokens.dtype == np.int32
    assert ((out.tokens >= 0) & (out.tokens < V)).all()
    assert 0 <= int(out.length) <= tool.result_width
    assert (out.tokens[int(out.length) :] == tk.PAD).all()
    assert int(out.status) in (0, 1, 2)
    assert 0 <= int(np.asarray(out.latency)) <= tool.max_latency
