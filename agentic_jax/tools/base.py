"""The tool interface: what a tool is (``Tool``), what it returns (``ToolOutput``) and the
helpers every tool uses to build its result (``tool_output``, ``pack``).

A tool is a pure function ``fn(world, args [C], args_len, key) -> ToolOutput``: the episode's
hidden world, the argument tokens the agent wrote between the tool name and ``</call>``, and a
PRNG key. It returns result tokens padded to its ``result_width``, a status, an optional
latency (``<wait>`` tokens the harness writes before ``<result>``) and optionally an updated
world (mutable episode state, e.g. a memory a ``write`` tool stores into). Every loop inside a
tool is bounded and every index clipped, so no argument can make it hang or read out of range.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import tokens as tk


class Status(enum.IntEnum):
    """A tool call's outcome, counted by the harness (``tool_errors``, ``retries``)."""

    OK = 0
    ERROR = 1
    TIMEOUT = 2


OK, ERROR, TIMEOUT = Status.OK, Status.ERROR, Status.TIMEOUT


@struct.dataclass
class ToolOutput:
    """What a tool returns: result tokens (padded), their count and a status."""

    tokens: jax.Array  # [R] int32
    length: jax.Array  # int32
    status: jax.Array  # int32: a Status
    latency: jax.Array | int = 0  # <wait> tokens the harness writes before <result>
    world: Any = None  # the updated world, for a tool that changes it (None: unchanged)


class Tool(NamedTuple):
    """A pure tool: ``fn(world, args [C], args_len, key) -> ToolOutput`` with ``result_width`` R.

    A tool with latency answers after up to ``max_latency`` ``<wait>`` tokens.
    """

    name: str
    result_width: int
    fn: Callable[[Any, jax.Array, jax.Array, jax.Array], ToolOutput]
    max_latency: int = 0


def tool_output(
    result: jax.Array,
    length: jax.Array,
    status: jax.Array,
    width: int,
    latency: Any = 0,
    world: Any = None,
) -> ToolOutput:
    """Pad or cut ``result`` to ``width`` tokens and clip ``length`` into range.

    ``world``: the tool's updated world (mutable episode state), or None to leave it as is.
    """
    result = jnp.asarray(result, jnp.int32)
    padded = jnp.full((width,), tk.PAD, jnp.int32).at[: result.shape[0]].set(result[:width])
    length = jnp.clip(jnp.asarray(length, jnp.int32), 0, width)
    padded = jnp.where(jnp.arange(width) < length, padded, tk.PAD)
    latency = jnp.maximum(jnp.asarray(latency, jnp.int32), 0)
    return ToolOutput(padded, length, jnp.asarray(status, jnp.int32), latency, world)


def forced_result(out: ToolOutput, width: int) -> jax.Array:
    """The forced tokens [width] a call's output becomes: ``<wait>`` x latency, ``<result>``,
    the result tokens, ``</result>``, padding."""
    index = jnp.arange(width) - out.latency
    body = out.tokens[jnp.clip(index - 1, 0, out.tokens.shape[0] - 1)]
    result = jnp.where(index == 0, tk.RESULT_OPEN, body)
    result = jnp.where(index == out.length + 1, tk.RESULT_CLOSE, result)
    result = jnp.where(index > out.length + 1, tk.PAD, result)
    return jnp.where(index < 0, tk.WAIT, result)


def _keeping_world(fn: Callable[..., ToolOutput]) -> Callable[..., ToolOutput]:
    """``fn`` returning its input world when it returns none (``lax.switch`` needs one shape)."""

    def wrapped(world, args, args_len, key):
        out = fn(world, args, args_len, key)
        return out if out.world is not None else out.replace(world=world)

    return wrapped


def _padded(fn: Callable[..., ToolOutput], width: int) -> Callable[..., ToolOutput]:
    """``fn`` with its result tokens padded to ``width`` (``lax.switch`` needs one shape)."""

    def wrapped(world, args, args_len, key):
        out = fn(world, args, args_len, key)
        padding = width - out.tokens.shape[0]
        return out.replace(tokens=jnp.pad(out.tokens, (0, padding), constant_values=tk.PAD))

    return wrapped


def call_tool(tools, index, world, args, args_len, key) -> ToolOutput:
    """Tool ``index`` of ``tools`` called on the arguments (a ``lax.switch``: under vmap every
    tool runs and the chosen result is selected). If any tool updates the world, every
    output carries one (the others return their input world); results narrower than the
    widest are padded to its width."""
    fns = [tool.fn for tool in tools]
    shapes = [jax.eval_shape(fn, world, args, args_len, key) for fn in fns]
    if any(shape.world is not None for shape in shapes):
        fns = [_keeping_world(fn) for fn in fns]
    width = max(shape.tokens.shape[0] for shape in shapes)
    fns = [
        fn if shape.tokens.shape[0] == width else _padded(fn, width)
        for fn, shape in zip(fns, shapes, strict=True)
    ]
    return jax.lax.switch(index, fns, world, args, args_len, key)


def pack(pieces: list[tuple[jax.Array, jax.Array]], width: int) -> tuple[jax.Array, jax.Array]:
    """Concatenate variable-length token pieces ``(tokens [w], length)`` into ``width`` slots.

    Returns the packed tokens (padded with ``<pad>``) and the total length (clipped to width).
    """
    out = jnp.full((width,), tk.PAD, jnp.int32)
    offset = jnp.int32(0)
    for piece, length in pieces:
        piece = jnp.atleast_1d(jnp.asarray(piece, jnp.int32))
        index = jnp.arange(piece.shape[0])
        target = jnp.where(index < length, offset + index, width)
        out = out.at[target].set(piece, mode="drop")
        offset = offset + jnp.asarray(length, jnp.int32)
    return out, jnp.minimum(offset, width)
