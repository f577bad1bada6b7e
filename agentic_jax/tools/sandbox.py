"""The ``run`` tool: a sandboxed stack VM that runs a program against integer tests.

A program is a sequence of tokens executed left to right on a stack of at most
``stack_size`` integers, one copy of the machine per test input (all inputs at once):

- ``x``: push the test input;
- ``0`` .. ``9``: push the digit; a digit right after a digit extends the literal
  (``4 2`` pushes 42);
- ``+ - *``: pop ``b``, pop ``a``, push ``a + b``, ``a - b``, ``a * b``;
- ``=``: pop ``b``, pop ``a``, push 1 if ``a == b`` else 0 (what a table of cases is
  built from: ``0 x 3 = 4 2 * +`` is 42 at 3 and 0 elsewhere);
- ``max``, ``min``: pop ``b``, pop ``a``, push the larger or the smaller;
- ``dup`` copies the top, ``swap`` exchanges the top two, ``drop`` discards the top.

Every value is clipped into ``[-MAX_VALUE, MAX_VALUE]`` (999) after every instruction. The
program's output is the top of the stack when it ends. The language has no jumps, so a
run takes at most one step per token and always halts; ``max_steps`` still caps the
number of instructions run. Errors, reported by ``run`` as ``<error> REASON``:

- ``opcode``: a token that is not an instruction (any word outside the list above);
- ``underflow``: an instruction needs more values than the stack holds, or the program
  ends with an empty stack (an empty program included);
- ``overflow``: a push onto a full stack (``stack_size`` values);
- ``limit``: the program has more than ``max_steps`` instructions.

Stack depth never depends on the values, so an error is the same for every input; the
first error in program order is the one reported.

``test_report`` turns a run into ``run``'s result: one ``pass`` or ``fail`` per checked
test, in order (``pass pass fail``), or ``<error> REASON``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from agentic_jax import tokens as tk
from agentic_jax.tools.base import ERROR, OK, ToolOutput, tool_output

MAX_VALUE = 999  # values live in [-MAX_VALUE, MAX_VALUE]
MAX_VALUE_DIGITS = 3

# Instructions (opcode order).
INSTRUCTIONS = ("x", "<digit>", "+", "-", "*", "=", "max", "min", "dup", "swap", "drop")
X, LIT, ADD, SUB, MUL, EQ, MAX, MIN, DUP, SWAP, DROP = range(len(INSTRUCTIONS))
BAD = len(INSTRUCTIONS)  # not an instruction
NEEDS = np.array([0, 0, 2, 2, 2, 2, 2, 2, 1, 2, 1, 0], np.int32)  # values popped (or read)
DELTA = np.array([1, 1, -1, -1, -1, -1, -1, -1, 1, 0, -1, 0], np.int32)  # change in depth

# The program tokens, for argument and answer masks.
PROGRAM_WORDS = ("x",) + tk.DIGITS + ("+", "-", "*", "=", "max", "min", "dup", "swap", "drop")

# Error codes and the word ``run`` reports after ``<error>``.
NO_ERROR, OPCODE, UNDERFLOW, OVERFLOW, LIMIT = range(5)
ERROR_WORDS = ("<pad>", "opcode", "underflow", "overflow", "limit")


def _tables() -> tuple[np.ndarray, np.ndarray]:
    opcode = np.full(tk.VOCAB_SIZE, BAD, np.int32)
    digit = np.zeros(tk.VOCAB_SIZE, np.int32)
    for word in PROGRAM_WORDS:
        if word in tk.DIGITS:
            opcode[tk.token_id(word)] = LIT
            digit[tk.token_id(word)] = int(word)
        else:
            opcode[tk.token_id(word)] = INSTRUCTIONS.index(word)
    return opcode, digit


OPCODE_OF, DIGIT_OF = _tables()
ERROR_WORD_IDS = np.asarray(tk.ids(ERROR_WORDS), np.int32)
PASS, FAIL = tk.token_id("pass"), tk.token_id("fail")


def clip_value(value: jax.Array) -> jax.Array:
    return jnp.clip(value, -MAX_VALUE, MAX_VALUE)


def instruction_writes(op, digit, extend, stack, depth, inputs) -> tuple[tuple, tuple]:
    """What one instruction writes on a stack [stack_size, N] of ``depth`` values: at most
    two slots, ``((slot, value [N]), (slot, value [N]))``; slot -1 writes nothing."""
    stack_size = stack.shape[0]
    top = stack[jnp.clip(depth - 1, 0, stack_size - 1)]
    second = stack[jnp.clip(depth - 2, 0, stack_size - 1)]
    binary = jnp.select(
        [op == ADD, op == SUB, op == MUL, op == EQ, op == MAX],
        [
            second + top,
            second - top,
            second * top,
            (second == top).astype(jnp.int32),
            jnp.maximum(second, top),
        ],
        jnp.minimum(second, top),
    )
    first_slot = jnp.select(
        [op == X, extend, op == LIT, (op >= ADD) & (op <= MIN), op == DUP, op == SWAP],
        [depth, depth - 1, depth, depth - 2, depth, depth - 2],
        -1,
    )
    first_value = jnp.select(
        [op == X, extend, op == LIT, (op >= ADD) & (op <= MIN)],
        [inputs, top * 10 + digit, jnp.broadcast_to(digit, inputs.shape), binary],
        top,  # dup, swap
    )
    second_slot = jnp.where(op == SWAP, depth - 1, -1)
    return (first_slot, first_value), (second_slot, second)


def execute(
    program: jax.Array, length: jax.Array, inputs: jax.Array, stack_size: int, max_steps: int
) -> tuple[jax.Array, jax.Array]:
    """Run ``program[:length]`` once per input.

    Returns (outputs [N] int32, the top of the stack; error code, an int32 scalar).
    Outputs are 0 where the run failed.
    """
    program = jnp.asarray(program, jnp.int32)
    inputs = jnp.asarray(inputs, jnp.int32)
    width = program.shape[0]
    opcode_of, digit_of = jnp.asarray(OPCODE_OF), jnp.asarray(DIGIT_OF)
    needs, delta_of = jnp.asarray(NEEDS), jnp.asarray(DELTA)
    slots = jnp.arange(stack_size)[:, None]
    length = jnp.clip(jnp.asarray(length, jnp.int32), 0, width)

    def body(i, carry):
        stack, depth, error, after_digit = carry
        token = jnp.clip(program[i], 0, tk.VOCAB_SIZE - 1)
        op = opcode_of[token]
        digit = digit_of[token]
        active = (i < length) & (error == NO_ERROR)
        extend = (op == LIT) & after_digit  # a digit after a digit extends the literal
        need = jnp.where(extend, 1, needs[op])
        delta = jnp.where(extend, 0, delta_of[op])
        step_error = jnp.select(
            [i >= max_steps, op == BAD, depth < need, depth + delta > stack_size],
            [LIMIT, OPCODE, UNDERFLOW, OVERFLOW],
            NO_ERROR,
        )
        writes = instruction_writes(op, digit, extend, stack, depth, inputs)
        (first_slot, first_value), (second_slot, second_value) = writes
        run = active & (step_error == NO_ERROR)
        stack = jnp.where(run & (slots == first_slot), clip_value(first_value)[None], stack)
        stack = jnp.where(run & (slots == second_slot), second_value[None], stack)
        return (
            stack,
            jnp.where(run, depth + delta, depth),
            jnp.where(active, step_error, error),
            jnp.where(run, op == LIT, after_digit),
        )

    carry = (
        jnp.zeros((stack_size, inputs.shape[0]), jnp.int32),
        jnp.int32(0),
        jnp.int32(NO_ERROR),
        jnp.bool_(False),
    )
    stack, depth, error, _ = jax.lax.fori_loop(0, width, body, carry)
    error = jnp.where((error == NO_ERROR) & (depth == 0), UNDERFLOW, error)
    outputs = stack[jnp.clip(depth - 1, 0, stack_size - 1)]
    return jnp.where(error == NO_ERROR, outputs, 0), error


def test_report(
    outputs: jax.Array,
    error: jax.Array,
    expected: jax.Array,
    checked: jax.Array,
    num_checked: jax.Array,
    width: int,
) -> ToolOutput:
    """``run``'s result from a run (``execute``'s outputs [N] and error): ``pass``/``fail``
    for tests ``checked[:num_checked]`` (indices into the run's inputs).

    A program that fails to run gives ``<error> REASON`` with status ERROR.
    """
    checked = jnp.clip(jnp.asarray(checked, jnp.int32), 0, outputs.shape[0] - 1)
    passed = (outputs == expected)[checked]
    verdicts = jnp.where(passed, PASS, FAIL)
    verdicts = jnp.pad(verdicts, (0, max(0, 2 - verdicts.shape[0])), constant_values=tk.PAD)
    reason = jnp.asarray(ERROR_WORD_IDS)[jnp.clip(error, 0, LIMIT)]
    failure = jnp.full_like(verdicts, tk.PAD).at[0].set(tk.ERROR).at[1].set(reason)
    ok = error == NO_ERROR
    return tool_output(
        jnp.where(ok, verdicts, failure),
        jnp.where(ok, num_checked, 2),
        jnp.where(ok, OK, ERROR),
        width,
    )
