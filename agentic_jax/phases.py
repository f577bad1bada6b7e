"""The transcript's phase transitions that need no task and no tool, one function per phase:
each takes the state after the token was appended and the phase the token was written in
(``Harness._write`` runs them in order; the tool call and the answer are the harness's)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from agentic_jax import tokens as tk
from agentic_jax.transcript import HarnessParams, HarnessState, Phase


def drain_queue(s: HarnessState, phase, agent_picks_effort) -> HarnessState:
    """Forced tokens from the queue (prompt, tool result); back to Phase.IDLE once it
    drains (or to Phase.EFFORT after the first prompt, for an agent that picks its effort)."""
    in_queue = (phase == Phase.PROMPT) | (phase == Phase.RESULT)
    queue_pos = s.queue_pos + in_queue
    picks_effort = agent_picks_effort & (phase == Phase.PROMPT) & (s.effort < 0)
    drained = jnp.where(picks_effort, Phase.EFFORT, Phase.IDLE)
    return s.replace(
        queue_pos=queue_pos,
        phase=jnp.where(in_queue & (queue_pos >= s.queue_len), drained, phase),
    )


def choose_effort(s: HarnessState, phase, token, params: HarnessParams):
    """Phase.EFFORT: the chosen level sets the episode's thinking budget.
    Returns (state, whether a level was chosen, the level)."""
    level = jnp.argmax(jnp.asarray(tk.ids(tk.EFFORT_LEVELS)) == token).astype(jnp.int32)
    choosing = phase == Phase.EFFORT
    budgets = jnp.asarray(params.effort_budgets, jnp.int32)
    s = s.replace(
        effort=jnp.where(choosing, level, s.effort),
        think_budget=jnp.where(choosing, budgets[level], s.think_budget),
        phase=jnp.where(choosing, Phase.IDLE, s.phase),
    )
    return s, choosing, level


def open_segment(s: HarnessState, phase, token) -> tuple[HarnessState, jax.Array]:
    """Phase.IDLE: open a segment, or ``<abort>``: end the episode unsolved (its reward:
    ``abort_reward``). Returns (state, aborting)."""
    opened = jnp.select(
        [token == tk.THINK_OPEN, token == tk.CALL_OPEN, token == tk.ANSWER_OPEN],
        [Phase.THINK, Phase.CALL_NAME, Phase.ANSWER],
        phase,
    )
    s = s.replace(phase=jnp.where(phase == Phase.IDLE, opened, s.phase))
    aborting = (phase == Phase.IDLE) & (token == tk.ABORT)
    s = s.replace(aborted=s.aborted | aborting, phase=jnp.where(aborting, Phase.DONE, s.phase))
    return s, aborting


def think(s: HarnessState, phase, token) -> tuple[HarnessState, jax.Array]:
    """Phase.THINK: count, or close. Returns (state, a thinking token was written)."""
    thinking = (phase == Phase.THINK) & (token != tk.THINK_CLOSE)
    closed = (phase == Phase.THINK) & (token == tk.THINK_CLOSE)
    s = s.replace(
        think_tokens=s.think_tokens + thinking,
        phase=jnp.where(closed, Phase.IDLE, s.phase),
    )
    return s, thinking
