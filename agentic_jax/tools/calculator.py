"""The ``calc`` tool: exact integer arithmetic on digit tokens, and digit helpers.

Arguments are ``DIGITS OP DIGITS`` with OP one of ``+ - *``; each operand has at most
``max_digits`` digits. Anything else (no operator, two operators, an empty or too long
operand, a non-digit token) returns ``<error>``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from agentic_jax import tokens as tk
from agentic_jax.tools.base import ERROR, OK, ToolOutput, tool_output

OPERATOR_IDS = jnp.asarray(tk.ids(["+", "-", "*"]))  # op index 0, 1, 2
DIGIT_IDS = jnp.asarray(tk.DIGIT_IDS)


def apply_op(a: jax.Array, op: jax.Array, b: jax.Array) -> jax.Array:
    """``a + b``, ``a - b`` or ``a * b`` for op index 0, 1, 2."""
    return jnp.select([op == 0, op == 1], [a + b, a - b], a * b)


def int_to_tokens(value: jax.Array, num_digits: int) -> tuple[jax.Array, jax.Array]:
    """Decimal tokens of ``value`` (sign first when negative), ``num_digits + 1`` slots wide.

    ``num_digits`` is the most digits ``|value|`` may have; returns (tokens, length).
    """
    value = jnp.asarray(value, jnp.int32)
    magnitude = jnp.abs(value)
    powers = 10 ** jnp.arange(num_digits - 1, -1, -1, dtype=jnp.int32)
    digits = (magnitude // powers) % 10  # most significant first, zero-padded
    nonzero = digits > 0
    first = jnp.where(nonzero.any(), jnp.argmax(nonzero), num_digits - 1)
    count = num_digits - first
    shifted = jnp.roll(digits, -first)
    number = jnp.where(jnp.arange(num_digits) < count, DIGIT_IDS[shifted], tk.PAD)
    negative = value < 0
    with_sign = jnp.concatenate([jnp.array([tk.MINUS]), number])
    without = jnp.concatenate([number, jnp.array([tk.PAD])])
    return jnp.where(negative, with_sign, without).astype(jnp.int32), count + negative


def digits_value(tokens: jax.Array, start: jax.Array, stop: jax.Array) -> jax.Array:
    """Integer value of the digit tokens in ``tokens[start:stop]`` (assumed to be digits)."""
    index = jnp.arange(tokens.shape[0])
    inside = (index >= start) & (index < stop)
    digit = jnp.argmax(tokens[:, None] == DIGIT_IDS[None, :], axis=1)
    power = jnp.where(inside, stop - 1 - index, 0)
    return jnp.sum(jnp.where(inside, digit * 10**power, 0)).astype(jnp.int32)


def parse_expression(args: jax.Array, args_len: jax.Array, max_digits: int):
    """Parse ``DIGITS OP DIGITS``; returns (a, op index, b, valid)."""
    index = jnp.arange(args.shape[0])
    active = index < args_len
    is_digit = jnp.isin(args, DIGIT_IDS)
    op_match = args[:, None] == OPERATOR_IDS[None, :]
    is_op = op_match.any(axis=1) & active
    op_position = jnp.argmax(is_op)
    op = jnp.argmax(op_match[op_position])
    left, right = op_position, args_len - op_position - 1
    valid = (
        (is_op.sum() == 1)
        & jnp.all(is_digit | is_op | ~active)
        & (left >= 1)
        & (left <= max_digits)
        & (right >= 1)
        & (right <= max_digits)
    )
    a = digits_value(args, 0, op_position)
    b = digits_value(args, op_position + 1, args_len)
    return a, op, b, valid


def calc(args: jax.Array, args_len: jax.Array, max_digits: int) -> ToolOutput:
    """Evaluate ``a OP b`` exactly; ``<error>`` on a malformed expression."""
    width = 2 * max_digits + 1
    a, op, b, valid = parse_expression(args, args_len, max_digits)
    result, length = int_to_tokens(apply_op(a, op, b), 2 * max_digits)
    error = jnp.zeros(width, jnp.int32).at[0].set(tk.ERROR)
    return tool_output(
        jnp.where(valid, result, error),
        jnp.where(valid, length, 1),
        jnp.where(valid, OK, ERROR),
        width,
    )
