"""The task-family interface: what an environment implements for the harness.

How to write an environment, in one file:

1. A ``TaskFamily`` subclass with static sizes (``prompt_width``, ``plan_width``, the segment
   budgets ``max_args``/``max_answer``, ``default_max_len``), the ``tools`` it offers (see
   ``agentic_jax.tools.base``) and the token masks legal inside ``<answer>`` and in tool
   arguments.
2. ``default_task_params()``: the traced difficulty parameters (a flax struct), which
   ``envs.make`` overrides and a sweep may vmap.
3. ``sample(key, task_params, split, oracle_mode) -> Task``: a fresh task: the prompt
   ``<task> ... </task>``, the hidden world the tools and the verifier read, and the oracle's
   plan (the agent tokens it would write). ``split`` 0 draws train tasks, 1 held-out ones;
   ``split_of(world)`` must recompute it from the world alone.
4. ``verify(world, answer, answer_len)``: whether an answer is right; ``useful_call``: whether
   a tool call made progress (the shaped ``tool_bonus``).
5. Optional: ``leaky_call`` and ``exploit`` label uses of a deliberate leak; ``next_turn`` and
   ``turns`` make an episode multi-turn; ``limits`` narrows the grammar per task (a mixture).

Multi-turn episodes: a family with ``num_turns`` > 1 (static, the most turns an episode has;
``TaskFamily.turns(world)`` gives an episode's own count, traced) implements
``next_turn(world, turn) -> (tokens [prompt_width], length)``, the user message
``<task> ... </task>`` of turn ``turn`` (0 is ``Task.prompt``; later turns are 1, 2, ...).
When the agent closes ``</answer>`` in a turn that is not its episode's last, nothing is
verified and the episode goes on: the harness queues the next turn's message as forced
tokens (phase ``PROMPT``, the answer cleared, ``HarnessState.turn`` + 1). Only the last
turn's answer is verified (and checked by ``exploit``)::

    <task> bob hat red </task> <answer> ok </answer>
    <task> hat of bob ? </task> <answer> red </answer>

Mutable episode state: the world is fixed at reset unless a tool returns an updated one. A
tool may pass ``world=`` to ``tool_output``; the harness then replaces ``state.task.world``
with it once the call is made (a ``write`` tool stores into a memory kept in the world;
``verify``, ``next_turn`` and later calls see the new world; ``useful_call`` and
``leaky_call`` see the world before the call). Tools that return no world leave it as is;
a family none of whose tools returns a world runs exactly as before.

Then register it in ``envs/__init__.py``. Helpers: ``pack`` (variable-length token pieces into
a fixed width), ``without_segments`` (an oracle plan without its calls or thinking) and, for
``sample``, ``random_words`` with ``below``, ``between``, ``uniform_choice``,
``unit_interval``, ``weighted_choice`` and ``random_order``: a sampler takes all its random
numbers from one draw. The harness samples a fresh task at every step of every episode (for
auto-reset), and each ``jax.random`` call is a threefry pass of its own.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.tools.base import Tool, pack

__all__ = [
    "Limits",
    "Task",
    "TaskFamily",
    "Tool",
    "below",
    "between",
    "check_task_params",
    "compact",
    "fmix32",
    "held_out_pair",
    "pack",
    "random_order",
    "stable_argsort",
    "random_words",
    "uniform_choice",
    "unit_interval",
    "weighted_choice",
    "without_segments",
]


def without_segments(
    plan: jax.Array,
    plan_len: jax.Array,
    open_token: int,
    close_token: int,
    after: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """An oracle plan with every ``open_token ... close_token`` segment removed (order kept).

    ``after``: remove only the segments that come after the first ``after`` token (thinking
    after the first ``<call>``, for an agent that may not think between calls).

    With tools disabled the oracle plays its plan without ``<call> ... </call>``: its thinking
    and its answer, written without the tool results that told it the answer. Imitating it is
    the no-tool baseline of a supervised cold start (for a hidden answer: the answers'
    marginal distribution). With a thinking budget too small for its ``<think> ... </think>``,
    the oracle answers without thinking.
    """
    opens = jnp.cumsum(plan == open_token)
    closes = jnp.cumsum(plan == close_token)
    inside = opens - closes + (plan == close_token) > 0
    if after is not None:
        inside &= jnp.cumsum(plan == after) > 0
    return compact(plan, plan_len, ~inside)


def compact(plan: jax.Array, plan_len: jax.Array, keep: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The plan's kept positions (``keep`` and within ``plan_len``) in order, padded with
    ``<pad>``; and their count (int32)."""
    keep = keep & (jnp.arange(plan.shape[0]) < plan_len)
    target = jnp.where(keep, jnp.cumsum(keep) - 1, plan.shape[0])
    kept = jnp.full_like(plan, tk.PAD).at[target].set(plan, mode="drop")
    return kept, keep.sum().astype(jnp.int32)


@struct.dataclass
class Task:
    """One task drawn by a task family's generator."""

    prompt: jax.Array  # [P] int32, "<task> ... </task>" padded with <pad>
    prompt_len: jax.Array  # int32
    world: Any  # hidden state read by the tools and the verifier, never observed
    plan: jax.Array  # [K] int32, the oracle's agent tokens in order
    plan_len: jax.Array  # int32


class Limits(NamedTuple):
    """One task's grammar: legal tool names, argument and answer tokens, segment budgets."""

    tool_mask: Any  # [VOCAB_SIZE] bool, the tool names legal after <call>
    arg_mask: Any  # [VOCAB_SIZE] bool
    answer_mask: Any  # [VOCAB_SIZE] bool
    max_args: Any  # int: the harness closes </call> at this many arguments
    max_answer: Any  # int: the harness closes </answer> at this many answer tokens


class TaskFamily:
    """What an environment supplies to the harness. Subclasses set the attributes and methods.

    Attributes (static): ``prompt_width`` P, ``plan_width`` K, ``tools``, ``answer_mask`` and
    ``arg_mask`` (boolean [VOCAB_SIZE] masks of the tokens legal inside ``<answer>`` and in tool
    arguments), ``max_args`` and ``max_answer`` (segment budgets), ``default_max_len``. A
    mixture narrows the masks and budgets to each task's own with ``limits``.
    """

    prompt_width: int
    plan_width: int
    tools: tuple[Tool, ...]
    answer_mask: np.ndarray
    arg_mask: np.ndarray
    max_args: int
    max_answer: int
    default_max_len: int
    default_think_budget: int = 0
    oracle_modes: tuple[int, ...] = (0,)  # the oracle plans ``sample`` can write
    exploit_oracle_mode: int | None = None  # the oracle_mode whose plan takes the leak's shortcut
    num_turns: int = 1  # the most user turns an episode has (multi-turn: see ``next_turn``)

    def default_task_params(self) -> Any:
        """Traced difficulty parameters (a flax struct)."""
        raise NotImplementedError

    def task_param_bounds(self) -> dict[str, tuple[float, float]]:
        """The valid range ``(low, high)``, both included, of each traced difficulty parameter
        under this family's static sizes (nested parameters as ``outer.inner``). ``sample``
        clips to these; ``check_task_params`` refuses a value outside them, so that an
        experiment never silently runs another difficulty than the one asked for."""
        return {}

    def task_param_order(self) -> tuple[tuple[str, str], ...]:
        """Pairs ``(low, high)`` of difficulty parameters that must hold ``low <= high``."""
        return ()

    def sample(self, key: jax.Array, task_params: Any, split: jax.Array, oracle: jax.Array) -> Task:
        """Draw a task from the train (split 0) or test (split 1) set; ``oracle`` picks a plan."""
        raise NotImplementedError

    def verify(self, world: Any, answer: jax.Array, answer_len: jax.Array) -> jax.Array:
        """Whether the answer tokens solve the task (bool)."""
        raise NotImplementedError

    def useful_call(self, world: Any, tool: jax.Array, args: jax.Array, args_len: jax.Array):
        """Whether a tool call makes progress (earns the shaped ``tool_bonus``; bool)."""
        raise NotImplementedError

    def split_of(self, world: Any) -> jax.Array:
        """The split (0 train, 1 test) a task belongs to, recomputed from its world."""
        raise NotImplementedError

    def turns(self, world: Any) -> jax.Array:
        """The number of user turns of this episode, in [1, ``num_turns``] (int32)."""
        return jnp.int32(self.num_turns)

    def next_turn(self, world: Any, turn: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Multi-turn families: the message ``<task> ... </task>`` of turn ``turn`` >= 1.

        Returns (tokens [prompt_width] padded with ``<pad>``, length).
        """
        raise NotImplementedError

    def leaky_call(self, world: Any, tool: jax.Array, args: jax.Array, args_len: jax.Array):
        """Whether a tool call used a deliberate leak (leak variants only; bool)."""
        return jnp.bool_(False)

    def impossible(self, world: Any) -> jax.Array:
        """Whether the task has no honest solution (ImpossibleBench's probe, e.g. KBLookup's
        ``impossible_rate``): any success on it passes through a leak (bool)."""
        return jnp.bool_(False)

    def exploit(self, world: Any, answer: jax.Array, answer_len: jax.Array) -> jax.Array:
        """Whether an answer passes only through a leak (e.g. hard-coded visible tests)."""
        return jnp.bool_(False)

    def limits(self, world: Any) -> Limits | None:
        """This task's own grammar (``Limits``, traced; within the static masks and budgets).

        None (every family but a mixture): the static ``tools``, ``arg_mask``, ``answer_mask``,
        ``max_args`` and ``max_answer`` hold for every task. A mixture returns its sub-task's
        family's, so each sub-task runs under exactly its own environment's grammar.
        """
        return None


def flat_fields(params: Any, prefix: str = "") -> dict[str, Any]:
    """The leaves of a (nested) flax struct of parameters, by dotted field name."""
    out = {}
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if dataclasses.is_dataclass(value):
            out |= flat_fields(value, f"{prefix}{field.name}.")
        else:
            out[f"{prefix}{field.name}"] = value
    return out


def check_task_params(family: TaskFamily, task_params: Any) -> None:
    """Refuse difficulty parameters outside ``family.task_param_bounds()`` or out of
    ``task_param_order()``, with a ValueError naming the parameter, its value and the valid
    range. Concrete values only (arrays of values, as a sweep stacks them, are checked
    entry by entry); traced values are skipped."""
    values = {
        name: np.asarray(value)
        for name, value in flat_fields(task_params).items()
        if not isinstance(value, jax.core.Tracer)
    }
    for name, (low, high) in family.task_param_bounds().items():
        if name not in values:
            continue
        outside = values[name][(values[name] < low) | (values[name] > high)]
        if outside.size:
            raise ValueError(
                f"{name}={outside.flat[0].item()!r} is outside its valid range "
                f"[{low}, {high}] for this environment's static sizes"
            )
    for low, high in family.task_param_order():
        if low in values and high in values and np.any(values[low] > values[high]):
            raise ValueError(
                f"{low}={values[low].max().item()!r} is above {high}="
                f"{values[high].min().item()!r}; {low} must be <= {high}"
            )


def held_out_pair(first: jax.Array, second: jax.Array, modulus: int) -> jax.Array:
    """Whether a (first, second) question pair, e.g. (entity, attribute), is a test task:
    ``(first + 2 * second) % modulus == 0`` (a fixed share of the pairs, none in training)."""
    return (first + 2 * second) % modulus == 0


def random_words(key: jax.Array, **shapes: tuple[int, ...]) -> dict[str, jax.Array]:
    """Random uint32 words of the named static shapes, all from one ``jax.random.bits`` call.

    ``random_words(key, attribute=(), values=(8, 4))["values"]`` is a ``[8, 4]`` uint32 array.
    """
    sizes = [math.prod(shape) for shape in shapes.values()]
    words = jax.random.bits(key, (sum(sizes),), jnp.uint32)
    parts = jnp.split(words, np.cumsum(sizes)[:-1].tolist())
    return {
        name: part.reshape(shape) for (name, shape), part in zip(shapes.items(), parts, strict=True)
    }


def below(words: jax.Array, high: jax.Array | int) -> jax.Array:
    """Integers uniform in ``[0, high)`` (``high`` >= 1, traced or not), int32, from uint32
    words (the modulo bias is below ``high / 2**32``)."""
    return (words % jnp.asarray(high).astype(jnp.uint32)).astype(jnp.int32)


def between(words: jax.Array, low: jax.Array | int, high: jax.Array | int) -> jax.Array:
    """Integers uniform in ``[low, high)``, like ``jax.random.randint``; int32."""
    return jnp.asarray(low, jnp.int32) + below(words, jnp.asarray(high) - jnp.asarray(low))


def uniform_choice(word: jax.Array, allowed: jax.Array) -> jax.Array:
    """The index of an entry of the bool vector ``allowed`` drawn uniformly among the True
    ones (index 0 when none is). One word, no argmax: the drawn rank's position is the count
    of positions whose running total of allowed entries is at most that rank."""
    rank = below(word, jnp.maximum(jnp.sum(allowed), 1))
    return jnp.sum(jnp.cumsum(allowed) <= rank).astype(jnp.int32) % allowed.shape[0]


def fmix32(h, xp=jnp):
    """MurmurHash3's 32-bit finaliser (uint32 in, uint32 out); ``xp`` is ``jnp`` or ``numpy``.
    A sampler that needs one more random choice can hash a word it already drew (with a salt
    of its own) rather than draw another, which would change every later word's stream."""
    h = (h ^ (h >> xp.uint32(16))) * xp.uint32(0x85EBCA6B)
    h = (h ^ (h >> xp.uint32(13))) * xp.uint32(0xC2B2AE35)
    return h ^ (h >> xp.uint32(16))


def unit_interval(words: jax.Array) -> jax.Array:
    """Floats uniform in [0, 1) (24 bits each), from uint32 words."""
    return (words >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)


def weighted_choice(word: jax.Array, weights: jax.Array) -> jax.Array:
    """An index drawn with probability proportional to ``weights`` (non-negative, not all
    zero), from one word: where a uniform number in [0, 1) falls in the running total."""
    uniform = unit_interval(word)
    total = jnp.cumsum(weights) / jnp.sum(weights)
    return jnp.minimum(jnp.sum(total <= uniform), weights.shape[0] - 1).astype(jnp.int32)


def random_order(words: jax.Array, first: jax.Array | None = None) -> jax.Array:
    """A uniformly random permutation of ``range(len(words))`` (int32), with ``first`` at
    position 0 when given."""
    keys = words >> 1 | jnp.uint32(1)  # >= 1, so that ``first`` (0) sorts before all others
    if first is not None:
        keys = jnp.where(jnp.arange(words.shape[0]) == first, jnp.uint32(0), keys)
    return stable_argsort(keys)


def stable_argsort(keys: jax.Array) -> jax.Array:
    """``jnp.argsort(keys, stable=True)`` over the last axis of a short vector [..., n], by
    counting: the place of entry i is the number of entries before it in sorted order (ties
    by position). An n x n comparison, where XLA's CPU sort of a vmapped short vector was a
    third of the simplest environment's step (``benchmarks/env_throughput.py``)."""
    position = jnp.arange(keys.shape[-1])
    other, this = keys[..., None, :], keys[..., :, None]
    smaller = other < this
    tied_before = (other == this) & (position[None, :] < position[:, None])
    rank = (smaller | tied_before).sum(axis=-1)  # entry i goes to place rank[i]
    return ((rank[..., None, :] == position[:, None]) * position).sum(axis=-1).astype(jnp.int32)
