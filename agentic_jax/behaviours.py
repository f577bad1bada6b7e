"""Behaviour corpora: the demonstrator's plan, corrupted into the graded behaviours of a
pretraining corpus, so that SFT on it gives a base with a broad prior (it does the task with
some probability) for RL to select from, instead of a copy of a perfect oracle.

Each episode draws one behaviour from ``HarnessParams.behaviour_probs`` (over ``BEHAVIOURS``;
the default, all weight on ``oracle``, leaves every plan as it was). They are generic, on the
plan's tokens, so every environment has them:

- ``oracle``: the plan as the family wrote it;
- ``wrong_answer``: the same steps, then a random answer (an epsilon-level slip);
- ``guess``: answer before looking: no tool calls, a random answer;
- ``wrong_argument``: every call's arguments random (a wrong lookup), then a random answer;
- ``no_thinking``: the plan without its ``<think>`` segments (the answer kept).

Random answers and arguments are tokens the family allows there (``answer_mask``,
``arg_mask``), so the transcript stays legal. A pretraining stage is an SFT stage with
``env: {behaviour_probs: [...]}``: it imitates the mixture, wrong episodes included.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from agentic_jax import tokens as tk
from agentic_jax.task import (
    Task,
    TaskFamily,
    below,
    random_words,
    weighted_choice,
    without_segments,
)
from agentic_jax.transcript import HarnessParams

BEHAVIOURS = ("oracle", "wrong_answer", "guess", "wrong_argument", "no_thinking")
ORACLE, WRONG_ANSWER, GUESS, WRONG_ARGUMENT, NO_THINKING = range(len(BEHAVIOURS))


def inside(plan: jax.Array, opening: int, closing: int) -> jax.Array:
    """Whether each plan position lies strictly between ``opening`` and its ``closing``."""
    opened = jnp.cumsum(plan == opening, axis=-1) > jnp.cumsum(plan == closing, axis=-1)
    return opened & (plan != opening)


def random_tokens(words: jax.Array, mask: np.ndarray) -> jax.Array:
    """A uniformly random token of the static boolean ``mask`` per word."""
    allowed = jnp.asarray(np.flatnonzero(mask), jnp.int32)
    return allowed[below(words, allowed.shape[0])]


def with_behaviour(key: jax.Array, task: Task, params: HarnessParams, family: TaskFamily) -> Task:
    """The task with its plan turned into the behaviour drawn from ``params.behaviour_probs``.

    All weight on the oracle (the default) skips the work with a ``lax.cond``: the parameters
    are shared by a batch, so under ``vmap`` the branch stays a branch, and the environment
    step (which samples a fresh episode start at every step, for auto-reset) costs no more."""
    probs = jnp.asarray(params.behaviour_probs, jnp.float32)
    only_oracle = jnp.all(probs[1:] == 0)
    return jax.lax.cond(only_oracle, lambda: task, lambda: _corrupted(key, task, probs, family))


def _corrupted(key: jax.Array, task: Task, probs: jax.Array, family: TaskFamily) -> Task:
    width = task.plan.shape[0]
    words = random_words(key, behaviour=(), answer=(width,), args=(width,))
    behaviour = weighted_choice(words["behaviour"], probs)
    plan, plan_len = task.plan, task.plan_len
    in_answer = inside(plan, tk.ANSWER_OPEN, tk.ANSWER_CLOSE) & (plan != tk.ANSWER_CLOSE)
    random_answer = jnp.where(in_answer, random_tokens(words["answer"], family.answer_mask), plan)
    in_call = inside(plan, tk.CALL_OPEN, tk.CALL_CLOSE) & (plan != tk.CALL_CLOSE)
    is_argument = in_call & ~jnp.roll(plan == tk.CALL_OPEN, 1)  # not the tool name
    random_args = jnp.where(is_argument, random_tokens(words["args"], family.arg_mask), plan)
    random_args = jnp.where(in_answer, random_answer, random_args)
    no_calls, no_calls_len = without_segments(random_answer, plan_len, tk.CALL_OPEN, tk.CALL_CLOSE)
    no_think, no_think_len = without_segments(plan, plan_len, tk.THINK_OPEN, tk.THINK_CLOSE)
    plans = jnp.stack([plan, random_answer, no_calls, random_args, no_think])
    lengths = jnp.stack([plan_len, plan_len, no_calls_len, plan_len, no_think_len])
    return task.replace(plan=plans[behaviour], plan_len=lengths[behaviour].astype(jnp.int32))
