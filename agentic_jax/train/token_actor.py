"""The token actor: the transformer policy acting in an agentic-jax environment.

What the update functions ask of an actor (``ClassicActor`` answers the same for gymnax's
vector environments):

- ``init_params(key)``, ``init_carry(key, env_params)`` (a stream's environments, or None);
- ``evaluate_actions(params, trajectory) -> PolicyOutputs``: one full-sequence forward pass;
- ``collect(params, env_params, obs, env_state, key, shard) -> Rollout``: sample a rollout;
- ``demonstrations(env_params, key, shard) -> Rollout``: oracle episodes for SFT;
- ``evaluate(params, key, shard) -> metrics``: greedy held-out episodes;
- ``minibatch_rows(batch)``: the batch as rows, and how many consecutive rows shuffle as one.

An environment of several contexts (an orchestrator and its sub-agents) gives each context
its own rows (its own KV cache and transcript): ``num_contexts`` rows per episode.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from agentic_jax import envs as env_registry
from agentic_jax import tokens as tk
from agentic_jax.algos import ALGORITHMS, algorithm
from agentic_jax.algos.masked import masked_entropy, masked_log_softmax, token_log_prob
from agentic_jax.algos.policy import PolicyOutputs
from agentic_jax.models import TransformerPolicy
from agentic_jax.monitors import ACTION_RULES
from agentic_jax.rollout import (
    Rollout,
    Trajectory,
    forward_inputs,
    oracle_step,
    rollout_episodes,
    rollout_stream,
    sample_categorical,
)
from agentic_jax.train.config import Config

Metrics = dict[str, jax.Array]


def check_token_run(config: Config, num_contexts: int) -> None:
    """The rules a token environment adds to the config's own (``config.check_combinations``):
    they depend on the environment (its sub-agent contexts, its action monitor's rules)."""
    model, rollout, algo = config.model, config.rollout, config.algo
    if model.kind != "transformer":
        raise ValueError(
            f"model.kind={model.kind} is for gymnax's vector environments (e.g. "
            f"CartPole-v1); {config.env.id} is a token environment: use model.kind=transformer"
        )
    if num_contexts > 1 and (not algorithm(algo.name).grouped or rollout.balance_modes):
        grouped = ", ".join(n for n, a in ALGORITHMS.items() if a.grouped)
        raise ValueError(
            f"{config.env.id} with sub-agents (sub_agents > 0) trains with a group algorithm on "
            f"episodes ({grouped}) and no rollout.balance_modes (got {algo.name}, "
            f"balance_modes={rollout.balance_modes})"
        )
    if algo.monitor_penalty > 0 and (
        rollout.batching != "episodes"
        or num_contexts > 1
        or (algo.monitor == "action" and config.env.id not in ACTION_RULES)
        or (algo.monitor == "transcript") != bool(algo.monitor_weights)
    ):
        raise ValueError(
            f"algo.monitor_penalty puts a monitor in the reward of single-agent episodes "
            f"(rollout.batching=episodes): the action monitor where an environment has "
            f"action rules ({', '.join(ACTION_RULES)}), the transcript monitor with "
            f"algo.monitor_weights (only it); got {config.env.id}, batching={rollout.batching}, "
            f"monitor={algo.monitor}, monitor_weights={algo.monitor_weights}"
        )
    if model.role_params == "separate" and num_contexts == 1:
        raise ValueError(
            f"model.role_params=separate gives an orchestrator and its sub-agents their own "
            f"parameters; {config.env.id} has no sub-agents here (set env.overrides.sub_agents)"
        )


class TokenActor:
    def __init__(self, config: Config):
        self.config = config
        self.env_overrides = dict(config.env.overrides)
        if any("behaviour_probs" in stage.env for stage in config.stages):
            # A stage's corpus mixture: the environment must build the behaviours in.
            self.env_overrides.setdefault("behaviours", True)
        self.env, env_params = env_registry.make(config.env.id, **self.env_overrides)
        self.env_params = env_params.replace(tool_bonus=config.tool_bonus)
        self.num_contexts = self.env.num_contexts  # rows per episode: 1 + sub-agent slots
        check_token_run(config, self.num_contexts)
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
        r = config.rollout
        self.num_envs = r.num_tasks * r.group_size if r.batching == "episodes" else r.num_envs
        self.eval_variants = {
            name: self._eval_variant(name, overrides)
            for name, overrides in config.env.eval_variants.items()
        }

    def make_env_params(self, overrides: dict) -> Any:
        """The environment's parameters with traced ``overrides`` on ``env.overrides``."""
        config = self.config
        params = env_registry.make(config.env.id, **(self.env_overrides | overrides))[1]
        return params.replace(tool_bonus=config.tool_bonus)

    def _eval_variant(self, name: str, overrides: dict) -> tuple[Any, Any]:
        """A named evaluation variant of ``env.eval_variants``: (env, params)."""
        config = self.config
        env, params = env_registry.make(config.env.id, **(self.env_overrides | overrides))
        if env.max_len != self.env.max_len:
            raise ValueError(
                f"env.eval_variants.{name}: transcript length {env.max_len} differs from "
                f"the training environment's {self.env.max_len}; set max_len in env.overrides"
            )
        # Held-out tasks unless the variant asks for a split itself ({train: {split: 0}}).
        return env, params.replace(tool_bonus=config.tool_bonus, split=overrides.get("split", 1))

    # ------------------------------------------------------------------ the policy
    def init_params(self, key: jax.Array) -> Any:
        """The policy's parameters; with ``model.role_params=separate``, one set per role
        stacked on a leading axis (0 the orchestrator's, 1 the sub-agents')."""
        dummy = jnp.zeros((1, self.env.max_len), jnp.int32)
        if self.config.model.role_params == "separate":
            return jax.vmap(lambda k: self.model.init(k, dummy, dummy, dummy))(
                jax.random.split(key, 2)
            )
        return self.model.init(key, dummy, dummy, dummy)

    def _by_role(self, params: Any, apply, *rows: Any) -> Any:
        """``apply(params, *rows)`` for inputs whose leading axis is rows; with separate
        parameters per role, each role's rows (context 0 of every episode: the orchestrator's;
        the rest: its sub-agents') through its own set, the outputs back in row order."""
        if self.config.model.role_params == "shared":
            return apply(params, *rows)
        contexts = self.num_contexts
        by_episode = jax.tree.map(lambda x: x.reshape(-1, contexts, *x.shape[1:]), rows)
        orchestrator = jax.tree.map(lambda x: x[:, 0], by_episode)
        subagents = jax.tree.map(lambda x: x[:, 1:].reshape(-1, *x.shape[2:]), by_episode)
        role = lambda index: jax.tree.map(lambda p: p[index], params)  # noqa: E731
        out_orchestrator = apply(role(0), *orchestrator)
        out_subagents = apply(role(1), *subagents)

        def merge(a, b):
            b = b.reshape(a.shape[0], contexts - 1, *b.shape[1:])
            return jnp.concatenate([a[:, None], b], axis=1).reshape(-1, *a.shape[1:])

        return jax.tree.map(merge, out_orchestrator, out_subagents)

    def init_carry(self, key: jax.Array, env_params: Any) -> tuple[Any, Any]:
        """A stream's environments, reset; (None, None) for ``episodes`` batching."""
        if self.config.rollout.batching != "stream":
            return None, None
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset, in_axes=(0, None))(keys, env_params)

    def evaluate_actions(self, params: Any, trajectory: Trajectory) -> PolicyOutputs:
        """Every step's action log-prob, entropy and value, in one causal forward pass."""
        tokens, positions, segments = forward_inputs(trajectory)
        logits, values = self._by_role(
            params, lambda p, *x: self.model.apply(p, *x)[:2], tokens, positions, segments
        )
        steps = trajectory.tokens.shape[1]
        logits, values = logits[:, -steps:] / self.config.rollout.temperature, values[:, -steps:]
        return PolicyOutputs(
            log_probs=token_log_prob(logits, trajectory.legal, trajectory.actions),
            entropy=masked_entropy(logits, trajectory.legal),
            values=values,
        )

    def bootstrap_values(self, params: Any, rollout: Rollout) -> jax.Array:
        """[N] the value of the observation after a stream's last step under ``params``: one
        full forward over the context, the steps and that observation (a stale actor's
        ``rollout.last_value`` came from other parameters). Episodes: the rollout's own."""
        if rollout.next_segments is None:
            return rollout.last_value
        tokens, positions, segments = forward_inputs(rollout.trajectory)
        obs = rollout.obs
        tokens = jnp.concatenate([tokens, obs.token[:, None]], axis=1)
        positions = jnp.concatenate([positions, obs.position[:, None]], axis=1)
        segments = jnp.concatenate([segments, rollout.next_segments[:, None]], axis=1)
        _, values = self._by_role(
            params, lambda p, *x: self.model.apply(p, *x)[:2], tokens, positions, segments
        )
        return values[:, -1]

    def policy_step(self, params: Any, greedy: bool = False, balance_modes: bool = False):
        """The rollout's policy step: one token decoded through the KV cache (with
        ``balance_modes``, the mode decision drawn by ``balanced_mode_decision``)."""

        def step(key, obs, env_state, cache):
            logits, value, cache = self._by_role(
                params,
                partial(self.model.apply, method=TransformerPolicy.decode),
                obs.token,
                obs.position,
                cache,
            )
            if not greedy:
                logits = logits / self.config.rollout.temperature
            log_probs = masked_log_softmax(logits, obs.legal_mask)
            if greedy:
                action = jnp.argmax(log_probs, axis=-1)
            else:
                sample_key, mode_key = jax.random.split(key) if balance_modes else (key, None)
                action = sample_categorical(sample_key, log_probs)
            chosen = jnp.take_along_axis(log_probs, action[:, None], axis=-1)[:, 0]
            if balance_modes:
                action, chosen = balanced_mode_decision(
                    mode_key, logits, obs, env_state, action, chosen, self.config.rollout.group_size
                )
            return action.astype(jnp.int32), chosen, value, cache

        return step

    # ------------------------------------------------------------------ rollouts
    def collect(self, params, env_params, obs, env_state, key, shard) -> Rollout:
        """One rollout acting with ``params``: fresh groups of episodes, or a stream's next
        ``rollout_len`` steps from ``(obs, env_state)`` (its cache prefilled from them)."""
        r = self.config.rollout
        if r.batching == "episodes":
            return rollout_episodes(
                self.env,
                env_params,
                self.policy_step(params, balance_modes=r.balance_modes),
                self.model.init_cache(self.num_envs * self.num_contexts),
                key,
                r.num_tasks,
                r.group_size,
                shard=shard,
            )
        cache = self.model.apply(
            params, env_state.transcript, obs.position, method=TransformerPolicy.prefill
        )
        return rollout_stream(
            self.env,
            env_params,
            self.policy_step(params),
            cache,
            obs,
            env_state,
            key,
            r.rollout_len,
            shard=shard,
        )

    def demonstrations(self, env_params: Any, key: jax.Array, shard) -> Rollout:
        """``sft.num_episodes`` episodes of the oracle playing its plan (``oracle_mode``)."""
        return rollout_episodes(
            self.env,
            env_params,
            oracle_step(self.env),
            None,
            key,
            self.config.sft.num_episodes,
            shard=shard,
        )

    def evaluate(self, params: Any, key: jax.Array, shard) -> Metrics:
        """Greedy (with ``eval_sample``, sampled) episodes on held-out test tasks (the split no
        training task comes from), in the training environment at its target difficulty
        (``eval/...``) and in each named variant (``eval_<name>/...``; a variant that sets
        ``split: 0`` plays training tasks, for the train/test gap)."""
        held_out = self.env_params.replace(split=1)
        metrics = self._evaluate_in(self.env, held_out, params, key, "eval", shard)
        for name, (env, env_params) in self.eval_variants.items():
            metrics |= self._evaluate_in(env, env_params, params, key, f"eval_{name}", shard)
        return metrics

    def _evaluate_in(self, env, env_params, params, key, prefix: str, shard) -> Metrics:
        n = self.config.eval_episodes
        rollout = rollout_episodes(
            env,
            env_params,
            self.policy_step(params, greedy=not self.config.eval_sample),
            self.model.init_cache(n * self.num_contexts),
            key,
            n,
            shard=shard,
        )
        return {f"{prefix}/{k}": v for k, v in rollout.stats.items()}

    def minibatch_rows(self, batch: Any) -> tuple[Any, int]:
        """The batch as rows and how many consecutive rows make one shuffling unit: whole
        sequences (GRPO: whole groups), since the policy reads each sequence in one pass."""
        r = self.config.rollout
        return batch, (r.group_size * self.num_contexts if r.batching == "episodes" else 1)


def balanced_mode_decision(key, logits, obs, env_state, action, log_prob, group_size: int):
    """AdaptThink's balanced sampler for the think/no-think decision, the first agent token of
    an episode where ``<think>`` and another token are legal: rows ``0 .. G/2 - 1`` of each
    group of ``group_size`` write ``<think>`` (behaviour probability 1/2), the others a token
    drawn from the policy without ``<think>`` (1/2 times its renormalised probability).
    Elsewhere the policy's own ``action`` and ``log_prob`` stand. Returns (action, log_prob)."""
    legal = obs.legal_mask
    deciding = ~env_state.agent_written.any(axis=-1) & legal[:, tk.THINK_OPEN] & (legal.sum(-1) > 1)
    thinks = jnp.arange(action.shape[0]) % group_size < group_size // 2
    without_think = masked_log_softmax(logits, legal.at[:, tk.THINK_OPEN].set(False))
    other = sample_categorical(key, without_think)
    other_log_prob = jnp.take_along_axis(without_think, other[:, None], axis=-1)[:, 0]
    forced = jnp.where(thinks, tk.THINK_OPEN, other)
    forced_log_prob = jnp.log(0.5) + jnp.where(thinks, 0.0, other_log_prob)
    return (
        jnp.where(deciding, forced, action),
        jnp.where(deciding, forced_log_prob, log_prob),
    )
