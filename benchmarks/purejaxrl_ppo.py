"""A minimal PureJaxRL-style PPO for gymnax environments: the reference for the parity run.

It follows PureJaxRL's ``ppo.py`` (one jitted ``train(rng)``: a ``lax.scan`` of updates,
each a scan of vmapped environment steps, GAE by a reverse scan, then epochs of shuffled
transition minibatches with per-minibatch advantage normalisation), with two changes
shared by our trainer's run so the two compare like for like: a constant learning rate and
the ``ActorCritic`` network (its initialiser avoids orthogonal QR, see
``agentic_jax/models/mlp.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import gymnax
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from agentic_jax.models import ActorCritic

CARTPOLE = {
    "ENV": "CartPole-v1", "TOTAL_TIMESTEPS": 500_000, "NUM_ENVS": 4, "NUM_STEPS": 128,
    "UPDATE_EPOCHS": 4, "NUM_MINIBATCHES": 4, "LR": 2.5e-4, "GAMMA": 0.99, "GAE_LAMBDA": 0.95,
    "CLIP_EPS": 0.2, "ENT_COEF": 0.01, "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5, "HIDDEN": 64,
}  # fmt: skip


class Transition(NamedTuple):
    done: jax.Array
    action: jax.Array
    value: jax.Array
    reward: jax.Array
    log_prob: jax.Array
    obs: jax.Array
    episode_return: jax.Array  # the running return after this step


def make_train(config: dict):
    env, env_params = gymnax.make(config["ENV"])
    env = config.get("WRAP", lambda env: env)(env)  # e.g. agentic_jax.wrappers for our ids
    num_envs, num_steps = config["NUM_ENVS"], config["NUM_STEPS"]
    num_updates = config["TOTAL_TIMESTEPS"] // num_envs // num_steps
    batch_size = num_envs * num_steps
    network = ActorCritic(env.num_actions, hidden=config["HIDDEN"], layers=2)
    tx = optax.chain(optax.clip_by_global_norm(config["MAX_GRAD_NORM"]), optax.adam(config["LR"]))

    def train(rng):
        rng, init_rng, reset_rng = jax.random.split(rng, 3)
        obs_shape = env.observation_space(env_params).shape
        params = network.init(init_rng, jnp.zeros(obs_shape))
        train_state = TrainState.create(apply_fn=network.apply, params=params, tx=tx)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(reset_rng, num_envs), env_params
        )

        def update_step(runner_state, _):
            def env_step(runner_state, _):
                train_state, env_state, last_obs, returns, rng = runner_state
                rng, act_rng, step_rng = jax.random.split(rng, 3)
                logits, value = network.apply(train_state.params, last_obs)
                action = jax.random.categorical(act_rng, logits)
                log_prob = jax.nn.log_softmax(logits)[jnp.arange(num_envs), action]
                obs, env_state, reward, terminated, truncated, _ = jax.vmap(
                    env.step, in_axes=(0, 0, 0, None)
                )(jax.random.split(step_rng, num_envs), env_state, action, env_params)
                done = terminated | truncated
                returns = returns + reward
                transition = Transition(done, action, value, reward, log_prob, last_obs, returns)
                returns = jnp.where(done, 0.0, returns)
                return (train_state, env_state, obs, returns, rng), transition

            runner_state, traj = jax.lax.scan(env_step, runner_state, None, num_steps)
            train_state, env_state, last_obs, returns, rng = runner_state
            _, last_value = network.apply(train_state.params, last_obs)

            def gae_step(carry, transition):
                gae, next_value = carry
                not_done = 1.0 - transition.done
                delta = (
                    transition.reward + config["GAMMA"] * next_value * not_done - transition.value
                )
                gae = delta + config["GAMMA"] * config["GAE_LAMBDA"] * not_done * gae
                return (gae, transition.value), gae

            _, advantages = jax.lax.scan(
                gae_step, (jnp.zeros_like(last_value), last_value), traj, reverse=True, unroll=16
            )
            targets = advantages + traj.value

            def update_epoch(update_state, _):
                def update_minibatch(train_state, batch):
                    traj, gae, targets = batch

                    def loss_fn(params):
                        logits, value = network.apply(params, traj.obs)
                        log_probs = jax.nn.log_softmax(logits)
                        log_prob = jnp.take_along_axis(log_probs, traj.action[:, None], -1)[:, 0]
                        clip = config["CLIP_EPS"]
                        clipped = traj.value + jnp.clip(value - traj.value, -clip, clip)
                        value_loss = (
                            0.5
                            * jnp.maximum((value - targets) ** 2, (clipped - targets) ** 2).mean()
                        )
                        ratio = jnp.exp(log_prob - traj.log_prob)
                        adv = (gae - gae.mean()) / (gae.std() + 1e-8)
                        actor_loss = -jnp.minimum(
                            ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv
                        ).mean()
                        entropy = -(jnp.exp(log_probs) * log_probs).sum(-1).mean()
                        return (
                            actor_loss
                            + config["VF_COEF"] * value_loss
                            - config["ENT_COEF"] * entropy
                        )

                    grads = jax.grad(loss_fn)(train_state.params)
                    return train_state.apply_gradients(grads=grads), None

                train_state, traj, advantages, targets, rng = update_state
                rng, perm_rng = jax.random.split(rng)
                permutation = jax.random.permutation(perm_rng, batch_size)
                batch = jax.tree.map(
                    lambda x: x.reshape((batch_size, *x.shape[2:])), (traj, advantages, targets)
                )
                minibatches = jax.tree.map(
                    lambda x: jnp.take(x, permutation, axis=0).reshape(
                        (config["NUM_MINIBATCHES"], -1, *x.shape[1:])
                    ),
                    batch,
                )
                train_state, _ = jax.lax.scan(update_minibatch, train_state, minibatches)
                return (train_state, traj, advantages, targets, rng), None

            update_state = (train_state, traj, advantages, targets, rng)
            update_state, _ = jax.lax.scan(
                update_epoch, update_state, None, config["UPDATE_EPOCHS"]
            )
            train_state, rng = update_state[0], update_state[-1]
            finished = traj.done.astype(jnp.float32)
            metric = {"return_sum": (traj.episode_return * finished).sum(),
                      "episodes": finished.sum()}  # fmt: skip
            return (train_state, env_state, last_obs, returns, rng), metric

        runner_state = (train_state, env_state, obs, jnp.zeros(num_envs), rng)
        runner_state, metrics = jax.lax.scan(update_step, runner_state, None, num_updates)
        return runner_state, metrics

    return train
