"""The gymnax surface, tried as a client written from gymnax's documentation would: spaces
that agree with the observations, our ids in gymnax's registry with the parameters they were
made with, and the two wrappers under gymnax's own."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.wrappers import GymnaxToGymWrapper, LogWrapper

from agentic_jax import envs
from agentic_jax import tokens as tk
from agentic_jax.wrappers import FlattenObservation, LegalActions

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("env_id", envs.registered_envs())
def test_the_observation_space_agrees_with_the_observations(env_id):
    env, params = envs.make(env_id)
    space = env.observation_space(params)
    sample = space.sample(jax.random.PRNGKey(0))
    obs, _ = env.reset(jax.random.PRNGKey(1), params)
    structure = lambda tree: jax.tree.map(lambda x: (jnp.shape(x), jnp.asarray(x).dtype), tree)  # noqa: E731
    assert structure(sample) == structure(obs)
    assert bool(space.contains(sample)) and bool(space.contains(obs))
    assert not bool(space.contains(obs.replace(token=jnp.int32(tk.VOCAB_SIZE))))


def test_gymnax_make_builds_our_ids_with_their_overrides():
    assert set(envs.registered_envs()) <= set(gymnax.registered_envs)
    assert not set(envs.registered_envs()) & set(envs.gymnax_ids())
    env, params = gymnax.make("KBLookup-v0", hops=2)
    assert int(params.task.hops) == 2 and int(env.default_params.task.hops) == 2
    ours, ours_params = envs.make("KBLookup-v0", hops=2)
    jax.tree.map(np.testing.assert_array_equal, params, ours_params)
    gym_env = GymnaxToGymWrapper(env)  # no params: it takes env.default_params
    assert int(gym_env.env_params.task.hops) == 2
    with pytest.raises(ValueError, match="unknown override"):
        gymnax.make("KBLookup-v0", no_such_key=1)


def test_wrapped_for_an_mlp_every_action_is_legal_and_the_space_holds():
    """Uniform actions over the whole vocabulary (what an MLP that ignores the mask emits),
    through LegalActions and FlattenObservation under gymnax's LogWrapper: no episode ends
    invalid, episodes finish, and every observation is in the flat space."""
    base, params = envs.make("KBLookup-v0")
    env = LogWrapper(FlattenObservation(LegalActions(base)))
    num_envs, steps = 16, 3 * base.max_len

    @jax.jit
    def run(key):
        keys = jax.random.split(key, num_envs)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

        def body(carry, step_key):
            obs, state = carry
            act_key, env_key = jax.random.split(step_key)
            action = jax.random.randint(act_key, (num_envs,), -5, tk.VOCAB_SIZE + 5)
            obs, state, reward, terminated, truncated, info = jax.vmap(
                env.step, in_axes=(0, 0, 0, None)
            )(jax.random.split(env_key, num_envs), state, action, params)
            done = terminated | truncated
            return (obs, state), (obs, done, info["invalid"], info["remapped_action"])

        return jax.lax.scan(body, (obs, state), jax.random.split(key, steps))[1]

    obs, done, invalid, remapped = run(jax.random.PRNGKey(0))
    assert obs.shape == (steps, num_envs, 2 * tk.VOCAB_SIZE + 2) and obs.dtype == jnp.float32
    assert int(done.sum()) > num_envs  # episodes end and restart
    assert float((invalid * done).sum()) == 0.0
    assert float(remapped.mean()) > 0.5  # most uniform tokens were illegal
    space = env.observation_space(params)
    assert bool(jax.vmap(jax.vmap(space.contains))(obs).all())
    again = run(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(again[0]), np.asarray(obs))


def test_gymnasium_sees_flat_observations_inside_its_space():
    base, _ = gymnax.make("Tally-v0")
    gym_env = GymnaxToGymWrapper(FlattenObservation(LegalActions(base)))
    obs, _ = gym_env.reset(seed=0)
    assert gym_env.observation_space.contains(np.asarray(obs))
    for action in (0, 10**6, -1, 3):
        obs, *_ = gym_env.step(action)
        assert gym_env.observation_space.contains(np.asarray(obs))


@pytest.mark.slow  # a compile of the whole reference loop: the second CI stage
def test_the_purejaxrl_style_loop_runs_on_a_wrapped_environment():
    """The reference PPO loop (gymnax.make, vmapped reset/step, an MLP that ignores legal
    masks), pointed at KBLookup-v0 through the two wrappers, unchanged otherwise."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import purejaxrl_ppo

    config = purejaxrl_ppo.CARTPOLE | {
        "ENV": "KBLookup-v0", "TOTAL_TIMESTEPS": 2 * 4 * 128, "HIDDEN": 32,
        "WRAP": lambda env: FlattenObservation(LegalActions(env)),
    }  # fmt: skip
    _, metrics = jax.jit(purejaxrl_ppo.make_train(config))(jax.random.PRNGKey(0))
    assert float(np.asarray(metrics["episodes"]).sum()) > 0
    assert np.all(np.isfinite(np.asarray(metrics["return_sum"])))
