"""Rollouts: a ``lax.scan`` over token steps of the vmapped environment and a policy step.

Two ways to batch episodes (DESIGN.md):

- ``rollout_episodes`` (GRPO): every slot starts a fresh episode and runs to the transcript
  limit; a slot whose episode ended idles. ``Trajectory.group`` names each row's task (the
  ``G`` samples of a task are written next to each other, so minibatches can take whole
  groups).
- ``rollout_stream`` (PPO): a slot whose episode ended gets a fresh one at once (up to a
  quarter of the slots per step; a slot beyond that idles a step), so slots rarely idle; an
  episode cut at the rollout boundary continues in the next rollout. The transcript written
  before the rollout began is kept as ``context`` so the update sees the full history.

A policy step is ``step(key, obs, env_state, carry) -> (action, log_prob, value, carry)``;
the carry is the policy's own state (a transformer's KV cache). Both return a ``Rollout``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import stats as stats_table
from agentic_jax.harness import Harness, HarnessParams, HarnessState, Observation, Phase

PolicyStep = Callable[
    [jax.Array, Observation, Any, Any], tuple[jax.Array, jax.Array, jax.Array, Any]
]
Shard = Callable[[Any], Any]  # constrains a pytree of [N, ...] batch arrays to a sharding


def no_sharding(tree: Any) -> Any:
    return tree


@struct.dataclass
class Trajectory:
    """A batch of token steps, batch-major ``[N, L]``, ready for a full-sequence forward."""

    tokens: jax.Array  # [N, L] int32, the policy's input token at each step
    positions: jax.Array  # [N, L] int32, its position in its episode's transcript
    segments: jax.Array  # [N, L] int32, episode index within this rollout; -1 = idle slot
    actions: jax.Array  # [N, L] int32, the token chosen by the policy at this step
    agent: jax.Array  # [N, L] bool, the step's token was the agent's (the loss mask)
    legal: jax.Array  # [N, L, V] bool, legal tokens at this step
    log_probs: jax.Array  # [N, L] float32, behaviour log-probability of the action
    values: jax.Array  # [N, L] float32
    rewards: jax.Array  # [N, L] float32
    dones: jax.Array  # [N, L] bool, an episode ended at this step
    context: jax.Array  # [N, C] int32, transcript before the rollout (C = 0 for episodes)
    context_len: jax.Array  # [N] int32, valid context tokens
    group: jax.Array  # [N] int32, the task each row was sampled for (GRPO's group)

    @property
    def loss_mask(self) -> jax.Array:
        """[N, L] bool: the agent's own tokens, the only ones a loss covers."""
        return self.agent

    @property
    def value_mask(self) -> jax.Array:
        """[N, L] bool: the steps of real episodes (not an idle slot), where values are fit."""
        return self.segments >= 0


@struct.dataclass
class Rollout:
    """What a rollout returns: the trajectory, its statistics (``stats.STATS`` names), the
    bootstrap value of the observation after the last step (zero when every episode ran to
    its end), and where every slot stands afterwards (a stream's carry; the finished
    transcripts of ``episodes``)."""

    trajectory: Trajectory
    stats: dict[str, jax.Array]
    last_value: jax.Array  # [N]
    obs: Observation
    env_state: HarnessState
    # [N] the segment (episode index in the rows) of ``obs``: where a full forward places the
    # observation after the last step to recompute the bootstrap value (stream; else None).
    next_segments: jax.Array | None = None


def forward_inputs(traj: Trajectory) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Tokens, positions and segments of ``context + steps`` for the policy's full forward.

    The policy's outputs for the steps are the last ``L`` positions of its output.
    """
    num_envs, context_width = traj.context.shape
    context_positions = jnp.broadcast_to(jnp.arange(context_width), (num_envs, context_width))
    context_segments = jnp.where(context_positions < traj.context_len[:, None], 0, -1)
    return (
        jnp.concatenate([traj.context, traj.tokens], axis=1),
        jnp.concatenate([context_positions, traj.positions], axis=1).astype(jnp.int32),
        jnp.concatenate([context_segments, traj.segments], axis=1).astype(jnp.int32),
    )


def as_rows(env: Harness, tree: Any) -> Any:
    """Per-context arrays of a batch of episodes, ``[N, C, ...]``, as rows ``[N * C, ...]``
    (an environment of several contexts, ``agentic_jax.delegation``); unchanged for one."""
    if env.num_contexts == 1:
        return tree
    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), tree)


def episodes_batch_step(env: Harness):
    """The ``episodes`` batch step: every slot steps; a finished one idles (``Phase.DONE``).
    An episode of several contexts takes one action per context, its rows in order."""
    step = jax.vmap(env.step_without_reset, in_axes=(0, 0, 0, None))
    contexts = env.num_contexts

    def step_batch(key, state, action, params):
        num_envs = action.shape[0] // contexts
        action = action if contexts == 1 else action.reshape(num_envs, contexts)
        obs, state, reward, terminated, truncated, info = step(
            jax.random.split(key, num_envs), state, action, params
        )
        obs, reward, done, info = as_rows(env, (obs, reward, terminated | truncated, info))
        return obs, state, reward, done, info | {"reset": jnp.zeros_like(done)}

    return step_batch


def stream_batch_step(env: Harness, max_resets: int):
    """The ``stream`` batch step: step every slot, then reset up to ``max_resets`` finished ones.

    gymnax's ``step`` resets inside every environment at every step (under ``vmap`` both
    branches run), so a costly task sampler is paid ``N`` times per step. Here only
    ``max_resets`` fresh episodes are sampled per step and handed to the finished slots in
    order; a finished slot beyond them idles in ``Phase.DONE`` and is reset on a later step.
    ``info["reset"]`` marks the slots that start a new episode.
    """
    step = episodes_batch_step(env)

    def step_batch(key, state, action, params):
        step_key, reset_key = jax.random.split(key)
        obs, state, reward, done, info = step(step_key, state, action, params)
        with jax.named_scope("fresh_episodes"):  # a profile's name for this part
            finished = state.phase == Phase.DONE
            num_envs = finished.shape[0]
            # The first max_resets finished slots, in order (num_envs past the end: none).
            slots = jnp.nonzero(finished, size=max_resets, fill_value=num_envs)[0]
            fresh_obs, fresh_state = jax.vmap(env.reset_env, in_axes=(0, None))(
                jax.random.split(reset_key, max_resets), params
            )
            place = lambda current, fresh: current.at[slots].set(fresh, mode="drop")  # noqa: E731
            obs = jax.tree.map(place, obs, fresh_obs)
            state = jax.tree.map(place, state, fresh_state)
            reset = jnp.zeros_like(finished).at[slots].set(True, mode="drop")
        return obs, state, reward, done, info | {"reset": reset}

    return step_batch


def default_max_resets(num_envs: int) -> int:
    """Fresh episodes sampled per stream step: a quarter of the slots, at least one. An
    episode lasts at least a few tokens, so more than a quarter rarely end at once."""
    return max(1, num_envs // 4)


def _scan_steps(
    env, step_batch, env_params, policy_step, carry, obs, state, key, num_steps, segments, shard
):
    """The shared scan: act, step every environment, record. ``shard`` keeps the batch
    carry (observations, states, policy carry) split over devices along its first axis."""

    def body(loop, step_key):
        obs, state, carry, segments = loop
        key_act, key_env = jax.random.split(step_key)
        action, log_prob, value, carry = policy_step(key_act, obs, state, carry)
        next_obs, next_state, reward, done, info = step_batch(key_env, state, action, env_params)
        idle = as_rows(env, env.idle(state))
        record = {
            "tokens": obs.token,
            "positions": obs.position,
            "segments": jnp.where(idle, -1, segments),
            "actions": action,
            "agent": info["agent_step"],
            "legal": obs.legal_mask,
            "log_probs": log_prob,
            "values": value,
            "rewards": reward,
            "dones": done,
            "infos": {k: info[k] for k in stats_table.RECORDED_INFOS if k in info},
        }
        return shard((next_obs, next_state, carry, segments + info["reset"])), record

    loop = shard((obs, state, carry, segments))
    (obs, state, carry, segments), records = jax.lax.scan(
        body, loop, jax.random.split(key, num_steps)
    )
    batch_major = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), records)
    return obs, state, carry, segments, batch_major


def _trajectory(records: dict, context: jax.Array, context_len: jax.Array, group) -> Trajectory:
    fields = {k: v for k, v in records.items() if k != "infos"}
    return Trajectory(**fields, context=context, context_len=context_len, group=group)


def rollout_episodes(
    env: Harness,
    env_params: HarnessParams,
    policy_step: PolicyStep,
    policy_carry: Any,
    key: jax.Array,
    num_tasks: int,
    group_size: int = 1,
    shard: Shard = no_sharding,
) -> Rollout:
    """``num_tasks x group_size`` fresh episodes, each run to the transcript limit: the
    ``group_size`` samples of task ``g`` are rows ``g * group_size ...`` with ``group`` g.

    The final environment states' ``transcript`` holds each finished episode.
    """
    key_reset, key_steps = jax.random.split(key)
    task_keys = jax.random.split(key_reset, num_tasks)
    reset_keys = jnp.repeat(task_keys, group_size, axis=0)
    group = jnp.repeat(jnp.arange(num_tasks, dtype=jnp.int32), group_size * env.num_contexts)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, env_params)
    obs = as_rows(env, obs)
    num_rows = num_tasks * group_size * env.num_contexts
    segments = jnp.zeros(num_rows, jnp.int32)
    obs, state, _, _, records = _scan_steps(
        env,
        episodes_batch_step(env),
        env_params,
        policy_step,
        policy_carry,
        obs,
        state,
        key_steps,
        env.episode_steps,
        segments,
        shard,
    )
    empty = jnp.zeros((num_rows, 0), jnp.int32)
    traj = _trajectory(records, empty, jnp.zeros(num_rows, jnp.int32), group)
    if env.num_contexts == 1:
        stats = stats_table.episode_stats(traj, records["infos"])
    else:
        stats = stats_table.system_stats(traj, records["infos"], env.num_contexts)
    return Rollout(
        trajectory=traj,
        stats=stats,
        last_value=jnp.zeros(num_rows, jnp.float32),
        obs=obs,
        env_state=state,
    )


def rollout_stream(
    env: Harness,
    env_params: HarnessParams,
    policy_step: PolicyStep,
    policy_carry: Any,
    obs: Observation,
    state: HarnessState,
    key: jax.Array,
    num_steps: int,
    shard: Shard = no_sharding,
) -> Rollout:
    """``num_steps`` steps of auto-resetting environments, from the carry ``(obs, state)``;
    the returned ``Rollout`` holds the carry to continue from and the value to bootstrap
    the episodes cut at the boundary (the policy step's value of the last observation)."""
    if env.num_contexts > 1:
        raise ValueError(
            "an environment of several contexts (delegation) runs with episodes "
            "batching (rollout.batching=episodes), not stream"
        )
    context, context_len = state.transcript, obs.position
    num_envs = obs.token.shape[0]
    segments = jnp.zeros(num_envs, jnp.int32)
    step_batch = stream_batch_step(env, default_max_resets(num_envs))
    obs, state, carry, next_segments, records = _scan_steps(
        env,
        step_batch,
        env_params,
        policy_step,
        policy_carry,
        obs,
        state,
        key,
        num_steps,
        segments,
        shard,
    )
    _, _, last_value, _ = policy_step(jax.random.fold_in(key, num_steps), obs, state, carry)
    traj = _trajectory(records, context, context_len, jnp.arange(num_envs, dtype=jnp.int32))
    return Rollout(
        trajectory=traj,
        stats=stats_table.episode_stats(traj, records["infos"]),
        last_value=last_value,
        obs=obs,
        env_state=state,
        next_segments=next_segments,
    )


def oracle_step(env: Harness) -> PolicyStep:
    """The oracle as a policy step: it plays its plan (for SFT data and as an upper bound)."""

    def step(key, obs, state, carry):
        del key
        action = jax.vmap(env.oracle_action)(state).reshape(-1)  # one per row
        zeros = jnp.zeros(action.shape, jnp.float32)
        return action, zeros, zeros, carry

    return step


def sample_categorical(key: jax.Array, log_probs: jax.Array) -> jax.Array:
    """One token per row of ``log_probs`` [..., V]: exactly ``jax.random.categorical(key,
    log_probs)`` (the same Gumbel noise, the same first maximum), with the argmax written as
    a max and a first-index min, two plain reductions that XLA's CPU backend vectorises (its
    variadic value-and-index reduce was a fifth of a decode step)."""
    scores = log_probs + jax.random.gumbel(key, log_probs.shape, log_probs.dtype)
    best = scores.max(axis=-1, keepdims=True)
    index = jnp.arange(log_probs.shape[-1], dtype=jnp.int32)
    return jnp.min(jnp.where(scores == best, index, log_probs.shape[-1]), axis=-1)


def sample_legal(key: jax.Array, legal_mask: jax.Array) -> jax.Array:
    """A uniformly random legal token per row of ``legal_mask`` [..., V], from one uniform
    draw per row (a categorical over V logits would draw V): the (k + 1)-th legal token, for
    k uniform in [0, legal count).

    The token is found by a rank select on the mask packed into 32-bit words: popcounts pick
    the word, then halve the word five times. That is a few ops per word, where a prefix sum
    over the V tokens costs a pass over a [..., V] int32 array per row (the largest cost of
    a random-policy step before).
    """
    vocab = legal_mask.shape[-1]
    num_words = -(-vocab // 32)
    padding = [(0, 0)] * (legal_mask.ndim - 1) + [(0, 32 * num_words - vocab)]
    bits = jnp.pad(legal_mask, padding).reshape(*legal_mask.shape[:-1], num_words, 32)
    shifts = jnp.arange(32, dtype=jnp.uint32)
    words = jnp.sum(bits.astype(jnp.uint32) << shifts, axis=-1, dtype=jnp.uint32)
    counts = jax.lax.population_count(words).astype(jnp.int32)  # legal tokens per word
    total = counts.sum(-1)
    pick = jnp.floor(jax.random.uniform(key, total.shape) * total).astype(jnp.int32)
    pick = jnp.clip(pick, 0, jnp.maximum(total - 1, 0))
    before = jnp.cumsum(counts, axis=-1) - counts  # legal tokens in the earlier words
    word_index = jnp.sum(before <= pick[..., None], axis=-1) - 1
    word = jnp.take_along_axis(words, word_index[..., None], axis=-1)[..., 0]
    rank = pick - jnp.take_along_axis(before, word_index[..., None], axis=-1)[..., 0]
    position = jnp.zeros_like(word)
    for width in (16, 8, 4, 2, 1):  # is the rank-th set bit in the lower `width` bits?
        low = jax.lax.population_count((word >> position) & ((1 << width) - 1)).astype(jnp.int32)
        skip = rank >= low
        rank = jnp.where(skip, rank - low, rank)
        position = jnp.where(skip, position + width, position)
    token = word_index * 32 + position.astype(jnp.int32)
    return jnp.where(total > 0, token, 0).astype(jnp.int32)


def random_step(key, obs: Observation, state, carry):
    """A uniformly random legal token."""
    action = sample_legal(key, obs.legal_mask)
    log_prob = -jnp.log(obs.legal_mask.sum(-1).astype(jnp.float32))
    return action, log_prob, jnp.zeros_like(log_prob), carry
