"""How an episode starts: the oracle's plan fitted to the episode's settings, and the forced
tokens queued before the agent's first turn.

- ``fit_plan_to_tools``: with tools disabled the oracle skips its calls; in monologue mode
  (``think_between_calls`` false) it drops the thinking it would do between calls.
- ``with_abort_plan``: with ``abort_enabled``, a plan that answers ``<error>`` (the honest
  demonstrator found no answer: an impossible task) says ``<abort>`` instead;
- ``with_effort_prompt`` (a harness built with ``effort=True``): ``<effort> LEVEL`` after the
  prompt, the level's thinking budget, and the plan fitted to that budget;
- ``first_state``: the harness state the episode starts in (its first prompt token written).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.task import Task, without_segments
from agentic_jax.transcript import HarnessParams, HarnessState, Phase

NUM_EFFORT_LEVELS = len(tk.EFFORT_LEVELS)


@struct.dataclass
class EpisodeStart:
    """The start of an episode: its task, the forced tokens queued, its thinking budget and
    effort level (an index into ``tokens.EFFORT_LEVELS``; -1 none yet)."""

    task: Task
    queue: jax.Array  # [F] int32
    queue_len: jax.Array  # int32
    think_budget: jax.Array  # int32
    effort: jax.Array  # int32


def prompt_start(task: Task, queue_width: int, think_budget) -> EpisodeStart:
    """An episode about to write ``task``'s prompt (queued, ``queue_width`` wide)."""
    queue = jnp.full((queue_width,), tk.PAD, jnp.int32).at[: task.prompt.shape[0]].set(task.prompt)
    return EpisodeStart(
        task,
        queue,
        task.prompt_len.astype(jnp.int32),
        jnp.asarray(think_budget, jnp.int32),
        jnp.int32(-1),
    )


def fit_plan_to_tools(task: Task, params: HarnessParams) -> Task:
    """The task with its oracle plan fitted to ``tools_enabled`` and ``think_between_calls``."""
    plan, plan_len = without_segments(task.plan, task.plan_len, tk.CALL_OPEN, tk.CALL_CLOSE)
    task = task.replace(
        plan=jnp.where(params.tools_enabled, task.plan, plan),
        plan_len=jnp.where(params.tools_enabled, task.plan_len, plan_len),
    )
    plan, plan_len = without_segments(
        task.plan, task.plan_len, tk.THINK_OPEN, tk.THINK_CLOSE, after=tk.CALL_OPEN
    )
    return task.replace(
        plan=jnp.where(params.think_between_calls, task.plan, plan),
        plan_len=jnp.where(params.think_between_calls, task.plan_len, plan_len),
    )


def with_abort_plan(task: Task, params: HarnessParams) -> Task:
    """With ``params.abort_enabled``, the plan's ``<answer> <error> </answer>`` (what an honest
    plan answers when no tool found the answer) replaced by ``<abort>``, which ends it."""
    plan, length = task.plan, task.plan_len
    following = jnp.stack([plan, jnp.roll(plan, -1), jnp.roll(plan, -2)], axis=-1)
    pattern = jnp.array([tk.ANSWER_OPEN, tk.ERROR, tk.ANSWER_CLOSE])
    within = jnp.arange(plan.shape[0]) + 2 < length
    found = jnp.all(following == pattern, axis=-1) & within & params.abort_enabled
    at = jnp.argmax(found)
    aborting = found.any()
    cut = jnp.where(jnp.arange(plan.shape[0]) < at, plan, tk.PAD).at[at].set(tk.ABORT)
    return task.replace(
        plan=jnp.where(aborting, cut, plan),
        plan_len=jnp.where(aborting, at + 1, length).astype(task.plan_len.dtype),
    )


def with_effort_prompt(key: jax.Array, start: EpisodeStart, params: HarnessParams) -> EpisodeStart:
    """Queue ``<effort> LEVEL`` (or ``<effort>`` alone when the agent picks the level) and
    fit the oracle's plan to the level: with too small a budget it answers without its
    ``<think>`` segment; choosing, it picks the cheapest level whose budget fits it (or, with
    ``oracle_picks_cheapest`` false, the level drawn from ``effort_probs``)."""
    task, queue, queue_len = start.task, start.queue, start.queue_len
    budgets = jnp.asarray(params.effort_budgets, jnp.int32)
    chex.assert_shape(budgets, (NUM_EFFORT_LEVELS,))
    probs = jnp.asarray(params.effort_probs, jnp.float32)
    drawn = jax.random.categorical(key, jnp.log(jnp.maximum(probs, 0.0)))
    plan, plan_len = task.plan, task.plan_len
    unthinking, unthinking_len = without_segments(plan, plan_len, tk.THINK_OPEN, tk.THINK_CLOSE)
    segments = jnp.sum((plan == tk.THINK_OPEN) & (jnp.arange(plan.shape[0]) < plan_len))
    think_len = plan_len - unthinking_len - 2 * segments  # inside <think> ... </think>
    fits = budgets >= think_len
    cheapest = jnp.where(fits.any(), jnp.argmax(fits), NUM_EFFORT_LEVELS - 1)
    picked = jnp.where(params.oracle_picks_cheapest, cheapest, drawn)
    effort = jnp.where(params.agent_effort, picked, drawn).astype(jnp.int32)
    too_long = budgets[effort] < think_len
    plan = jnp.where(too_long, unthinking, plan)
    plan_len = jnp.where(too_long, unthinking_len, plan_len)
    level_token = jnp.asarray(tk.ids(tk.EFFORT_LEVELS))[effort]
    # Choosing: the level is the oracle's first agent token (the plan grows by one).
    chosen = jnp.concatenate([level_token[None], plan])
    task = task.replace(
        plan=jnp.where(params.agent_effort, chosen, jnp.append(plan, tk.PAD)),
        plan_len=(plan_len + params.agent_effort).astype(jnp.int32),
    )
    queue = queue.at[queue_len].set(tk.EFFORT)
    queue = queue.at[queue_len + 1].set(jnp.where(params.agent_effort, tk.PAD, level_token))
    queue_len = (queue_len + 2 - params.agent_effort).astype(jnp.int32)
    think_budget = jnp.where(params.agent_effort, 0, budgets[effort])
    effort = jnp.where(params.agent_effort, -1, effort).astype(jnp.int32)
    return EpisodeStart(task, queue, queue_len, think_budget.astype(jnp.int32), effort)


def with_inoculation(start: EpisodeStart, params: HarnessParams) -> EpisodeStart:
    """With ``params.inoculate``, ``<shortcut_ok>`` queued right after the prompt."""
    queue = start.queue.at[start.queue_len].set(tk.SHORTCUT_OK)
    return start.replace(
        queue=jnp.where(params.inoculate, queue, start.queue),
        queue_len=(start.queue_len + params.inoculate).astype(jnp.int32),
    )


def first_state(start: EpisodeStart, max_len: int, max_args: int, max_answer: int) -> HarnessState:
    """The state an episode starts in: the prompt's first token written, the rest queued, every
    counter at zero."""
    zero, false = jnp.int32(0), jnp.bool_(False)
    return HarnessState(
        time=zero,
        task=start.task,
        transcript=jnp.full((max_len,), tk.PAD, jnp.int32).at[0].set(start.task.prompt[0]),
        agent_written=jnp.zeros((max_len,), bool),
        length=jnp.int32(1),
        phase=jnp.int32(Phase.PROMPT),
        queue=start.queue,
        queue_len=start.queue_len,
        queue_pos=jnp.int32(1),
        tool=zero,
        args=jnp.full((max_args,), tk.PAD, jnp.int32),
        args_len=zero,
        answer=jnp.full((max_answer,), tk.PAD, jnp.int32),
        answer_len=zero,
        turn=zero,
        plan_pos=zero,
        think_tokens=zero,
        think_budget=start.think_budget,
        effort=start.effort,
        **dict.fromkeys(("tool_calls", "tool_errors", "hacks", "retries"), zero),
        **dict.fromkeys(
            (
                "last_failed",
                "bonus_given",
                "success",
                "invalid",
                "terminated",
                "truncated",
                "aborted",
                "impossible",
                "cheated",
            ),
            false,
        ),
    )
