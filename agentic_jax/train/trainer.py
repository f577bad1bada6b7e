"""``make_train(config) -> train(key)``: rollout and update compiled into one function.

The pieces, each a pure function of a ``TrainState``:

- ``init(key)``: parameters, optimiser state, environment carry;
- ``start_stage(state, index)``: a fresh optimiser and the stage's environment parameters
  (an RL stage also takes the current policy as its KL reference);
- ``run_chunk(state, num_updates, index)``: ``num_updates`` updates of stage ``index`` (SFT
  or RL) in a ``lax.scan``, then a held-out evaluation;
- ``evaluate(state)``: greedy episodes on the test task split.

``train(key)`` chains them over the config's pipeline (``config.pipeline``: by default the
SFT stage, if any, then RL; or the ``stages`` list). The command line runs the same chunks
from a thin host loop to print progress and write checkpoints. Everything is vmappable over
keys, which is how ``num_seeds`` seeds run as one computation.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from agentic_jax import algos
from agentic_jax import envs as env_registry
from agentic_jax import tokens as tk
from agentic_jax.harness import HarnessParams
from agentic_jax.models import TransformerPolicy
from agentic_jax.rollout import (
    Trajectory,
    forward_inputs,
    oracle_step,
    rollout_episodes,
    rollout_stream,
)
from agentic_jax.train.config import Config, pipeline

Metrics = dict[str, jax.Array]


@struct.dataclass
class Hyperparams:
    """The continuous hyperparameters, as traced arrays in the ``TrainState``, so that one
    compiled train function can be vmapped over settings of them (``agentic-jax sweep``)."""

    stage_lr: jax.Array  # [num_stages] each pipeline stage's learning rate
    clip_eps_low: jax.Array
    clip_eps_high: jax.Array
    entropy_coef: jax.Array
    kl_coef: jax.Array
    vf_coef: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array


# The config keys ``Hyperparams`` carries (plus ``seed``, which sets the key): a sweep over
# any of them runs as one vmapped computation; any other key changes what is compiled.
TRACED_KEYS = (
    "algo.lr", "sft.lr", "algo.clip_eps_low", "algo.clip_eps_high", "algo.entropy_coef",
    "algo.kl_coef", "algo.vf_coef", "algo.gamma", "algo.gae_lambda",
)  # fmt: skip


def hyperparams(config: Config) -> Hyperparams:
    """A config's ``Hyperparams`` (stage learning rates as ``pipeline`` resolves them)."""
    algo = config.algo
    f32 = lambda x: jnp.float32(x)  # noqa: E731
    return Hyperparams(
        stage_lr=jnp.asarray([stage.lr for stage in pipeline(config)], jnp.float32),
        clip_eps_low=f32(algo.clip_eps_low),
        clip_eps_high=f32(algo.clip_eps_high),
        entropy_coef=f32(algo.entropy_coef),
        kl_coef=f32(algo.kl_coef),
        vf_coef=f32(algo.vf_coef),
        gamma=f32(algo.gamma),
        gae_lambda=f32(algo.gae_lambda),
    )


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    ref_params: Any  # frozen policy the RL stage started from (for the KL penalty)
    env_params: HarnessParams
    obs: Any  # stream batching: the environments' carry between updates
    env_state: Any
    key: jax.Array
    update: jax.Array  # updates done so far, SFT included
    level: jax.Array  # curriculum level (0 without a curriculum)
    hyper: Hyperparams
    # rollout.staleness = k > 0: the parameters of the last k updates, oldest first, stacked;
    # the oldest acts. None when on-policy.
    behaviour: Any = None


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam after global-norm clipping; the learning rate is applied per stage (traced)."""
    return optax.chain(optax.clip_by_global_norm(config.algo.max_grad_norm), optax.scale_by_adam())


def build_trainer(config: Config) -> Trainer:
    """The trainer for a config's environment: ``Trainer`` for agentic-jax's token
    environments, ``ClassicTrainer`` (same interface, MLP policy) for gymnax's own."""
    if config.env.id in env_registry.REGISTRY:
        return Trainer(config)
    from agentic_jax.train.classic import ClassicTrainer

    return ClassicTrainer(config)


class Trainer:
    """Builds the environment, policy and optimiser a config describes."""

    def __init__(self, config: Config):
        self.config = config
        self.env, env_params = env_registry.make(config.env.id, **config.env.overrides)
        self.env_params = env_params.replace(tool_bonus=config.tool_bonus)
        m = config.model
        self.model = TransformerPolicy(
            vocab_size=tk.VOCAB_SIZE,
            max_len=self.env.max_len,
            d_model=m.d_model,
            n_layers=m.n_layers,
            n_heads=m.n_heads,
            mlp_ratio=m.mlp_ratio,
            attention_window=m.attention_window,
            init_std=m.init_std,
        )
        if config.model.kind != "transformer":
            raise ValueError(
                f"model.kind={config.model.kind} is for gymnax's vector environments (e.g. "
                f"CartPole-v1); {config.env.id} is a token environment: use model.kind=transformer"
            )
        self.optimizer = make_optimizer(config)
        r = config.rollout
        self.num_envs = r.num_tasks * r.group_size if r.batching == "episodes" else r.num_envs
        self.levels = self._curriculum_levels(config)
        self.eval_variants = self._eval_variants(config)
        self.stages = pipeline(config)
        self.mesh = self._mesh(config)
        self.stage_params = [self._traced_params(stage.env, f"stage {stage.name}")
                             for stage in self.stages]  # fmt: skip

    def _mesh(self, config: Config) -> Mesh | None:
        """A one-axis ("data") mesh over the first ``config.devices`` devices: this process's
        own, or every process's after ``jax.distributed.initialize()`` (multi-host)."""
        available = jax.devices() if jax.process_count() > 1 else jax.local_devices()
        count = config.devices or len(available)
        if count > len(available):
            raise ValueError(
                f"devices={config.devices}: only {len(available)} device(s) "
                f"({available[0].platform}); use 1 to {len(available)}, or 0 for all"
            )
        batches = {"rollout batch": self.num_envs, "eval_episodes": config.eval_episodes}
        if config.sft.updates or any(stage.kind == "sft" for stage in config.stages):
            batches["sft.num_episodes"] = config.sft.num_episodes
        for name, size in batches.items():
            if size % count:
                raise ValueError(
                    f"devices={count}: the {name} ({size}) must divide evenly over the devices"
                )
        return Mesh(available[:count], ("data",)) if count > 1 else None

    def shard_batch(self, tree):
        """Split a pytree of ``[N, ...]`` batch arrays over the mesh's devices (first axis)."""
        if self.mesh is None:
            return tree
        batch = NamedSharding(self.mesh, PartitionSpec("data"))
        return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, batch), tree)

    def place(self, state: TrainState) -> TrainState:
        """Put a state on the mesh, replicated (data parallel); a no-op on one device."""
        if self.mesh is None:
            return state
        replicated = NamedSharding(self.mesh, PartitionSpec())
        if jax.process_count() == 1:
            return jax.device_put(state, replicated)
        # Multi-host: every process built the same state (same seed); each supplies its copy.
        return jax.tree.map(
            lambda x: jax.make_array_from_callback(
                x.shape, replicated, lambda index: np.asarray(x)[index]
            ),
            state,
        )

    def _traced_params(self, overrides: dict, where: str) -> HarnessParams:
        """Environment parameters with traced ``overrides`` on top of ``env.overrides``."""
        static = set(overrides) & set(env_registry.static_overrides(self.config.env.id))
        if static:
            raise ValueError(
                f"{where}: {', '.join(sorted(static))} set array shapes and cannot change "
                "during a run; set them in env.overrides"
            )
        env_id, base = self.config.env.id, self.config.env.overrides
        params = env_registry.make(env_id, **(base | overrides))[1]
        return params.replace(tool_bonus=self.config.tool_bonus)

    def _eval_variants(self, config: Config) -> dict[str, tuple[Any, HarnessParams]]:
        """The named evaluation variants of ``env.eval_variants``: (env, params) each."""
        variants = {}
        for name, overrides in config.env.eval_variants.items():
            env, params = env_registry.make(config.env.id, **(config.env.overrides | overrides))
            if env.max_len != self.env.max_len:
                raise ValueError(
                    f"env.eval_variants.{name}: transcript length {env.max_len} differs from "
                    f"the training environment's {self.env.max_len}; set max_len in env.overrides"
                )
            variants[name] = (env, params.replace(tool_bonus=config.tool_bonus))
        return variants

    def _curriculum_levels(self, config: Config) -> list[HarnessParams]:
        """Environment parameters of each curriculum level, validated by ``envs.make``."""
        return [
            self._traced_params(level, f"curriculum level {i}")
            for i, level in enumerate(config.curriculum.levels)
        ]

    def _level_params(self, level: jax.Array) -> HarnessParams:
        stacked = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *self.levels)
        return jax.tree.map(lambda x: x[level], stacked)

    # ------------------------------------------------------------------ policy
    def forward(self, params, traj: Trajectory):
        """Logits [N, L, V] and values [N, L] for every step of a trajectory, in one pass."""
        tokens, positions, segments = forward_inputs(traj)
        logits, values, _ = self.model.apply(params, tokens, positions, segments)
        steps = traj.tokens.shape[1]
        return logits[:, -steps:], values[:, -steps:]

    def policy_step(self, params, greedy: bool = False):
        def step(key, obs, env_state, cache):
            logits, value, cache = self.model.apply(
                params, obs.token, obs.position, cache, method=TransformerPolicy.decode
            )
            log_probs = algos.masked_log_softmax(logits, obs.legal_mask)
            if greedy:
                action = jnp.argmax(log_probs, axis=-1)
            else:
                action = jax.random.categorical(key, log_probs)
            chosen = jnp.take_along_axis(log_probs, action[:, None], axis=-1)[:, 0]
            return action.astype(jnp.int32), chosen, value, cache

        return step

    def empty_cache(self, batch_size: int):
        return self.model.init_cache(batch_size)

    # ------------------------------------------------------------------ init
    def init(self, key: jax.Array, hyper: Hyperparams | None = None) -> TrainState:
        """Fresh parameters and optimiser; ``hyper`` defaults to the config's own."""
        key, init_key, env_key = jax.random.split(key, 3)
        dummy = jnp.zeros((1, self.env.max_len), jnp.int32)
        params = self.model.init(init_key, dummy, dummy, dummy)
        obs = env_state = None
        if self.config.rollout.batching == "stream":
            reset_keys = jax.random.split(env_key, self.num_envs)
            obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
                reset_keys, self.env_params
            )
        return TrainState(
            params=params,
            opt_state=self.optimizer.init(params),
            ref_params=params,
            env_params=self._level_params(0) if self.levels else self.env_params,
            obs=obs,
            env_state=env_state,
            key=key,
            update=jnp.int32(0),
            level=jnp.int32(0),
            hyper=hyperparams(self.config) if hyper is None else hyper,
            behaviour=self.fresh_behaviour(params),
        )

    def fresh_behaviour(self, params):
        """A staleness buffer holding ``k`` copies of ``params`` (None when on-policy)."""
        k = self.config.rollout.staleness
        return None if k == 0 else jax.tree.map(lambda x: jnp.stack([x] * k), params)

    def start_stage(self, state: TrainState, index: int) -> TrainState:
        """Begin stage ``index``: fresh optimiser state and the stage's environment
        parameters; an RL stage takes the current policy as its KL reference."""
        stage = self.stages[index]
        env_params = self._level_params(state.level) if self.levels else self.stage_params[index]
        state = state.replace(opt_state=self.optimizer.init(state.params), env_params=env_params)
        if stage.kind == "rl":
            state = state.replace(
                ref_params=state.params, behaviour=self.fresh_behaviour(state.params)
            )
        return state

    # ------------------------------------------------------------------ updates
    def _apply_grads(self, state: TrainState, grads, lr: float) -> TrainState:
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, jax.tree.map(lambda u: -lr * u, updates))
        return state.replace(params=params, opt_state=opt_state)

    def sft_update(self, state: TrainState, index: int) -> tuple[TrainState, Metrics]:
        """Imitate oracle transcripts of train tasks: cross-entropy on agent tokens only."""
        stage = self.stages[index]
        key, rollout_key = jax.random.split(state.key)
        env_params = state.env_params.replace(oracle_mode=stage.oracle_mode)
        traj, stats, _ = rollout_episodes(
            self.env, env_params, oracle_step(self.env), None, rollout_key,
            self.config.sft.num_episodes, shard=self.shard_batch,
        )  # fmt: skip

        def loss_fn(params):
            logits, _ = self.forward(params, traj)
            return algos.sft_loss(logits, traj.legal, traj.actions, traj.agent)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        lr = state.hyper.stage_lr[index]
        state = self._apply_grads(state, grads, lr).replace(key=key, update=state.update + 1)
        metrics = {"sft/loss": loss, "sft/oracle_success": stats["success"]}
        return state, metrics | {"env_steps": jnp.float32(traj.tokens.size)}

    def _policy_loss(self, params, batch, ref_log_probs, hyper: Hyperparams):
        """GRPO or PPO loss on a minibatch; returns (loss, metrics)."""
        cfg = self.config.algo
        traj, advantages, returns, prox_log_probs = batch
        logits, values = self.forward(params, traj)
        log_probs = algos.token_log_prob(logits, traj.legal, traj.actions)
        mask = traj.agent
        max_len = traj.actions.shape[1]
        clip = (hyper.clip_eps_low, hyper.clip_eps_high)
        mode = cfg.off_policy if self.config.rollout.staleness > 0 else "none"
        if mode == "decoupled":  # clipped against the proximal policy, weighted to the behaviour
            weights = algos.truncated_is_weights(prox_log_probs, traj.log_probs, cfg.is_cap)
            pg_loss, pg_stats = algos.clipped_policy_loss(
                log_probs, prox_log_probs, advantages, mask, *clip, mode=cfg.loss_agg,
                max_len=max_len, weights=weights,
            )  # fmt: skip
        elif mode == "tis":
            pg_loss = algos.truncated_is_policy_loss(
                log_probs, traj.log_probs, advantages, mask, cfg.is_cap, cfg.loss_agg, max_len
            )
            pg_stats = {}
        else:  # on-policy, or stale samples taken as on-policy
            pg_loss, pg_stats = algos.clipped_policy_loss(
                log_probs, traj.log_probs, advantages, mask, *clip, mode=cfg.loss_agg,
                max_len=max_len,
            )  # fmt: skip
        token_entropy = algos.masked_entropy(logits, traj.legal)
        entropy = algos.aggregate(token_entropy, mask, "token")
        bonus = algos.entropy_bonus(token_entropy, mask, cfg.entropy_floor)
        loss = pg_loss - hyper.entropy_coef * bonus
        metrics = {"loss/policy": pg_loss, "loss/entropy": entropy, **{
            f"loss/{k}": v for k, v in pg_stats.items()}}  # fmt: skip
        if cfg.kl_coef > 0:
            kl = algos.aggregate(
                algos.kl_penalty(log_probs, ref_log_probs, cfg.kl_estimator), mask, "token"
            )
            loss = loss + hyper.kl_coef * kl
            metrics["loss/kl_ref"] = kl
        if cfg.name == "ppo":
            valid = traj.segments >= 0
            value_loss = algos.clipped_value_loss(
                values, traj.values, returns, valid, cfg.vf_clip if cfg.vf_clip > 0 else None
            )
            loss = loss + hyper.vf_coef * value_loss
            metrics["loss/value"] = value_loss
        return loss, metrics

    def _advantages(self, traj: Trajectory, last_value, hyper: Hyperparams):
        cfg = self.config.algo
        if cfg.name == "grpo":
            r = self.config.rollout
            episode_rewards = traj.rewards.sum(axis=1).reshape(r.num_tasks, r.group_size)
            per_episode = algos.grpo_advantages(episode_rewards, cfg.normalize_std).reshape(-1)
            advantages = jnp.broadcast_to(per_episode[:, None], traj.rewards.shape)
            return advantages, None  # GRPO has no value targets
        advantages, returns = algos.gae(
            traj.rewards.T, traj.values.T, traj.dones.T, last_value, hyper.gamma, hyper.gae_lambda
        )
        advantages, returns = advantages.T, returns.T
        mask = traj.agent
        mean = algos.aggregate(advantages, mask, "token")
        std = jnp.sqrt(algos.aggregate((advantages - mean) ** 2, mask, "token"))
        return (advantages - mean) / (std + 1e-8), returns

    def collect(self, state: TrainState, key: jax.Array, params):
        """One rollout acting with ``params``: (state, trajectory, stats, last values)."""
        r = self.config.rollout
        if r.batching == "episodes":
            traj, stats, _ = rollout_episodes(
                self.env, state.env_params, self.policy_step(params),
                self.empty_cache(self.num_envs), key, r.num_tasks, r.group_size,
                shard=self.shard_batch,
            )  # fmt: skip
            return state, traj, stats, jnp.zeros(self.num_envs)
        cache = self.model.apply(
            params, state.env_state.transcript, state.obs.position,
            method=TransformerPolicy.prefill,
        )  # fmt: skip
        obs, env_state, cache, traj, stats = rollout_stream(
            self.env, state.env_params, self.policy_step(params), cache,
            state.obs, state.env_state, key, r.rollout_len, shard=self.shard_batch,
        )  # fmt: skip
        _, last_value, _ = self.model.apply(
            params, obs.token, obs.position, cache, method=TransformerPolicy.decode
        )
        return state.replace(obs=obs, env_state=env_state), traj, stats, last_value

    def minibatch_units(self, batch) -> tuple[Any, int]:
        """The batch as rows and how many consecutive rows make one shuffling unit: whole
        sequences (GRPO: whole groups), since the policy reads each sequence in one pass."""
        r = self.config.rollout
        return batch, (r.group_size if r.batching == "episodes" else 1)

    def rl_update(self, state: TrainState, index: int) -> tuple[TrainState, Metrics]:
        """One RL update: a rollout acting with the behaviour policy (the current one, or the
        oldest of the staleness buffer), then ``learn`` on it."""
        key, rollout_key, shuffle_key = jax.random.split(state.key, 3)
        stale = state.behaviour is not None
        acting = jax.tree.map(lambda b: b[0], state.behaviour) if stale else state.params
        state, traj, stats, last_value = self.collect(state, rollout_key, acting)
        return self.learn(state.replace(key=key), (traj, stats, last_value), shuffle_key, index)

    def learn(self, state: TrainState, rollout, shuffle_key: jax.Array, index: int):
        """The learner's half of an RL update: epochs of shuffled minibatch steps on
        ``rollout`` = ``(traj, stats, last_value)`` from ``collect``. With a staleness buffer
        the rollout's log-probs are the behaviour policy's and the loss corrects for them
        (``algo.off_policy``); an actor on another device may supply it (see
        ``benchmarks/decoupled.py --overlap``). Returns (state, metrics)."""
        cfg = self.config.algo
        traj, stats, last_value = rollout
        stale = state.behaviour is not None
        prox_log_probs = None  # the batch carries only what the loss reads (None: nothing)
        behaviour_stats = {}
        if stale:  # the learner's own policy and values at this update's start
            prox_logits, prox_values = self.forward(state.params, traj)
            prox_log_probs = algos.token_log_prob(prox_logits, traj.legal, traj.actions)
            traj = traj.replace(values=prox_values)
            log_ratio = prox_log_probs - traj.log_probs
            behaviour_stats = {
                "loss/behaviour_kl": algos.aggregate(
                    jnp.exp(log_ratio) - 1.0 - log_ratio, traj.agent, "token"
                ),
                "loss/is_weight": algos.aggregate(
                    algos.truncated_is_weights(prox_log_probs, traj.log_probs, cfg.is_cap),
                    traj.agent, "token",
                ),
            }  # fmt: skip
        advantages, returns = self._advantages(traj, last_value, state.hyper)
        ref_log_probs = None
        if cfg.kl_coef > 0:
            ref_logits, _ = self.forward(state.ref_params, traj)
            ref_log_probs = algos.token_log_prob(ref_logits, traj.legal, traj.actions)

        batch, rows_per_unit = self.minibatch_units(
            (traj, advantages, returns, ref_log_probs, prox_log_probs)
        )
        params_before = state.params
        units = jax.tree.leaves(batch)[0].shape[0] // rows_per_unit

        def epoch(state, epoch_key):
            order = jax.random.permutation(epoch_key, units)
            rows = (order[:, None] * rows_per_unit + jnp.arange(rows_per_unit)).reshape(-1)
            shuffled = jax.tree.map(lambda x: x[rows], batch)
            minibatches = jax.tree.map(
                lambda x: x.reshape(
                    cfg.num_minibatches, x.shape[0] // cfg.num_minibatches, *x.shape[1:]
                ),
                shuffled,
            )

            def minibatch_step(state, mb):
                mb_traj, mb_adv, mb_ret, mb_ref, mb_prox = mb
                grad_fn = jax.value_and_grad(self._policy_loss, has_aux=True)
                (loss, metrics), grads = grad_fn(
                    state.params, (mb_traj, mb_adv, mb_ret, mb_prox), mb_ref, state.hyper
                )
                metrics["loss/total"] = loss
                metrics["loss/grad_norm"] = optax.tree.norm(grads)
                return self._apply_grads(state, grads, state.hyper.stage_lr[index]), metrics

            return jax.lax.scan(minibatch_step, state, minibatches)

        state, metrics = jax.lax.scan(
            epoch, state, jax.random.split(shuffle_key, cfg.update_epochs)
        )
        metrics = jax.tree.map(jnp.mean, metrics) | behaviour_stats
        if stale:  # the parameters this update started from join the buffer, the oldest leaves
            push = lambda b, p: jnp.concatenate([b[1:], p[None]])  # noqa: E731
            state = state.replace(behaviour=jax.tree.map(push, state.behaviour, params_before))
        metrics.update({f"train/{k}": v for k, v in stats.items()})
        metrics["env_steps"] = jnp.float32(traj.actions.size)
        state = state.replace(update=state.update + 1)
        if self.levels:
            passed = stats["success"] >= self.config.curriculum.threshold
            level = jnp.minimum(state.level + passed, len(self.levels) - 1)
            state = state.replace(level=level, env_params=self._level_params(level))
            metrics["train/curriculum_level"] = level.astype(jnp.float32)
        return state, metrics

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, state: TrainState) -> Metrics:
        """Greedy episodes on held-out test tasks (the split no training task comes from), in
        the training environment at its target difficulty (``eval/...``) and in each named
        variant (``eval_<name>/...``)."""
        key = jax.random.fold_in(state.key, 1_000_003)
        metrics = self._evaluate_in(self.env, self.env_params, state.params, key, "eval")
        for name, (env, env_params) in self.eval_variants.items():
            metrics |= self._evaluate_in(env, env_params, state.params, key, f"eval_{name}")
        return metrics

    def _evaluate_in(self, env, env_params, params, key, prefix: str) -> Metrics:
        n = self.config.eval_episodes
        _, stats, _ = rollout_episodes(
            env, env_params.replace(split=1), self.policy_step(params, greedy=True),
            self.empty_cache(n), key, n, shard=self.shard_batch,
        )  # fmt: skip
        return {f"{prefix}/{k}": v for k, v in stats.items()}

    def run_chunk(self, state: TrainState, num_updates: int, index: int):
        """``num_updates`` updates of stage ``index``, then a held-out evaluation."""
        if not 0 <= index < len(self.stages):
            raise ValueError(f"stage index {index} out of range: {len(self.stages)} stages")
        update = self.sft_update if self.stages[index].kind == "sft" else self.rl_update
        state, metrics = jax.lax.scan(
            lambda s, _: update(s, index), state, None, length=num_updates
        )
        return state, metrics, self.evaluate(state)


def make_train(config: Config):
    """PureJaxRL-style: ``train(key, hyper=None) -> (state, stage_metrics)``, jit- and
    vmap-able over both (``hyper``: ``Hyperparams``, by default the config's).

    ``stage_metrics`` has one entry per pipeline stage: a list of ``(metrics, evals)`` pairs,
    metrics stacked per update and evaluation metrics per ``eval_interval`` chunk.
    """
    trainer = build_trainer(config)

    def run_stage(state, num_updates, index):
        """Chunks of ``eval_interval`` updates (the last may be shorter), each then evaluated."""
        chunk = config.eval_interval

        def one_chunk(state, _):
            state, metrics, evals = trainer.run_chunk(state, chunk, index)
            return state, (metrics, evals)

        outputs = []
        if num_updates >= chunk:
            state, out = jax.lax.scan(one_chunk, state, None, length=num_updates // chunk)
            outputs.append(out)
        if num_updates % chunk:
            state, metrics, evals = trainer.run_chunk(state, num_updates % chunk, index)
            outputs.append(jax.tree.map(lambda x: x[None], (metrics, evals)))
        return state, outputs

    def train(key: jax.Array, hyper: Hyperparams | None = None):
        chex.assert_shape(key, jax.random.PRNGKey(0).shape)
        state = trainer.init(key, hyper)
        outputs = []
        for index, stage in enumerate(trainer.stages):
            state = trainer.start_stage(state, index)
            state, out = run_stage(state, stage.updates, index)
            outputs.append(out)
        return state, tuple(outputs)

    return train
