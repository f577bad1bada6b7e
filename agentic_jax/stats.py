"""The one table of episode and rollout statistics, and the reductions that compute them.

Every statistic a run logs is declared here once: its name, how a chunk of updates averages
it, where its value comes from, and how a rollout reduces it. ``episode_stats`` and
``system_stats`` compute the rollout's statistics from this table alone, and the host loop
averages a chunk's ``train/NAME`` values by ``averaged(NAME)``: a statistic not in the table
is an error there, so a new one is added in this file only.

Where a value comes from (``Source``):

- ``HARNESS``: a ``HarnessState`` counter (``field``), read where the episode ends; the
  harness puts every one in its step ``info``.
- ``SYSTEM``: a delegating system's counter (a ``SystemState`` field or property), read
  where the orchestrator's episode ends.
- ``ROLLOUT``: reduced from the rollout's trajectory by the statistic's own ``reduce``.
- ``SUBAGENT``: a harness counter of the sub-agents' episodes (``field``), read where they end.
- ``UPDATE``: the learner's (it needs the update's groups, monitor flags or curriculum
  level): ``agentic_jax.train.update`` passes them to the statistic's ``reduce``.

How a chunk averages (``Averaged``):

- ``EPISODE``: a mean over the episodes that ended in an update. With ``stream`` batching an
  update may end none (its value 0 means nothing), so a chunk weights each update by the
  episodes it ended.
- ``ROLLOUT``: one value per update (a count, a share, a level): a chunk takes the plain mean.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


class Averaged(enum.Enum):
    EPISODE = "per episode"
    ROLLOUT = "per rollout"


class Source(enum.Enum):
    HARNESS = "harness"
    SYSTEM = "system"
    ROLLOUT = "rollout"
    SUBAGENT = "subagent"
    UPDATE = "update"


# ROLLOUT: (trajectory [N, L] with dones, rewards and agent; infos: each recorded info [N, L])
# -> value; UPDATE: (the update's own values, as ``update`` passes them) -> value.
Reduce = Callable[..., jax.Array]


@dataclass(frozen=True)
class Stat:
    name: str
    averaged: Averaged
    description: str
    source: Source
    field: str | None = None  # HARNESS, SYSTEM, SUBAGENT: the state field it reads
    reduce: Reduce | None = None  # ROLLOUT, UPDATE: how it is computed


def ended(traj: Any) -> tuple[jax.Array, jax.Array]:
    """(dones as floats [N, L], the number of episodes that ended, at least 1)."""
    dones = traj.dones.astype(jnp.float32)
    return dones, jnp.maximum(dones.sum(), 1.0)


def mean_at_end(values: jax.Array, traj: Any) -> jax.Array:
    """A per-step counter's mean over the episodes that ended, read at their last step."""
    dones, count = ended(traj)
    return (values * dones).sum() / count


def failed_think_tokens(traj: Any, infos: dict) -> jax.Array:
    """Thinking tokens per failed episode (Dr.GRPO's measure: how long wrong answers think)."""
    failed = traj.dones.astype(jnp.float32) * (1.0 - infos["success"])
    return (infos["think_tokens"] * failed).sum() / jnp.maximum(failed.sum(), 1.0)


def informative_groups(
    episode_rewards: jax.Array, group: jax.Array, num_groups: int, present: jax.Array | None = None
) -> jax.Array:
    """The share of the groups present whose rewards are not all equal. Only these carry an
    advantage: a group whose episodes all earn the same reward (all solved, or all failed)
    has zero advantage everywhere, so a flat RL curve with this near 0 has nothing to learn.
    ``present`` [N] bool: the rows that hold an episode (default: all)."""
    rewards = episode_rewards.astype(jnp.float32)
    present = jnp.ones(rewards.shape, bool) if present is None else present
    high = jax.ops.segment_max(jnp.where(present, rewards, -jnp.inf), group, num_groups)
    low = jax.ops.segment_min(jnp.where(present, rewards, jnp.inf), group, num_groups)
    in_group = jax.ops.segment_sum(present.astype(jnp.float32), group, num_groups) > 0
    return jnp.sum(in_group & (high > low)) / jnp.maximum(jnp.sum(in_group), 1)


EPISODE, ROLLOUT = Averaged.EPISODE, Averaged.ROLLOUT
HARNESS, SYSTEM, FROM_ROLLOUT = Source.HARNESS, Source.SYSTEM, Source.ROLLOUT
SUBAGENT, UPDATE = Source.SUBAGENT, Source.UPDATE

# A declarative table, one statistic per entry (kept compact by hand).
STATS: tuple[Stat, ...] = (
    Stat("success", EPISODE, "share of episodes whose answer was verified correct", HARNESS,
         "success"),
    Stat("tool_calls", EPISODE, "tool calls per episode", HARNESS, "tool_calls"),
    Stat("tool_errors", EPISODE, "tool calls per episode whose status was not ok", HARNESS,
         "tool_errors"),
    Stat("think_tokens", EPISODE, "tokens written inside <think> per episode", HARNESS,
         "think_tokens"),
    Stat("answer_tokens", EPISODE, "tokens written inside <answer> per episode", HARNESS,
         "answer_len"),
    Stat("length", EPISODE, "transcript tokens per episode, forced ones included", HARNESS,
         "length"),
    Stat("invalid", EPISODE, "share of episodes ended by an illegal token", HARNESS, "invalid"),
    Stat("hacks", EPISODE, "uses of a deliberate leak per episode (leak variants)", HARNESS,
         "hacks"),
    Stat("aborts", EPISODE, "share of episodes the agent ended with <abort> (saying the task "
         "cannot be done honestly)", HARNESS, "aborted"),
    Stat("impossible", EPISODE, "share of episodes whose task had no honest solution "
         "(impossible_rate)", HARNESS, "impossible"),
    Stat("cheats", EPISODE, "share of episodes solved although the task had no honest "
         "solution: cheats by construction (cheats / impossible: ImpossibleBench's cheating "
         "rate)", HARNESS, "cheated"),
    Stat("retries", EPISODE, "tool calls made right after a failed one, per episode", HARNESS,
         "retries"),
    Stat("wasted_calls", EPISODE, "tool calls that returned no usable result, per episode",
         HARNESS, "tool_errors"),
    Stat("effort", EPISODE, "the effort level index (0 none .. 3 high); -1 without effort "
         "levels", HARNESS, "effort"),
    Stat("reward", EPISODE, "return per episode (task reward, tool bonus, thinking cost)",
         FROM_ROLLOUT, reduce=lambda traj, infos: traj.rewards.sum() / ended(traj)[1]),
    Stat("task_reward", EPISODE, "the verifier's reward per episode (1 when solved)",
         FROM_ROLLOUT, reduce=lambda traj, infos: infos["task_reward"].sum() / ended(traj)[1]),
    Stat("episodes", ROLLOUT, "episodes that ended in the update's rollout", FROM_ROLLOUT,
         reduce=lambda traj, infos: traj.dones.astype(jnp.float32).sum()),
    Stat("agent_tokens", ROLLOUT, "tokens the agent chose in the rollout (the loss's tokens)",
         FROM_ROLLOUT, reduce=lambda traj, infos: traj.agent.sum().astype(jnp.float32)),
    Stat("slot_utilisation", ROLLOUT, "share of slot-steps that were agent tokens (the rest: "
         "forced tokens and idle finished slots)", FROM_ROLLOUT,
         reduce=lambda traj, infos: traj.agent.mean()),
    Stat("idle_share", ROLLOUT, "share of slot-steps with no episode running (a finished "
         "episode's slot waiting for the rest of the batch: the straggler cost)", FROM_ROLLOUT,
         reduce=lambda traj, infos: (traj.segments < 0).mean()),
    Stat("failed_think_tokens", ROLLOUT, "tokens inside <think> per episode that failed (0 "
         "when none failed): how long wrong answers think (Dr.GRPO's measure)", FROM_ROLLOUT,
         reduce=failed_think_tokens),
    Stat("curriculum_level", ROLLOUT, "the curriculum level trained on", UPDATE,
         reduce=lambda level: level.astype(jnp.float32)),
    Stat("critical_path", EPISODE, "steps from the start to the orchestrator's answer: its own "
         "tokens plus the longest sub-agent of each wait (delegation)", SYSTEM,
         "critical_path"),
    Stat("total_tokens", EPISODE, "tokens written in every context of an episode, the "
         "orchestrator's and its sub-agents' (delegation)", SYSTEM, "total_tokens"),
    Stat("sub_agents", EPISODE, "sub-agent episodes started per episode (delegation)", SYSTEM,
         "sub_agents"),
    Stat("delegate_calls", EPISODE, "delegate calls per episode (sub_agents / delegate_calls: "
         "sub-tasks per call, the parallelism)", SYSTEM, "delegate_calls"),
    Stat("subagent_success", ROLLOUT, "share of the rollout's sub-agent episodes whose own "
         "answer was right (delegation)", SUBAGENT, "success"),
    Stat("subagent_tool_calls", ROLLOUT, "tool calls per sub-agent episode (delegation)",
         SUBAGENT, "tool_calls"),
    Stat("subagent_length", ROLLOUT, "transcript tokens per sub-agent episode: a sub-agent's "
         "context length (delegation)", SUBAGENT, "length"),
    Stat("subagent_agent_tokens", ROLLOUT, "tokens the sub-agents chose in the rollout (their "
         "share of the loss's tokens; agent_tokens counts the orchestrator's)", SUBAGENT),
    Stat("monitor_flags", ROLLOUT, "share of the rollout's episodes the action monitor flagged "
         "(algo.monitor_penalty > 0: each loses that much reward)", UPDATE,
         reduce=lambda flags: flags.astype(jnp.float32).mean()),
    Stat("informative_groups", ROLLOUT, "share of GRPO groups whose rewards are not all "
         "equal: only they carry an advantage (near 0, RL has nothing to learn from)", UPDATE,
         reduce=informative_groups),
)  # fmt: skip

BY_NAME: dict[str, Stat] = {stat.name: stat for stat in STATS}
EPISODE_COUNTERS: tuple[Stat, ...] = tuple(s for s in STATS if s.source == HARNESS)
SYSTEM_COUNTERS: tuple[Stat, ...] = tuple(s for s in STATS if s.source == SYSTEM)
# The step infos a rollout records: the harness's counters, the verifier's reward, the system's.
RECORDED_INFOS: tuple[str, ...] = (
    *(s.name for s in EPISODE_COUNTERS),
    "task_reward",
    *(s.name for s in SYSTEM_COUNTERS),
)


def episode_stats(traj: Any, infos: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """The rollout's statistics (a ``rollout.Trajectory`` [N, L] and its recorded infos):
    each harness counter's mean over the episodes that ended, and each rollout reduction."""
    stats = {s.name: mean_at_end(infos[s.name], traj) for s in EPISODE_COUNTERS}
    return stats | {s.name: s.reduce(traj, infos) for s in STATS if s.source == FROM_ROLLOUT}


def system_stats(traj: Any, infos: dict[str, jax.Array], contexts: int) -> dict[str, jax.Array]:
    """``episode_stats`` of a delegating system's rollout (rows ``[N * C]``, context 0 the
    orchestrator's): the orchestrator's episodes (the system's outcome), the system's counters
    where they end, and the sub-agents' own (``subagent_``)."""
    by_context = jax.tree.map(
        lambda x: x.reshape(x.shape[0] // contexts, contexts, *x.shape[1:]), (traj, infos)
    )
    orchestrator, orchestrator_infos = jax.tree.map(lambda x: x[:, 0], by_context)
    subagents, subagent_infos = jax.tree.map(lambda x: x[:, 1:], by_context)
    stats = episode_stats(orchestrator, orchestrator_infos)
    for stat in STATS:
        if stat.source == SYSTEM:
            stats[stat.name] = mean_at_end(orchestrator_infos[stat.name], orchestrator)
        elif stat.source == SUBAGENT and stat.field is not None:
            stats[stat.name] = mean_at_end(subagent_infos[stat.field], subagents)
    stats["subagent_agent_tokens"] = subagents.agent.sum().astype(jnp.float32)
    stats["slot_utilisation"] = traj.agent.mean()  # every context's slots
    return stats


def averaged(name: str) -> Averaged:
    """How a chunk averages the statistic ``name`` (without its ``train/`` prefix)."""
    if name not in BY_NAME:
        raise KeyError(
            f"statistic {name!r} is not declared in agentic_jax/stats.py; declared: "
            f"{', '.join(BY_NAME)}"
        )
    return BY_NAME[name].averaged


def chunk_mean(metrics: dict, name: str):
    """A metric's mean over a chunk's updates (the last axis), on the host. ``train/NAME``
    statistics averaged ``EPISODE`` are weighted by the episodes each update ended."""
    value = np.asarray(metrics[name], np.float64)
    per_episode = name.startswith("train/") and averaged(name.removeprefix("train/")) == EPISODE
    if per_episode and "train/episodes" in metrics:
        episodes = np.asarray(metrics["train/episodes"], np.float64)
        return (value * episodes).sum(-1) / np.maximum(episodes.sum(-1), 1.0)
    return value.mean(-1) if value.ndim else value


def chunk_scalars(metrics: dict) -> dict[str, float]:
    """Every metric as a float: its ``chunk_mean`` averaged over seeds."""
    return {name: float(np.mean(chunk_mean(metrics, name))) for name in metrics}


def update_stat(name: str, *values: Any) -> jax.Array:
    """An ``UPDATE`` statistic computed by its declared reduction from the update's values."""
    stat = BY_NAME[name]
    if stat.source != UPDATE:
        raise ValueError(f"statistic {name!r} is reduced from the rollout, not the update")
    return stat.reduce(*values)
