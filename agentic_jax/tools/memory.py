"""The ``write`` and ``read`` tools: a fixed-size key-value memory kept as episode state.

A key is one to ``key_width`` tokens, a value one token::

    <call> write bob hat red </call> <result> ok </result>      (key "bob hat", value "red")
    <call> read bob hat </call>      <result> red </result>

``write KEY VALUE`` stores VALUE under KEY: it overwrites the slot that already holds KEY,
or takes the first free slot; with every slot taken by other keys it returns ``<error>`` and
stores nothing. ``read KEY`` returns the value stored under KEY, or ``<error>`` when none is.
A wrong argument count (write: 2 to ``key_width + 1`` tokens; read: 1 to ``key_width``)
returns ``<error>``. Both are a few comparisons over ``[slots, key_width]``: cheap at every
step under ``vmap``.

The memory is mutable episode state: ``write`` returns its updated memory, which the family
puts back into its world and returns to the harness (``tool_output(..., world=...)``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.tools.base import ERROR, OK, ToolOutput, tool_output

OK_TOKEN = tk.TOKEN_ID["ok"]
RESULT_WIDTH = 1  # "ok", a value, or "<error>"


@struct.dataclass
class Memory:
    keys: jax.Array  # [S, K] int32 key tokens, padded with <pad>
    values: jax.Array  # [S] int32 value tokens
    used: jax.Array  # [S] bool


def empty(slots: int, key_width: int) -> Memory:
    """A memory of ``slots`` slots with keys of up to ``key_width`` tokens, all free."""
    return Memory(
        keys=jnp.full((slots, key_width), tk.PAD, jnp.int32),
        values=jnp.full((slots,), tk.PAD, jnp.int32),
        used=jnp.zeros((slots,), bool),
    )


def _key(args: jax.Array, key_len: jax.Array, key_width: int) -> jax.Array:
    """The first ``key_len`` argument tokens as a key ``[key_width]`` padded with ``<pad>``."""
    index = jnp.arange(key_width)
    padded = jnp.full((key_width,), tk.PAD, jnp.int32)
    padded = padded.at[: min(key_width, args.shape[0])].set(args[:key_width])
    return jnp.where(index < key_len, padded, tk.PAD)


def _match(memory: Memory, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(slot, found) of ``key`` among the used slots."""
    hits = memory.used & jnp.all(memory.keys == key[None, :], axis=1)
    return jnp.argmax(hits).astype(jnp.int32), hits.any()


def _output(token: jax.Array, ok: jax.Array) -> ToolOutput:
    return tool_output(
        jnp.where(ok, token, tk.ERROR)[None], 1, jnp.where(ok, OK, ERROR), RESULT_WIDTH
    )


def write(memory: Memory, args: jax.Array, args_len: jax.Array) -> tuple[ToolOutput, Memory]:
    """``write KEY VALUE``: ``ok`` and the updated memory, or ``<error>`` and the same one."""
    key_width = memory.keys.shape[1]
    key_len = args_len - 1
    key = _key(args, key_len, key_width)
    value = args[jnp.clip(args_len - 1, 0, args.shape[0] - 1)]
    slot, found = _match(memory, key)
    free = ~memory.used
    slot = jnp.where(found, slot, jnp.argmax(free)).astype(jnp.int32)
    ok = (key_len >= 1) & (key_len <= key_width) & (found | free.any())
    at = jnp.arange(memory.used.shape[0]) == slot
    store = ok & at
    updated = Memory(
        keys=jnp.where(store[:, None], key[None, :], memory.keys),
        values=jnp.where(store, value, memory.values),
        used=memory.used | store,
    )
    return _output(jnp.int32(OK_TOKEN), ok), updated


def read(memory: Memory, args: jax.Array, args_len: jax.Array) -> ToolOutput:
    """``read KEY``: the value stored under KEY, or ``<error>``."""
    key_width = memory.keys.shape[1]
    slot, found = _match(memory, _key(args, args_len, key_width))
    ok = found & (args_len >= 1) & (args_len <= key_width)
    return _output(memory.values[slot], ok)
