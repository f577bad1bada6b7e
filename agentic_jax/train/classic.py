"""PPO on gymnax's vector-observation environments (CartPole-v1, ...): the classic actor.

``ClassicActor`` answers what the update functions ask of an actor (see ``token_actor``), so
the shared learner, ``make_train``, the host loop (checkpoints, logs, the NaN guard),
``agentic-jax sweep`` and ``devices`` run it unchanged. It acts as PureJaxRL does: an MLP
actor-critic in auto-resetting gymnax environments, and minibatches of shuffled transitions
rather than whole sequences. ``eval/success`` is the
share of greedy episodes that reach the step limit (500 on CartPole-v1); ``eval/return`` is
their mean return.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import envs as env_registry
from agentic_jax.algos import ALGORITHMS, algorithm
from agentic_jax.algos.masked import masked_entropy, token_log_prob
from agentic_jax.algos.policy import PolicyOutputs
from agentic_jax.models import ActorCritic
from agentic_jax.rollout import Rollout
from agentic_jax.train.config import Config, pipeline


@struct.dataclass
class VectorTrajectory:
    """A rollout of vector observations, batch-major ``[N, L]``. Every step is the agent's and
    in a real episode, so the masks the learner reads are constants that XLA folds away."""

    obs: jax.Array  # [N, L, D]
    actions: jax.Array
    log_probs: jax.Array
    values: jax.Array
    rewards: jax.Array
    dones: jax.Array

    @property
    def loss_mask(self) -> jax.Array:  # [N, L] bool
        return jnp.ones(self.actions.shape, bool)

    @property
    def value_mask(self) -> jax.Array:  # [N, L] bool
        return jnp.ones(self.actions.shape, bool)


@struct.dataclass
class EpisodeCarry:
    env: Any  # the gymnax states
    episode_return: jax.Array  # [N] return of each environment's running episode


class ClassicActor:
    num_contexts = 1  # one observation row per environment

    def __init__(self, config: Config):
        algo, rollout = config.algo, config.rollout
        problems = []
        if config.model.kind != "mlp":
            problems.append("model.kind=mlp (vector observations)")
        if not algorithm(algo.name).critic or rollout.batching != "stream":
            critics = ", ".join(name for name, a in ALGORITHMS.items() if a.critic)
            problems.append(f"an algorithm with a critic ({critics}), rollout.batching=stream")
        if any(stage.kind == "sft" for stage in pipeline(config)):
            problems.append("no sft stage (there are no oracle transcripts)")
        if config.env.eval_variants or config.curriculum.levels:
            problems.append("no env.eval_variants or curriculum")
        if any(stage.env for stage in config.stages):
            problems.append("no per-stage env overrides")
        if problems:
            raise ValueError(
                f"{config.env.id} is a gymnax environment: it needs {'; '.join(problems)}"
            )
        self.config = config
        self.env, self.env_params = env_registry.make(config.env.id, **config.env.overrides)
        self.model = ActorCritic(
            self.env.num_actions, hidden=config.model.d_model, layers=config.model.n_layers
        )
        self.num_envs = rollout.num_envs
        self.max_steps = int(self.env_params.max_steps_in_episode)

    def init_params(self, key: jax.Array) -> Any:
        obs_shape = self.env.observation_space(self.env_params).shape
        return self.model.init(key, jnp.zeros(obs_shape))

    def init_carry(self, key: jax.Array, env_params: Any) -> tuple[Any, EpisodeCarry]:
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(key, self.num_envs), env_params
        )
        return obs, EpisodeCarry(env_state, jnp.zeros(self.num_envs))

    def bootstrap_values(self, params: Any, rollout: Rollout) -> jax.Array:
        """[N] the value of the observation after the last step under ``params``."""
        return self.model.apply(params, rollout.obs)[1]

    def evaluate_actions(self, params: Any, traj: VectorTrajectory) -> PolicyOutputs:
        """Log-probs, entropies and values [N, L]. The MLP sees [N * L, D] rows: a 2-D input
        keeps its backward pass free of the transposed activation copies [N, L, D] costs."""
        n, length = traj.actions.shape
        logits, values = self.model.apply(params, traj.obs.reshape(n * length, -1))
        logits = logits.reshape(n, length, -1)
        every_action = jnp.ones(logits.shape, bool)  # all legal: the masked forms fold to plain
        return PolicyOutputs(
            log_probs=token_log_prob(logits, every_action, traj.actions),
            entropy=masked_entropy(logits, every_action),
            values=values.reshape(n, length),
        )

    def collect(self, params, env_params, obs, env_state, key, shard) -> Rollout:
        """``rollout_len`` steps of every environment, sampling from ``params``' policy."""
        n = self.num_envs
        step = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))

        def body(carry, step_key):
            obs, episodes = carry
            act_key, env_key = jax.random.split(step_key)
            logits, value = self.model.apply(params, obs)
            action = jax.random.categorical(act_key, logits)
            log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=-1)[
                :, 0
            ]
            next_obs, env_state, reward, terminated, truncated, _ = step(
                jax.random.split(env_key, n), episodes.env, action, env_params
            )
            done = terminated | truncated  # as PureJaxRL: no bootstrapping past a time limit
            returns = episodes.episode_return + reward
            record = {
                "obs": obs,
                "actions": action,
                "log_probs": log_prob,
                "values": value,
                "rewards": reward,
                "dones": done,
                "returns": returns,
            }
            episodes = EpisodeCarry(env_state, jnp.where(done, 0.0, returns))
            return shard((next_obs, episodes)), record

        carry = shard((obs, env_state))
        steps = jax.random.split(key, self.config.rollout.rollout_len)
        (obs, episodes), records = jax.lax.scan(body, carry, steps)
        r = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), records)
        traj = VectorTrajectory(
            obs=r["obs"],
            actions=r["actions"],
            log_probs=r["log_probs"],
            values=r["values"],
            rewards=r["rewards"],
            dones=r["dones"],
        )
        dones = r["dones"].astype(jnp.float32)
        count = jnp.maximum(dones.sum(), 1.0)
        stats = {
            "reward": (r["returns"] * dones).sum() / count,  # mean return of finished episodes
            "success": ((r["returns"] >= self.max_steps) * dones).sum() / count,
            "episodes": dones.sum(),
        }
        _, last_value = self.model.apply(params, obs)
        return Rollout(
            trajectory=traj, stats=stats, last_value=last_value, obs=obs, env_state=episodes
        )

    def minibatch_rows(self, batch) -> tuple[Any, int]:
        """Transitions are independent for an MLP: shuffle them one by one (PureJaxRL's)."""
        flat = jax.tree.map(lambda x: x.reshape(x.shape[0] * x.shape[1], 1, *x.shape[2:]), batch)
        return flat, 1

    def evaluate(self, params: Any, key: jax.Array, shard) -> dict[str, jax.Array]:
        """Greedy episodes to the step limit: mean return and share that reach it."""
        n = self.config.eval_episodes
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(key, n), self.env_params
        )
        step = jax.vmap(self.env.step_env, in_axes=(0, 0, 0, None))

        def body(carry, step_key):
            obs, env_state, returns, alive = carry
            logits, _ = self.model.apply(params, obs)
            obs, env_state, reward, terminated, _ = step(
                jax.random.split(step_key, n), env_state, jnp.argmax(logits, -1), self.env_params
            )  # no reset; the scan's length is the step limit
            return (obs, env_state, returns + reward * alive, alive & ~terminated), None

        carry = (obs, env_state, jnp.zeros(n), jnp.ones(n, bool))
        steps = jax.random.split(key, self.max_steps)
        (_, _, returns, _), _ = jax.lax.scan(body, carry, steps)
        return {
            "eval/return": returns.mean(),
            "eval/success": (returns >= self.max_steps).mean(),
        }
