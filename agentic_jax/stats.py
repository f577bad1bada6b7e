"""The one table of episode and rollout statistics.

Every statistic a rollout reports is declared here once: its name, how a chunk of updates
averages it, and (for an episode counter) the ``HarnessState`` field it reads when the
episode ends. The harness builds its ``info`` from ``EPISODE_COUNTERS``, the rollout reduces
them, and the host loop averages a chunk's ``train/NAME`` values by ``averaged(NAME)``: a
statistic not in the table is an error there, so a new one is added in this file only.

- ``EPISODE``: a mean over the episodes that ended in an update. With ``stream`` batching an
  update may end none (its value 0 means nothing), so a chunk weights each update by the
  episodes it ended.
- ``ROLLOUT``: one value per update (a count, a share, a level): a chunk takes the plain mean.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class Averaged(enum.Enum):
    EPISODE = "per episode"
    ROLLOUT = "per rollout"


@dataclass(frozen=True)
class Stat:
    name: str
    averaged: Averaged
    description: str
    state_field: str | None = None  # the HarnessState counter an episode statistic reads


EPISODE, ROLLOUT = Averaged.EPISODE, Averaged.ROLLOUT

STATS: tuple[Stat, ...] = (
    Stat("success", EPISODE, "share of episodes whose answer was verified correct", "success"),
    Stat("tool_calls", EPISODE, "tool calls per episode", "tool_calls"),
    Stat("tool_errors", EPISODE, "tool calls per episode whose status was not ok",
         "tool_errors"),
    Stat("think_tokens", EPISODE, "tokens written inside <think> per episode", "think_tokens"),
    Stat("answer_tokens", EPISODE, "tokens written inside <answer> per episode", "answer_len"),
    Stat("length", EPISODE, "transcript tokens per episode, forced ones included", "length"),
    Stat("invalid", EPISODE, "share of episodes ended by an illegal token", "invalid"),
    Stat("hacks", EPISODE, "uses of a deliberate leak per episode (leak variants)", "hacks"),
    Stat("aborts", EPISODE, "share of episodes the agent ended with <abort> (saying the task "
         "cannot be done honestly)", "aborted"),
    Stat("impossible", EPISODE, "share of episodes whose task had no honest solution "
         "(impossible_rate)", "impossible"),
    Stat("cheats", EPISODE, "share of episodes solved although the task had no honest "
         "solution: cheats by construction (cheats / impossible: ImpossibleBench's cheating "
         "rate)", "cheated"),
    Stat("retries", EPISODE, "tool calls made right after a failed one, per episode",
         "retries"),
    Stat("wasted_calls", EPISODE, "tool calls that returned no usable result, per episode",
         "tool_errors"),
    Stat("effort", EPISODE, "the effort level index (0 none .. 3 high); -1 without effort "
         "levels", "effort"),
    Stat("reward", EPISODE, "return per episode (task reward, tool bonus, thinking cost)"),
    Stat("task_reward", EPISODE, "the verifier's reward per episode (1 when solved)"),
    Stat("episodes", ROLLOUT, "episodes that ended in the update's rollout"),
    Stat("agent_tokens", ROLLOUT, "tokens the agent chose in the rollout (the loss's tokens)"),
    Stat("slot_utilisation", ROLLOUT, "share of slot-steps that were agent tokens (the rest: "
         "forced tokens and idle finished slots)"),
    Stat("failed_think_tokens", ROLLOUT, "tokens inside <think> per episode that failed (0 "
         "when none failed): how long wrong answers think (Dr.GRPO's measure)"),
    Stat("curriculum_level", ROLLOUT, "the curriculum level trained on"),
    Stat("critical_path", EPISODE, "steps from the start to the orchestrator's answer: its own "
         "tokens plus the longest sub-agent of each wait (delegation)"),
    Stat("total_tokens", EPISODE, "tokens written in every context of an episode, the "
         "orchestrator's and its sub-agents' (delegation)"),
    Stat("sub_agents", EPISODE, "sub-agent episodes started per episode (delegation)"),
    Stat("delegate_calls", EPISODE, "delegate calls per episode (sub_agents / delegate_calls: "
         "sub-tasks per call, the parallelism)"),
    Stat("subagent_success", ROLLOUT, "share of the rollout's sub-agent episodes whose own "
         "answer was right (delegation)"),
    Stat("subagent_tool_calls", ROLLOUT, "tool calls per sub-agent episode (delegation)"),
    Stat("subagent_length", ROLLOUT, "transcript tokens per sub-agent episode: a sub-agent's "
         "context length (delegation)"),
    Stat("subagent_agent_tokens", ROLLOUT, "tokens the sub-agents chose in the rollout (their "
         "share of the loss's tokens; agent_tokens counts the orchestrator's)"),
    Stat("monitor_flags", ROLLOUT, "share of the rollout's episodes the action monitor flagged "
         "(algo.monitor_penalty > 0: each loses that much reward)"),
    Stat("informative_groups", ROLLOUT, "share of GRPO groups whose rewards are not all "
         "equal: only they carry an advantage (near 0, RL has nothing to learn from)"),
)  # fmt: skip

BY_NAME: dict[str, Stat] = {stat.name: stat for stat in STATS}
EPISODE_COUNTERS: tuple[Stat, ...] = tuple(stat for stat in STATS if stat.state_field)


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
