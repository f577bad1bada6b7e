"""PPO on gymnax's vector-observation environments (CartPole-v1, ...) through the trainer.

``ClassicTrainer`` has ``Trainer``'s interface (``init``, ``start_stage``, ``run_chunk``,
``evaluate``, ``place``), so ``make_train``, the host loop (checkpoints, logs, the NaN guard),
``agentic-jax sweep`` and ``devices`` work unchanged; it swaps the token rollout for
PureJaxRL's: an MLP actor-critic acting in auto-resetting gymnax environments, and
minibatches of shuffled transitions rather than whole sequences. ``eval/success`` is the
share of greedy episodes that reach the step limit (500 on CartPole-v1); ``eval/return`` is
their mean return.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import envs as env_registry
from agentic_jax.models import ActorCritic
from agentic_jax.train.config import Config, pipeline
from agentic_jax.train.trainer import Hyperparams, Trainer, TrainState, hyperparams, make_optimizer


@struct.dataclass
class VectorTrajectory:
    """A rollout of vector observations, batch-major ``[N, L]``. The token trajectory's mask
    fields are constants here (every step is the agent's, every action legal), so they are
    properties, not arrays carried through the minibatch shuffle, and XLA folds them away."""

    obs: jax.Array  # [N, L, D]
    actions: jax.Array
    log_probs: jax.Array
    values: jax.Array
    rewards: jax.Array
    dones: jax.Array
    num_actions: int = struct.field(pytree_node=False, default=2)

    @property
    def legal(self) -> jax.Array:  # [N, L, A] bool
        return jnp.ones((*self.actions.shape, self.num_actions), bool)

    @property
    def agent(self) -> jax.Array:  # [N, L] bool
        return jnp.ones(self.actions.shape, bool)

    @property
    def segments(self) -> jax.Array:  # [N, L] int32, 0 (valid)
        return jnp.zeros(self.actions.shape, jnp.int32)


@struct.dataclass
class EpisodeCarry:
    env: Any  # the gymnax states
    episode_return: jax.Array  # [N] return of each environment's running episode


class ClassicTrainer(Trainer):
    def __init__(self, config: Config):
        algo, rollout = config.algo, config.rollout
        problems = []
        if config.model.kind != "mlp":
            problems.append("model.kind=mlp (vector observations)")
        if algo.name != "ppo" or rollout.batching != "stream":
            problems.append("algo.name=ppo with rollout.batching=stream")
        if any(stage.kind == "sft" for stage in pipeline(config)):
            problems.append("no sft stage (there are no oracle transcripts)")
        if config.env.eval_variants or config.curriculum.levels:
            problems.append("no env.eval_variants or curriculum")
        if problems:
            raise ValueError(
                f"{config.env.id} is a gymnax environment: it needs {'; '.join(problems)}"
            )
        self.config = config
        self.env, self.env_params = env_registry.make(config.env.id, **config.env.overrides)
        self.model = ActorCritic(
            self.env.num_actions, hidden=config.model.d_model, layers=config.model.n_layers
        )
        self.optimizer = make_optimizer(config)
        self.num_envs = rollout.num_envs
        self.max_steps = int(self.env_params.max_steps_in_episode)
        self.levels, self.eval_variants = [], {}
        self.stages = pipeline(config)
        self.mesh = self._mesh(config)
        self.stage_params = [self.env_params] * len(self.stages)

    def init(self, key: jax.Array, hyper: Hyperparams | None = None) -> TrainState:
        key, init_key, env_key = jax.random.split(key, 3)
        obs_shape = self.env.observation_space(self.env_params).shape
        params = self.model.init(init_key, jnp.zeros(obs_shape))
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(env_key, self.num_envs), self.env_params
        )
        return TrainState(
            params=params,
            opt_state=self.optimizer.init(params),
            ref_params=params,
            env_params=self.env_params,
            obs=obs,
            env_state=EpisodeCarry(env_state, jnp.zeros(self.num_envs)),
            key=key,
            update=jnp.int32(0),
            level=jnp.int32(0),
            hyper=hyperparams(self.config) if hyper is None else hyper,
            behaviour=self.fresh_behaviour(params),
        )

    def forward(self, params, traj: VectorTrajectory):
        """Logits [N, L, A] and values [N, L]. The MLP sees [N * L, D] rows: a 2-D input keeps
        its backward pass free of the transposed activation copies a [N, L, D] input costs."""
        n, length = traj.actions.shape
        logits, values = self.model.apply(params, traj.obs.reshape(n * length, -1))
        return logits.reshape(n, length, -1), values.reshape(n, length)

    def collect(self, state: TrainState, key: jax.Array, params):
        """``rollout_len`` steps of every environment, sampling from ``params``' policy."""
        env_params, n = state.env_params, self.num_envs
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
            record = {"obs": obs, "actions": action, "log_probs": log_prob, "values": value,
                      "rewards": reward, "dones": done, "returns": returns}  # fmt: skip
            episodes = EpisodeCarry(env_state, jnp.where(done, 0.0, returns))
            return self.shard_batch((next_obs, episodes)), record

        carry = self.shard_batch((state.obs, state.env_state))
        steps = jax.random.split(key, self.config.rollout.rollout_len)
        (obs, episodes), records = jax.lax.scan(body, carry, steps)
        r = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), records)
        traj = VectorTrajectory(
            obs=r["obs"], actions=r["actions"], log_probs=r["log_probs"], values=r["values"],
            rewards=r["rewards"], dones=r["dones"], num_actions=self.env.num_actions,
        )  # fmt: skip
        dones = r["dones"].astype(jnp.float32)
        count = jnp.maximum(dones.sum(), 1.0)
        stats = {
            "reward": (r["returns"] * dones).sum() / count,  # mean return of finished episodes
            "success": ((r["returns"] >= self.max_steps) * dones).sum() / count,
            "episodes": dones.sum(),
        }
        _, last_value = self.model.apply(params, obs)
        return state.replace(obs=obs, env_state=episodes), traj, stats, last_value

    def minibatch_units(self, batch) -> tuple[Any, int]:
        """Transitions are independent for an MLP: shuffle them one by one (PureJaxRL's)."""
        flat = jax.tree.map(lambda x: x.reshape(x.shape[0] * x.shape[1], 1, *x.shape[2:]), batch)
        return flat, 1

    def evaluate(self, state: TrainState) -> dict[str, jax.Array]:
        """Greedy episodes to the step limit: mean return and share that reach it."""
        n = self.config.eval_episodes
        key = jax.random.fold_in(state.key, 1_000_003)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(key, n), self.env_params
        )
        step = jax.vmap(self.env.step_env, in_axes=(0, 0, 0, None))

        def body(carry, step_key):
            obs, env_state, returns, alive = carry
            logits, _ = self.model.apply(state.params, obs)
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
