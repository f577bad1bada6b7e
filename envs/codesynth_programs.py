"""CodeSynth-v0's programs: the function grammar, the split hashes, the sampler's pieces and
the fallback table (see ``codesynth`` for the task itself)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.task import fmix32, stable_argsort
from agentic_jax.tools import sandbox

DOMAIN = 10  # inputs 0..9
HELD_OUT_MODULUS = 5
OPERAND_IDS = jnp.asarray(tk.ids(("x",) + tk.DIGITS[1:]))  # operand code 0: x, 1..9: digits
OP_IDS = jnp.asarray(tk.ids(("+", "-", "*", "max", "min")))  # op codes 0..4
NUM_OPERANDS, NUM_OPS = 10, 5
MAX_OPS = 8
MAX_VISIBLE = 8  # at least two inputs stay hidden
CANDIDATES = 3  # random program prefixes per task, each with every possible last operation
VISIBLE_CANDIDATES = 3  # random orders of the inputs per task (the first few are shown)
X_TOKEN = tk.token_id("x")
EQUALS, PLUS, TIMES, RUN = tk.ids(["=", "+", "*", "run"]).tolist()
DIGIT_IDS = jnp.asarray(tk.DIGIT_IDS)
VALUE_DIGITS = sandbox.MAX_VALUE_DIGITS


@struct.dataclass
class CodeWorld:
    operands: jax.Array  # [max_ops] int32 operand codes (0 = x, 1..9 digits)
    ops: jax.Array  # [max_ops] int32 op codes (+ - * max min)
    num_ops: jax.Array  # int32
    visible: jax.Array  # [max_visible] int32 the visible inputs, in prompt order
    num_visible: jax.Array  # int32
    outputs: jax.Array  # [DOMAIN] int32 the hidden function at every input 0..9
    leak_present: jax.Array  # bool: this episode's ``run`` checks the visible tests (leak variant)


def pair_mix(outputs, xp=jnp):
    """A 32-bit mix of every (input, output) pair: outputs [..., DOMAIN] -> uint32 [..., DOMAIN]."""
    x = xp.arange(DOMAIN, dtype=xp.uint32)
    value = (outputs + 2 * sandbox.MAX_VALUE).astype(xp.uint32)
    return fmix32(value * xp.uint32(DOMAIN) + x, xp)


def function_hash(outputs, xp=jnp, mixed=None):
    """The function's hash mod 5 (0 = test split), from its outputs [..., DOMAIN] at 0..9.

    A hash of the set of its (input, output) pairs; ``mixed``: their ``pair_mix``, if known.
    """
    mixed = pair_mix(outputs, xp) if mixed is None else mixed
    total = mixed.sum(axis=-1, dtype=xp.uint32)
    return (fmix32(total ^ xp.uint32(0x1B873593), xp) % xp.uint32(HELD_OUT_MODULUS)).astype(
        xp.int32
    )


def prompt_hash(outputs, shown, xp=jnp, mixed=None):
    """The prompt's hash mod 5 (0 = test split): a hash of the set of shown (input, output) pairs.

    ``outputs`` [..., DOMAIN], ``shown`` [..., DOMAIN] bool: which inputs the prompt shows.
    """
    mixed = pair_mix(outputs, xp) if mixed is None else mixed
    total = xp.where(shown, mixed, xp.uint32(0)).sum(axis=-1, dtype=xp.uint32)
    return (fmix32(total ^ xp.uint32(0x5BD1E995), xp) % xp.uint32(HELD_OUT_MODULUS)).astype(
        xp.int32
    )


def in_split(f_hash, p_hash, split, xp=jnp):
    """Test tasks have both hashes 0, train tasks both nonzero (tasks with one 0 are not drawn).

    So no function and no prompt occurs in both splits.
    """
    test = (f_hash == 0) & (p_hash == 0)
    train = (f_hash != 0) & (p_hash != 0)
    return xp.where(split == 1, test, train)


def apply_op(acc: jax.Array, op: jax.Array, operand: jax.Array) -> jax.Array:
    """One operation ``acc OPERAND OP`` (op codes ``+ - * max min``), clipped like the sandbox."""
    result = jnp.select(
        [op == 0, op == 1, op == 2, op == 3],
        [acc + operand, acc - operand, acc * operand, jnp.maximum(acc, operand)],
        jnp.minimum(acc, operand),
    )
    return sandbox.clip_value(result)


def evaluate(operands: jax.Array, ops: jax.Array, num_ops: jax.Array) -> jax.Array:
    """The hidden program's outputs [..., DOMAIN] at every input, as the sandbox computes them."""
    x = jnp.arange(DOMAIN, dtype=jnp.int32)
    acc = jnp.broadcast_to(x, operands.shape[:-1] + (DOMAIN,))
    for i in range(operands.shape[-1]):
        operand = jnp.where(operands[..., i : i + 1] == 0, x, operands[..., i : i + 1])
        result = apply_op(acc, ops[..., i : i + 1], operand)
        acc = jnp.where(i < jnp.asarray(num_ops)[..., None], result, acc)
    return acc


def last_options(prefix: jax.Array) -> jax.Array:
    """Outputs after every last operation: prefix [..., DOMAIN] -> [..., 10 * 5, DOMAIN].

    Option ``o * 5 + p`` is operand code ``o`` with op code ``p``.
    """
    x = jnp.arange(DOMAIN, dtype=jnp.int32)
    operand = jnp.where(
        jnp.arange(NUM_OPERANDS)[:, None] == 0, x, jnp.arange(NUM_OPERANDS)[:, None]
    )
    acc = prefix[..., None, :]  # [..., 1, DOMAIN] against operand [10, DOMAIN]
    results = [acc + operand, acc - operand, acc * operand]
    results += [jnp.maximum(acc, operand), jnp.minimum(acc, operand)]
    outputs = jnp.stack(results, axis=-2)  # [..., 10, 5, DOMAIN]
    outputs = outputs.reshape(prefix.shape[:-1] + (NUM_OPERANDS * NUM_OPS, DOMAIN))
    return sandbox.clip_value(outputs)


def visible_mask(visible, num_visible, xp=jnp):
    """[..., DOMAIN] bool: the inputs among the first ``num_visible`` of ``visible`` [..., V]."""
    first = xp.arange(visible.shape[-1]) < xp.asarray(num_visible)[..., None]
    match = (xp.arange(DOMAIN)[:, None] == visible[..., None, :]) & first[..., None, :]
    return match.any(axis=-1)


def random_orders(bits: jax.Array) -> jax.Array:
    """Random orders of the inputs [..., DOMAIN] from random bits [..., DOMAIN] (ties broken
    by position), by counting instead of a sort, which is slow on CPU."""
    return stable_argsort(bits)


def choose_function(prefix, visible, num_visible, split, seed) -> tuple[jax.Array, ...]:
    """Uniform over the valid (input order, function) pairs, a function being a prefix with
    one of every possible last operation: not constant, not zero on every hidden input, in
    the split. Returns (order, function index, fallback: no pair is valid)."""
    shown = visible_mask(visible, num_visible)  # [m, DOMAIN]
    outputs = last_options(prefix).reshape(-1, DOMAIN)  # [F = k * 50, DOMAIN]
    constant = jnp.all(outputs == outputs[:, :1], axis=-1)
    zero_on_hidden = ~jnp.any((outputs != 0)[None] & ~shown[:, None], axis=-1)
    mixed = pair_mix(outputs)
    f_hash = function_hash(outputs, mixed=mixed)
    p_hash = prompt_hash(outputs[None], shown[:, None], mixed=mixed[None])
    valid = ~constant & ~zero_on_hidden & in_split(f_hash, p_hash, split)  # [m, F]
    # The valid pair with the largest pseudo-random priority. (The index rides in the low
    # bits: one max, no argmax, which is slow on CPU.)
    index = jnp.arange(valid.size, dtype=jnp.uint32)
    priority = (index ^ seed) * jnp.uint32(0x9E3779B1)  # a cheap pseudo-random order
    priority = (priority ^ (priority >> 15)) * jnp.uint32(0x2C1B3C6D)
    ranked = (priority >> 11 << 10) | index | jnp.uint32(1 << 31)
    choice = (jnp.max(jnp.where(valid.reshape(-1), ranked, 0)) & 1023).astype(jnp.int32)
    return choice // outputs.shape[0], choice % outputs.shape[0], ~valid.any()


def _fallback_table():
    """A fixed valid task per (num_ops, num_visible, split), for when no random option fits.

    Programs ``x d + 1 + ... 1 + c OP`` (OP ``+ - *``; s = d + num_ops - 2, or 0 for one op)
    compute ``x + s + c``, ``x + s - c`` or ``(x + s) * c``: never constant, 0 at one input at
    most. Each is tried with the inputs in a few fixed orders until both hashes fit the split.
    Returns operands and ops [MAX_OPS + 1, MAX_VISIBLE + 1, 2, MAX_OPS], visible
    [..., MAX_VISIBLE] and outputs [..., DOMAIN], indexed by (num_ops, num_visible, split).
    """
    shape = (MAX_OPS + 1, MAX_VISIBLE + 1, 2)
    operands = np.ones(shape + (MAX_OPS,), np.int32)
    ops = np.zeros(shape + (MAX_OPS,), np.int32)
    visible = np.zeros(shape + (MAX_VISIBLE,), np.int32)
    outputs = np.zeros(shape + (DOMAIN,), np.int32)
    x = np.arange(DOMAIN, dtype=np.int32)
    orders = np.random.default_rng(0).permuted(np.tile(x, (32, 1)), axis=1)[:, :MAX_VISIBLE]
    counts = np.arange(1, MAX_VISIBLE + 1)
    shown = visible_mask(orders[:, None, :], counts[None, :], np)  # [orders, counts, DOMAIN]
    for n in range(1, MAX_OPS + 1):
        d, code, c = (
            a.ravel()
            for a in np.meshgrid(np.arange(1, 10), np.arange(3), np.arange(1, 10), indexing="ij")
        )
        shift = (d + n - 2 if n > 1 else 0 * d)[:, None] + x
        out = np.select(
            [code[:, None] == 0, code[:, None] == 1],
            [shift + c[:, None], shift - c[:, None]],
            shift * c[:, None],
        ).astype(np.int32)  # [P, DOMAIN]
        f_hash = function_hash(out, np)  # [P]
        p_hash = prompt_hash(out[None, None], shown[:, :, None], np)  # [orders, counts, P]
        constant = (out == out[:, :1]).all(axis=-1)
        zero_on_hidden = ~((out != 0)[None, None] & ~shown[:, :, None]).any(axis=-1)
        for split in (0, 1):
            ok = ~constant & ~zero_on_hidden & in_split(f_hash, p_hash, split, np)
            for k in counts:
                orders_ok = np.flatnonzero(ok[:, k - 1].any(axis=-1))
                assert orders_ok.size, f"no fallback task for {n} ops, {k} visible, split {split}"
                o = orders_ok[0]
                i = np.flatnonzero(ok[o, k - 1])[0]
                operands[n, k, split, 0] = d[i]
                operands[n, k, split, n - 1] = c[i]
                ops[n, k, split, n - 1] = code[i]
                visible[n, k, split] = orders[o]
                outputs[n, k, split] = out[i]
    return operands, ops, visible, outputs


FALLBACK_OPERANDS, FALLBACK_OPS, FALLBACK_VISIBLE, FALLBACK_OUTPUTS = (
    jnp.asarray(a) for a in _fallback_table()
)


def program_tokens(world: CodeWorld) -> tuple[jax.Array, jax.Array]:
    """The hidden program's tokens ``x OPERAND OP ...`` [1 + 2 max_ops] and length."""
    pairs = jnp.stack([OPERAND_IDS[world.operands], OP_IDS[world.ops]], axis=1).reshape(-1)
    tokens = jnp.concatenate([jnp.array([X_TOKEN]), pairs])
    tokens = jnp.where(jnp.arange(tokens.shape[0]) < 1 + 2 * world.num_ops, tokens, tk.PAD)
    return tokens, 1 + 2 * world.num_ops


def hidden_mask(world: CodeWorld) -> jax.Array:
    """[DOMAIN] bool: the inputs graded (every input that is not a visible one)."""
    return ~visible_mask(world.visible, world.num_visible)


def hidden_inputs(world: CodeWorld) -> jax.Array:
    """[DOMAIN] int32: the hidden inputs in increasing order (then padding with 0)."""
    hidden = hidden_mask(world)
    position = jnp.arange(DOMAIN)
    rank = jnp.sum(hidden[None, :] & (position[None, :] < position[:, None]), axis=1)
    slot = hidden[None, :] & (rank[None, :] == position[:, None])  # [slot, input]
    return jnp.sum(slot * position[None, :], axis=1).astype(jnp.int32)


def concat(pieces: list[tuple[jax.Array, jax.Array]], width: int) -> tuple[jax.Array, jax.Array]:
    """Concatenate rows of tokens ``(rows [R, w], lengths [R])`` into ``width`` slots.

    Like ``harness.pack`` for many pieces at once, by one gather (scatters are slow on CPU);
    returns (tokens padded with ``<pad>``, length).
    """
    row_width = max(rows.shape[1] for rows, _ in pieces)
    rows = jnp.concatenate(
        [
            jnp.pad(jnp.asarray(r, jnp.int32), ((0, 0), (0, row_width - r.shape[1])))
            for r, _ in pieces
        ]
    )
    lengths = jnp.concatenate([jnp.asarray(n, jnp.int32).reshape(-1) for _, n in pieces])
    ends = jnp.cumsum(lengths)
    position = jnp.arange(width)
    row = jnp.sum(ends[None, :] <= position[:, None], axis=1)  # rows that end before
    row = jnp.clip(row, 0, rows.shape[0] - 1)
    offset = jnp.clip(position - (ends[row] - lengths[row]), 0, row_width - 1)
    out = jnp.where(position < ends[-1], rows[row, offset], tk.PAD)
    return out, jnp.minimum(ends[-1], width)


def number_tokens(values: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Decimal tokens of values [N] in [-999, 999]: ([N, 4] sign first when negative, lengths)."""
    magnitude = jnp.abs(values)
    digits = 1 + (magnitude >= 10) + (magnitude >= 100)
    negative = values < 0
    place = jnp.arange(VALUE_DIGITS + 1)[None, :] - negative[:, None]  # digit index, sign first
    power = jnp.clip(digits[:, None] - 1 - place, 0, VALUE_DIGITS - 1)
    digit = (magnitude[:, None] // (10**power)) % 10
    tokens = jnp.where(place < 0, tk.MINUS, DIGIT_IDS[digit])
    length = digits + negative
    return jnp.where(jnp.arange(VALUE_DIGITS + 1) < length[:, None], tokens, tk.PAD), length


def failure_line(test: jax.Array, expected: jax.Array, actual: jax.Array, width: int):
    """A failing test as ``run_output="first_failure"`` writes it: the test as the prompt
    writes an example, then ``fail`` and the program's output (``x 3 = 1 4 fail 9``)."""
    expected_tokens, expected_len = number_tokens(expected[None])
    actual_tokens, actual_len = number_tokens(actual[None])
    return concat(
        [
            (jnp.stack([X_TOKEN, DIGIT_IDS[test], EQUALS])[None], jnp.array([3])),
            (expected_tokens, expected_len),
            (jnp.array([[sandbox.FAIL]]), jnp.array([1])),
            (actual_tokens, actual_len),
        ],
        width,
    )
