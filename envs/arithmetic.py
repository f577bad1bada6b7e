"""Arithmetic-v0: integer arithmetic, solved with the ``calc`` tool or by thinking.

Each task is ``a OP b`` with OP in ``+ - *`` and ``digits``-digit operands. The agent
may call ``calc`` (exact) or work it out inside ``<think>``; the answer is the decimal
result, with a leading ``-`` when negative.

    <task> 3 7 * 4 8 = ? </task>
    <call> calc 3 7 * 4 8 </call> <result> 1 7 7 6 </result>
    <answer> 1 7 7 6 </answer>

The oracle solves either way (``oracle_mode`` 0: tool, 1: scratchpad). Its scratchpad
works digit by digit: for ``+`` and ``-`` the result's digits from the least
significant up; for ``*`` the partial products ``a * b_i * 10^i``, joined by ``+``.

    <think> 2 9 6 + 1 4 8 0 </think> <answer> 1 7 7 6 </answer>

Train and test tasks are disjoint: ``(a + b + op) % 5 == 0`` is held out for testing.

Static parameter: ``max_digits``. Traced (``ArithmeticParams``): ``digits``, and
``min_digits`` (> 0: each task draws its operands' digit count from ``min_digits..digits``,
a mixture of difficulties in one batch).

Thinking that matters: with the calculator disabled (``tools_enabled=False``) the
scratchpad oracle (``oracle_mode`` 1) is the only way to work a product out digit by digit.
Under effort levels (``make(..., effort=True)``) a budget too small for a task's scratchpad
makes the oracle answer directly, so more budget buys more worked-out tasks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.task import Task, TaskFamily, Tool, below, between, pack, random_words
from agentic_jax.tools import calculator
from agentic_jax.tools.calculator import OPERATOR_IDS, apply_op, int_to_tokens

HELD_OUT_MODULUS = 5


@struct.dataclass
class ArithmeticParams:
    digits: int = 2
    min_digits: int = 0  # > 0: each task draws its operands' digits from min_digits..digits


@struct.dataclass
class ArithmeticWorld:
    a: jax.Array
    op: jax.Array  # 0 +, 1 -, 2 *
    b: jax.Array
    result: jax.Array


def held_out(a: jax.Array, b: jax.Array, op: jax.Array) -> jax.Array:
    return (a + b + op) % HELD_OUT_MODULUS == 0


class Arithmetic(TaskFamily):
    oracle_modes = (0, 1)  # 0: calc tool, 1: scratchpad in <think>

    def __init__(self, max_digits: int = 3):
        if not 1 <= max_digits <= 4:
            raise ValueError(f"max_digits must be in [1, 4], got {max_digits}")
        self.max_digits = max_digits
        result_width = 2 * max_digits + 1
        self.tools = (
            Tool(
                "calc",
                result_width,
                lambda world, args, n, key: calculator.calc(args, n, max_digits),
            ),
        )
        self.prompt_width = 2 * max_digits + 5  # <task> a OP b = ? </task>
        self.max_args = 2 * max_digits + 2
        self.max_answer = result_width
        self.scratch_width = max_digits * (2 * max_digits + 1)
        self.plan_width = self.scratch_width + result_width + 5
        self.answer_mask = tk.id_mask(tk.DIGITS + ("-",))
        self.arg_mask = tk.id_mask(tk.DIGITS + ("+", "-", "*"))
        self.default_max_len = self.prompt_width + self.plan_width + result_width + 2
        self.default_think_budget = self.scratch_width

    def default_task_params(self) -> ArithmeticParams:
        return ArithmeticParams(digits=min(2, self.max_digits))

    def task_param_bounds(self) -> dict[str, tuple[float, float]]:
        return {"digits": (1, self.max_digits), "min_digits": (0, self.max_digits)}

    def task_param_order(self) -> tuple[tuple[str, str], ...]:
        return (("min_digits", "digits"),)  # min_digits 0: every task has ``digits`` digits

    def sample(self, key, params: ArithmeticParams, split, oracle) -> Task:
        words = random_words(key, digits=(), a=(), b=(), op=())
        digits = jnp.clip(params.digits, 1, self.max_digits)
        fewest = jnp.where(params.min_digits > 0, jnp.minimum(params.min_digits, digits), digits)
        digits = between(words["digits"], fewest, digits + 1)
        low = jnp.where(digits == 1, 0, 10 ** (digits - 1))
        high = 10**digits  # exclusive
        a = between(words["a"], low, high)
        b = between(words["b"], low, high)
        op = below(words["op"], 3)
        # Move b to the requested split by the smallest shift that stays in range.
        remainder = (a + b + op) % HELD_OUT_MODULUS
        b_train = jnp.where(remainder == 0, jnp.where(b + 1 < high, b + 1, b - 1), b)
        b_test = b - remainder
        b_test = jnp.where(b_test < low, b_test + HELD_OUT_MODULUS, b_test)
        b = jnp.where(split == 1, b_test, b_train)
        result = apply_op(a, op, b)
        world = ArithmeticWorld(a, op, b, result)

        n = self.max_digits
        a_tokens, a_len = int_to_tokens(a, n)
        b_tokens, b_len = int_to_tokens(b, n)
        op_token = OPERATOR_IDS[op]
        prompt, prompt_len = pack(
            [
                (jnp.array([tk.TASK_OPEN]), 1),
                (a_tokens, a_len),
                (op_token, 1),
                (b_tokens, b_len),
                (jnp.array([tk.TOKEN_ID["="], tk.TOKEN_ID["?"], tk.TASK_CLOSE]), 3),
            ],
            self.prompt_width,
        )
        answer_tokens, answer_len = int_to_tokens(result, 2 * n)
        tool_plan = pack(
            [
                (jnp.array([tk.CALL_OPEN, tk.TOKEN_ID["calc"]]), 2),
                (a_tokens, a_len),
                (op_token, 1),
                (b_tokens, b_len),
                (jnp.array([tk.CALL_CLOSE, tk.ANSWER_OPEN]), 2),
                (answer_tokens, answer_len),
                (jnp.array([tk.ANSWER_CLOSE]), 1),
            ],
            self.plan_width,
        )
        scratch, scratch_len = self.scratchpad(world)
        think_plan = pack(
            [
                (jnp.array([tk.THINK_OPEN]), 1),
                (scratch, scratch_len),
                (jnp.array([tk.THINK_CLOSE, tk.ANSWER_OPEN]), 2),
                (answer_tokens, answer_len),
                (jnp.array([tk.ANSWER_CLOSE]), 1),
            ],
            self.plan_width,
        )
        plan, plan_len = jax.tree.map(
            lambda t, s: jnp.where(oracle == 1, s, t), tool_plan, think_plan
        )
        return Task(prompt, prompt_len, world, plan, plan_len)

    def scratchpad(self, world: ArithmeticWorld) -> tuple[jax.Array, jax.Array]:
        """Digit-by-digit working: reversed result digits (+, -) or partial products (*)."""
        n = self.max_digits
        result_tokens, result_len = int_to_tokens(world.result, 2 * n)
        # Reverse the digits (keep a leading minus sign at the end, where it is decided).
        index = jnp.arange(result_tokens.shape[0])
        reversed_tokens = result_tokens[
            jnp.clip(result_len - 1 - index, 0, result_tokens.shape[0] - 1)
        ]
        reversed_tokens = jnp.where(index < result_len, reversed_tokens, tk.PAD)
        b_digits = (world.b // 10 ** jnp.arange(n)) % 10
        b_len = jnp.maximum(1, jnp.sum(world.b >= 10 ** jnp.arange(n)))
        pieces = []
        for i in range(n):
            partial, partial_len = int_to_tokens(world.a * b_digits[i] * 10**i, 2 * n)
            used = i < b_len
            pieces.append((jnp.array([tk.TOKEN_ID["+"]]), jnp.where(used & (i > 0), 1, 0)))
            pieces.append((partial, jnp.where(used, partial_len, 0)))
        products, products_len = pack(pieces, self.scratch_width)
        is_product = world.op == 2
        reversed_padded = jnp.full((self.scratch_width,), tk.PAD, jnp.int32)
        reversed_padded = reversed_padded.at[: reversed_tokens.shape[0]].set(reversed_tokens)
        return (
            jnp.where(is_product, products, reversed_padded),
            jnp.where(is_product, products_len, result_len),
        )

    def verify(self, world: ArithmeticWorld, answer, answer_len):
        expected, expected_len = int_to_tokens(world.result, 2 * self.max_digits)
        index = jnp.arange(self.max_answer)
        padded = (
            jnp.full((self.max_answer,), tk.PAD, jnp.int32).at[: expected.shape[0]].set(expected)
        )
        same = jnp.where(index < expected_len, answer == padded, True)
        return (answer_len == expected_len) & same.all()

    def useful_call(self, world: ArithmeticWorld, tool, args, args_len):
        a, op, b, valid = calculator.parse_expression(args, args_len, self.max_digits)
        return valid & (apply_op(a, op, b) == world.result)

    def split_of(self, world: ArithmeticWorld):
        return held_out(world.a, world.b, world.op).astype(jnp.int32)
