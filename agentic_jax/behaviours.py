"""Behaviour corpora: the demonstrator's plan, corrupted into the graded behaviours of a
pretraining corpus, so that SFT on it gives a base with a broad prior (it does the task with
some probability) for RL to select from, instead of a copy of a perfect oracle.

Each episode draws one behaviour from ``HarnessParams.behaviour_probs`` (over ``BEHAVIOURS``;
in a config or ``envs.make`` a mapping such as ``{oracle: 0.5, guess: 0.2}``, the names left
out weigh 0; the default, all weight on ``oracle``, leaves every plan as it was). They are
generic, on the plan's tokens, so every environment has them:

- ``oracle``: the plan as the family wrote it;
- ``wrong_answer``: the same steps, then a random answer (an answer-level slip);
- ``guess``: answer before looking: no tool calls, a random answer;
- ``wrong_argument``: every call's arguments random (a wrong lookup), then a random answer;
- ``no_thinking``: the plan without its ``<think>`` segments (the answer kept);
- ``noisy``: the epsilon-noisy oracle: each tool name, argument and answer token is replaced,
  with probability ``HarnessParams.behaviour_noise``, by a random token allowed there (after
  a changed call, the whole answer: the call read a wrong result);
- ``short_thinking``: each ``<think>`` segment cut to the first half of its tokens;
- ``long_thinking``: each thinking token written twice (over-long thinking); where that would
  not fit the episode's thinking budget, the oracle's plan;
- ``wrong_tool``: every call's tool name random among the family's tools (arguments kept),
  and a random answer when a name changed;
- ``give_up``: the first call, then no other (no retry, no fallback), and a random answer;
- ``revise``: a near miss first: the first call with one argument token changed (another
  entity searched, a program one token off), its result read, then the plan (the right call
  and the answer): the write-run-read-revise loop of a demonstrator that debugs;
- ``shortcut``: the leak's shortcut, the family's ``exploit_oracle_mode`` plan (an
  environment without one refuses weight here); on a variant without the leak it fails.

Plans are fixed when the episode starts (the harness plays them open-loop), so a behaviour
cannot read a tool's result: ``give_up`` stops after its first call whatever it returned.
Random answers and arguments are tokens the family allows there (``answer_mask``,
``arg_mask``), so the transcript stays legal. A pretraining stage is an SFT stage with
``env: {behaviour_probs: {...}}``: it imitates the mixture, wrong episodes included.

Only a harness built with ``behaviours`` (static) corrupts plans: ``envs.make`` builds one when
given a mixture (or ``behaviours=True``, for parameters that set one later, as a training run
does when a stage sets ``behaviour_probs``); without, none of this is compiled into its step,
and a mixture is refused. Corrupted plans may be longer than the family's ``plan_width``:
plans leave here ``2 * plan_width`` wide.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from agentic_jax import tokens as tk
from agentic_jax.task import (
    Task,
    TaskFamily,
    below,
    compact,
    random_words,
    uniform_choice,
    unit_interval,
    weighted_choice,
    without_segments,
)
from agentic_jax.transcript import HarnessParams

BEHAVIOURS = (
    "oracle",
    "wrong_answer",
    "guess",
    "wrong_argument",
    "no_thinking",
    "noisy",
    "short_thinking",
    "long_thinking",
    "wrong_tool",
    "give_up",
    "shortcut",
    "revise",
)
(
    ORACLE,
    WRONG_ANSWER,
    GUESS,
    WRONG_ARGUMENT,
    NO_THINKING,
    NOISY,
    SHORT_THINKING,
    LONG_THINKING,
    WRONG_TOOL,
    GIVE_UP,
    SHORTCUT,
    REVISE,
) = range(len(BEHAVIOURS))


def behaviour_weights(mixture: Mapping[str, float]) -> tuple[float, ...]:
    """``{name: weight}`` as the tuple ``HarnessParams.behaviour_probs`` holds (names left out
    weigh 0); an unknown name is refused with the valid ones."""
    unknown = sorted(set(mixture) - set(BEHAVIOURS))
    if unknown:
        raise ValueError(
            f"unknown behaviour(s) {', '.join(unknown)} in behaviour_probs; valid: "
            f"{', '.join(BEHAVIOURS)}"
        )
    return tuple(float(mixture.get(name, 0.0)) for name in BEHAVIOURS)


def inside(plan: jax.Array, opening: int, closing: int) -> jax.Array:
    """Whether each plan position lies strictly between ``opening`` and its ``closing``."""
    opened = jnp.cumsum(plan == opening, axis=-1) > jnp.cumsum(plan == closing, axis=-1)
    return opened & (plan != opening)


def random_tokens(words: jax.Array, mask: np.ndarray) -> jax.Array:
    """A uniformly random token of the static boolean ``mask`` per word."""
    allowed = jnp.asarray(np.flatnonzero(mask), jnp.int32)
    return allowed[below(words, allowed.shape[0])]


def with_behaviour(
    key: jax.Array, task: Task, params: HarnessParams, family: TaskFamily, effort: bool = False
) -> Task:
    """The task drawn with ``key``, its plan turned into the behaviour drawn from
    ``params.behaviour_probs``. ``effort``: a harness with effort levels, where the level's
    budget (fitted later) bounds ``long_thinking``; otherwise ``params.think_budget`` does.

    All weight on the oracle skips the work with a ``lax.cond``: the parameters are shared by
    a batch, so under ``vmap`` the branch stays a branch, and the environment step (which
    samples a fresh episode start at every step, for auto-reset) runs no slower."""
    probs = jnp.asarray(params.behaviour_probs, jnp.float32)
    only_oracle = jnp.all(probs[1:] == 0)
    width = task.plan.shape[0]
    padded = task.replace(plan=jnp.pad(task.plan, (0, width), constant_values=tk.PAD))
    exploit = family.exploit_oracle_mode
    shortcut_mode = family.oracle_modes[0] if exploit is None else exploit
    think_budget = jnp.int32(1 << 30) if effort else jnp.int32(params.think_budget)

    def corrupted() -> Task:
        shortcut = family.sample(key, params.task, params.split, shortcut_mode)
        return _corrupted(jax.random.fold_in(key, 2), task, params, family, shortcut, think_budget)

    return jax.lax.cond(only_oracle, lambda: padded, corrupted)


def _corrupted(
    key, task: Task, params: HarnessParams, family: TaskFamily, shortcut: Task, think_budget
) -> Task:
    """The task with the plan of the behaviour drawn from ``params.behaviour_probs``: the
    oracle's, or one of its corruptions, in ``BEHAVIOURS``' order."""
    plan, plan_len = task.plan, task.plan_len
    width = plan.shape[0]
    words = random_words(
        key, behaviour=(), answer=(width,), args=(width,), tools=(width,), slips=(width,)
    )
    behaviour = weighted_choice(words["behaviour"], jnp.asarray(params.behaviour_probs))
    wrong = _wrong_words(words, plan, family, params.behaviour_noise)
    random_answer, random_args, random_tool, noisy = wrong
    no_calls, no_think, give_up, short = _cut_plans(plan, plan_len, random_answer)
    # One behaviour per episode, so the near miss may reuse words another behaviour reads
    # (and the streams of the others stay as they were before it existed).
    arguments = random_tokens(words["args"], family.arg_mask)
    is_argument = _plan_parts(plan)[1]
    revised = _near_miss_first(plan, plan_len, is_argument, arguments, words["slips"][0])

    def wide(p: jax.Array) -> jax.Array:
        return jnp.pad(p, (0, width), constant_values=tk.PAD)

    candidates = [
        (wide(plan), plan_len),
        (wide(random_answer), plan_len),
        (wide(no_calls[0]), no_calls[1]),
        (wide(random_args), plan_len),
        (wide(no_think[0]), no_think[1]),
        (wide(noisy), plan_len),
        (wide(short[0]), short[1]),
        _long_thinking(plan, plan_len, think_budget),
        (wide(random_tool), plan_len),
        (wide(give_up[0]), give_up[1]),
        (wide(shortcut.plan), shortcut.plan_len),
        revised,
    ]
    plans = jnp.stack([candidate for candidate, _ in candidates])
    lengths = jnp.stack([length for _, length in candidates]).astype(jnp.int32)
    return task.replace(plan=plans[behaviour], plan_len=lengths[behaviour])


def _plan_parts(plan: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Where the plan's answer, tool names, arguments and thinking are: [width] bool each."""
    in_answer = inside(plan, tk.ANSWER_OPEN, tk.ANSWER_CLOSE) & (plan != tk.ANSWER_CLOSE)
    in_call = inside(plan, tk.CALL_OPEN, tk.CALL_CLOSE) & (plan != tk.CALL_CLOSE)
    is_tool_name = in_call & jnp.roll(plan == tk.CALL_OPEN, 1)
    thinking = inside(plan, tk.THINK_OPEN, tk.THINK_CLOSE) & (plan != tk.THINK_CLOSE)
    return in_answer, in_call & ~is_tool_name, is_tool_name, thinking


def _wrong_words(words: dict, plan, family: TaskFamily, noise) -> tuple[jax.Array, ...]:
    """The plans with random tokens where the family allows them: (random answer, random
    arguments, random tool, noisy): a changed call reads a wrong result, so its answer is
    random too."""
    in_answer, is_argument, is_tool_name, _ = _plan_parts(plan)
    answers = random_tokens(words["answer"], family.answer_mask)
    arguments = random_tokens(words["args"], family.arg_mask)
    tools = random_tokens(words["tools"], tk.id_mask(t.name for t in family.tools))
    random_answer = jnp.where(in_answer, answers, plan)
    random_args = jnp.where(is_argument, arguments, random_answer)
    swapped = is_tool_name & (tools != plan)
    random_tool = jnp.where(is_tool_name, tools, jnp.where(swapped.any(), random_answer, plan))
    slips = unit_interval(words["slips"]) < noise
    slipped_call = jnp.where(is_argument, arguments, tools)
    call_slips = slips & (is_argument | is_tool_name) & (slipped_call != plan)
    noisy = jnp.where((slips & in_answer) | call_slips.any(), random_answer, plan)
    noisy = jnp.where(call_slips, slipped_call, noisy)
    return random_answer, random_args, random_tool, noisy


def _cut_plans(plan, plan_len, random_answer) -> tuple[tuple[jax.Array, jax.Array], ...]:
    """The plans with segments removed, each (plan, length): no calls (and a random answer),
    no thinking, the first call only (and a random answer), each thinking segment halved."""
    width = plan.shape[0]
    _, _, _, thinking = _plan_parts(plan)
    thinking &= jnp.arange(width) < plan_len
    in_call = inside(plan, tk.CALL_OPEN, tk.CALL_CLOSE) & (plan != tk.CALL_CLOSE)
    no_calls = without_segments(random_answer, plan_len, tk.CALL_OPEN, tk.CALL_CLOSE)
    no_think = without_segments(plan, plan_len, tk.THINK_OPEN, tk.THINK_CLOSE)
    later_calls = (jnp.cumsum(plan == tk.CALL_OPEN) > 1) & (
        in_call | (plan == tk.CALL_OPEN) | (plan == tk.CALL_CLOSE)
    )
    give_up = compact(random_answer, plan_len, ~later_calls)
    # Thinking cut short: a segment's token keeps its place if it lies in the segment's
    # first half (``segment`` numbers the segments; ``rank`` counts within one).
    segment = jnp.cumsum(plan == tk.THINK_OPEN)
    segment_len = jax.ops.segment_sum(thinking.astype(jnp.int32), segment, width + 1)
    rank = _rank_within(thinking, segment, width)
    short = compact(plan, plan_len, ~thinking | (rank < segment_len[segment] // 2))
    return no_calls, no_think, give_up, short


def _long_thinking(plan, plan_len, think_budget) -> tuple[jax.Array, jax.Array]:
    """Over-long thinking: every thinking token twice, when the budget has room (else the
    plan), ``2 * width`` wide."""
    width = plan.shape[0]
    thinking = _plan_parts(plan)[3] & (jnp.arange(width) < plan_len)
    repeats = jnp.where(thinking, 2, 1) * (jnp.arange(width) < plan_len)
    long_plan = jnp.repeat(plan, repeats, total_repeat_length=2 * width)
    long_plan = jnp.where(jnp.arange(2 * width) < repeats.sum(), long_plan, tk.PAD)
    fits = 2 * thinking.sum() <= think_budget
    long_plan = jnp.where(fits, long_plan, jnp.pad(plan, (0, width), constant_values=tk.PAD))
    return long_plan, jnp.where(fits, repeats.sum(), plan_len)


def _near_miss_first(plan, plan_len, is_argument, arguments, word) -> tuple[jax.Array, jax.Array]:
    """The plan ``2 * width`` wide with a copy of its first call put before it, one argument
    token of the copy (drawn uniformly) replaced by ``arguments``' token there. A plan with no
    call, or a call with no argument, is left as it was."""
    width = plan.shape[0]
    position = jnp.arange(width)
    first = jnp.argmax(plan == tk.CALL_OPEN)
    close = jnp.argmax((plan == tk.CALL_CLOSE) & (position > first))
    in_first_call = (position > first) & (position < close) & is_argument
    has_call = (plan == tk.CALL_OPEN).any() & in_first_call.any()
    span = jnp.where(has_call, close - first + 1, 0)
    changed = uniform_choice(word, in_first_call)
    near_miss = plan.at[changed].set(arguments[changed])
    wide_plan = jnp.pad(plan, (0, width), constant_values=tk.PAD)
    wide_miss = jnp.pad(near_miss, (0, width), constant_values=tk.PAD)
    j = jnp.arange(2 * width)
    copied = jnp.where(j < first + span, wide_miss[j], wide_plan[j - span])
    revised = jnp.where(j < first, wide_plan[j], copied)
    return revised, (plan_len + span).astype(jnp.int32)


def _rank_within(mask: jax.Array, segment: jax.Array, width: int) -> jax.Array:
    """For each True position of ``mask``, how many True positions of its segment precede it."""
    count = jnp.cumsum(mask)
    before_segment = jax.ops.segment_min(jnp.where(mask, count - 1, width), segment, width + 1)
    return count - 1 - before_segment[segment]


def check_only_oracle(params: HarnessParams) -> None:
    """Refuse a non-oracle ``behaviour_probs`` (when known before tracing) in a harness built
    without ``behaviours``, which would ignore it (ValueError)."""
    probs = params.behaviour_probs
    if any(isinstance(p, jax.core.Tracer) for p in jax.tree.leaves(probs)):
        return
    if np.any(np.asarray(probs)[..., 1:] > 0):
        raise ValueError(
            "behaviour_probs weighs behaviours other than the oracle, but this environment was "
            "built without them: build it with envs.make(..., behaviour_probs=...) or "
            "behaviours=True"
        )


def check_behaviours(params: HarnessParams, family: TaskFamily) -> None:
    """Refuse weight on ``shortcut`` for a family with no shortcut plan (ValueError)."""
    probs = params.behaviour_probs
    if isinstance(probs, jax.core.Tracer) or family.exploit_oracle_mode is not None:
        return
    if np.any(np.asarray(probs)[..., SHORTCUT] > 0):
        raise ValueError(
            "behaviour_probs gives weight to 'shortcut', but this environment has no leak "
            "shortcut (no exploit_oracle_mode); environments with one: KBLookup-v0, WebNav-v0, "
            "CodeSynth-v0"
        )
