"""Tally-v0: add up a row of digits mod 10, step by step in ``<think>``, or read them one by one.

A task is a row of ``width`` slots whose last ``n`` hold items (digits 1-9) and whose first
``width - n`` are empty (``0``). The answer is the items' sum mod 10. Working it out takes
``n - 1`` additions; the oracle writes the running sums from the right, one token each::

    <task> 0 0 0 0 0 3 7 4 </task> <think> 1 4 </think> <answer> 4 </answer>

(4 + 7 = 11 -> 1, 1 + 3 = 4.) Every thinking token is one addition of two digits at fixed
positions, which a small transformer learns exactly; the sum of many digits in one forward
pass it does not. So thinking budget buys accuracy: a budget of b tokens works out every
task of up to b + 1 items, and the rest are answered directly (learnable for n <= 2).

Hidden items (``hidden=True``, static): the prompt names the items (``ann bob ...``), and
the ``read NAME`` tool returns an item's digit. The oracle reads them from the right and
thinks the running sum after every result, interleaving thinking with its calls::

    <task> 0 0 ann bob cat </task>
    <call> read cat </call> <result> 4 </result>
    <call> read bob </call> <result> 7 </result> <think> 1 </think>
    <call> read ann </call> <result> 3 </result> <think> 4 </think>
    <answer> 4 </answer>

With ``think_between_calls=False`` (harness parameter: all thinking before the first call,
a monologue) thinking cannot see any result, and the answer is the direct sum of n results.

Train and test tasks are disjoint: a row with ``(n + sum_i (i + 1) * slot_i) % 7 == 0`` is
held out (a hash of the whole row, independent of the answer: every one-step addition appears
in training, whole held-out rows never do).

Static parameters: ``width`` (slots, 2..8), ``hidden``. Traced (``TallyParams``):
``min_items``, ``max_items`` (n is drawn uniformly from that range, clipped to 1..width).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.task import (
    Task,
    TaskFamily,
    Tool,
    between,
    pack,
    random_order,
    random_words,
)
from agentic_jax.tools.base import ERROR, OK, tool_output

HELD_OUT_MODULUS = 7
MAX_WIDTH = 8
DIGIT_IDS = jnp.asarray(tk.DIGIT_IDS)
NAME_IDS = jnp.asarray(tk.ids(tk.ENTITY_NAMES))
READ = tk.TOKEN_ID["read"]


@struct.dataclass
class TallyParams:
    min_items: int = 1
    max_items: int = 4


@struct.dataclass
class TallyWorld:
    digits: jax.Array  # [W] int32 slot values, 0 for an empty slot, items 1-9 at the end
    names: jax.Array  # [W] int32 name tokens of the slots (hidden items)
    num_items: jax.Array  # int32 n


def held_out(digits: jax.Array, num_items: jax.Array) -> jax.Array:
    """Whether a row belongs to the test split (digits [..., W])."""
    weights = jnp.arange(1, digits.shape[-1] + 1)
    return (num_items + jnp.sum(weights * digits, axis=-1)) % HELD_OUT_MODULUS == 0


def running_sums(digits: jax.Array) -> jax.Array:
    """[W] the sums mod 10 of the last 1, 2, ..., W slots (what the oracle thinks)."""
    return jnp.cumsum(digits[::-1]) % 10


class Tally(TaskFamily):
    def __init__(self, width: int = 4, hidden: bool = False):
        if not 2 <= width <= MAX_WIDTH:
            raise ValueError(f"width must be in [2, {MAX_WIDTH}], got {width}")
        self.width, self.hidden = int(width), bool(hidden)
        self.tools = (Tool("read", 1, self._read),)
        self.prompt_width = width + 2
        self.max_args = 1
        self.max_answer = 1
        self.answer_mask = tk.id_mask(tk.DIGITS)
        self.arg_mask = tk.id_mask(tk.ENTITY_NAMES)
        # Hidden: a read (4 agent tokens) and a thought (3) per item; shown: one thought.
        self.plan_width = 7 * width + 3 if hidden else width + 4
        result_tokens = 3 * width if hidden else 0
        self.default_max_len = self.prompt_width + self.plan_width + result_tokens + 1
        self.default_think_budget = width - 1

    def default_task_params(self) -> TallyParams:
        return TallyParams(min_items=1, max_items=self.width)

    def task_param_bounds(self) -> dict[str, tuple[float, float]]:
        return {"min_items": (1, self.width), "max_items": (1, self.width)}

    def task_param_order(self) -> tuple[tuple[str, str], ...]:
        return (("min_items", "max_items"),)

    def sample(self, key, params: TallyParams, split, oracle) -> Task:
        del oracle  # one plan: think the running sums (after each read, when hidden)
        width = self.width
        words = random_words(key, count=(), digits=(width,), names=(NAME_IDS.shape[0],))
        low = jnp.clip(params.min_items, 1, width)
        high = jnp.clip(params.max_items, low, width)
        n = between(words["count"], low, high + 1)
        is_item = jnp.arange(width) >= width - n
        digits = jnp.where(is_item, between(words["digits"], 1, 10), 0)
        # Move the row to the requested split by changing its last digit (the first added).
        candidates = jnp.arange(1, 10)
        rows = jnp.broadcast_to(digits, (9, width)).at[:, -1].set(candidates)
        allowed = held_out(rows, n) == (split == 1)
        distance = jnp.where(allowed, jnp.abs(candidates - digits[-1]), 99)
        digits = digits.at[-1].set(candidates[jnp.argmin(distance)]).astype(jnp.int32)
        names = NAME_IDS[random_order(words["names"])[:width]]
        world = TallyWorld(digits=digits, names=names.astype(jnp.int32), num_items=n)

        shown = jnp.where(self.hidden & is_item, names, DIGIT_IDS[digits])
        prompt = jnp.concatenate([jnp.array([tk.TASK_OPEN]), shown, jnp.array([tk.TASK_CLOSE])])
        return Task(prompt.astype(jnp.int32), jnp.int32(width + 2), world, *self.plan(world))

    def plan(self, world: TallyWorld) -> tuple[jax.Array, jax.Array]:
        """The oracle's agent tokens: running sums, after each ``read`` when items are hidden."""
        n, width = world.num_items, self.width
        sums = DIGIT_IDS[running_sums(world.digits)]
        answer = jnp.array([tk.ANSWER_OPEN, sums[n - 1], tk.ANSWER_CLOSE])
        if not self.hidden:
            think = jnp.concatenate([jnp.array([tk.THINK_OPEN]), sums[1:], jnp.zeros(1, jnp.int32)])
            think = think.at[n].set(tk.THINK_CLOSE)  # <think> s_2 .. s_n </think>
            return pack([(think, jnp.where(n > 1, n + 1, 0)), (answer, 3)], self.plan_width)
        pieces = []
        for step in range(width):
            name = world.names[width - 1 - step]
            read = jnp.array([tk.CALL_OPEN, READ, name, tk.CALL_CLOSE])
            pieces.append((read, jnp.where(step < n, 4, 0)))
            thought = jnp.array([tk.THINK_OPEN, sums[step], tk.THINK_CLOSE])
            pieces.append((thought, jnp.where((step > 0) & (step < n), 3, 0)))
        return pack([*pieces, (answer, 3)], self.plan_width)

    def _read(self, world: TallyWorld, args, args_len, key):
        """``read NAME``: the digit of the item NAME, or ``<error>`` for a name not in the row."""
        del key
        is_item = jnp.arange(self.width) >= self.width - world.num_items
        hits = is_item & (world.names == args[0]) & (args_len == 1)
        digit = DIGIT_IDS[world.digits[jnp.argmax(hits)]]
        found = hits.any()
        token = jnp.where(found, digit, tk.ERROR)
        return tool_output(token[None], 1, jnp.where(found, OK, ERROR), 1)

    def verify(self, world: TallyWorld, answer, answer_len):
        total = running_sums(world.digits)[world.num_items - 1]
        return (answer_len == 1) & (answer[0] == DIGIT_IDS[total])

    def useful_call(self, world: TallyWorld, tool, args, args_len):
        is_item = jnp.arange(self.width) >= self.width - world.num_items
        return (is_item & (world.names == args[0])).any()

    def split_of(self, world: TallyWorld):
        return held_out(world.digits, world.num_items).astype(jnp.int32)
