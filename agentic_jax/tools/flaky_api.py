"""The ``api`` and ``backup`` tools: a flaky, slow lookup service and its reliable fallback.

Both look up ``FIELD NAME`` (``price bob``) in a catalogue and answer the value, a number
0..99 written as one or two digit tokens. They differ in how they fail and how long they
take; the harness writes their latency as ``<wait>`` tokens before ``<result>``::

    <call> api price bob </call> <wait> <wait> <result> 4 7 </result>
    <call> api price bob </call> <wait> <wait> <wait> <result> <error> </result>
    <call> api price bob </call> <wait> <wait> <wait> <wait> <result> <timeout> </result>
    <call> backup price bob </call> <wait> x8 <result> 4 7 </result>

- ``api``: answers after a latency drawn from ``service.latency`` (by default uniform on
  ``[latency_min, latency_max]``; ``agentic_jax.tools.latency``); a draw past its timeout is a
  ``<timeout>`` after the timeout's wait. With
  probability ``fail_prob`` the call fails instead: a ``timeout_share`` of failures are
  timeouts (``<timeout>``, status TIMEOUT, after the full ``latency_max`` wait), the rest
  are errors (``<error>``, status ERROR, after the drawn latency). Every draw comes from the
  step key the tool receives, so retrying the same call can succeed.
- ``backup``: never fails, but always answers after ``backup_latency`` waits (by default
  longer than the api's worst case; or a wait drawn from its own distribution): its cost is
  time.

Malformed arguments (not exactly ``FIELD NAME``) return ``<error>`` at once, with no wait,
from both tools. A failed call's result never holds the value. Latencies are clipped to
the tool's static ``max_latency``, which sizes the harness's result queue.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.tools.base import ERROR, OK, TIMEOUT, ToolOutput, tool_output
from agentic_jax.tools.calculator import int_to_tokens
from agentic_jax.tools.latency import Latency, draw

FIELD_IDS = jnp.asarray(tk.ids(tk.FLAKY_API_FIELDS))
NAME_IDS = jnp.asarray(tk.ids(tk.ENTITY_NAMES))
NUM_FIELDS = len(tk.FLAKY_API_FIELDS)
NUM_NAMES = len(tk.ENTITY_NAMES)
MAX_VALUE = 99  # values are 0..99: one or two digits
RESULT_WIDTH = 2  # the longest result body: two digits


@struct.dataclass
class Service:
    """The catalogue behind both tools and the api's (traced) failure and latency settings."""

    values: jax.Array  # [NUM_NAMES, NUM_FIELDS] int32 in 0..99
    fail_prob: jax.Array  # float32, probability that an api call fails
    timeout_share: jax.Array  # float32, fraction of api failures that are timeouts
    latency: Latency  # the api's latency distribution (uniform: low..high, inclusive)
    backup: Latency  # the backup's (it never times out)


def parse(args: jax.Array, args_len: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``FIELD NAME`` -> (field index, name index, valid)."""
    field_match = args[0] == FIELD_IDS
    name_match = args[jnp.minimum(1, args.shape[0] - 1)] == NAME_IDS
    valid = (args_len == 2) & field_match.any() & name_match.any()
    return jnp.argmax(field_match), jnp.argmax(name_match), valid


def value_tokens(value: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Digit tokens of a value 0..99 (``RESULT_WIDTH`` slots) and their count."""
    tokens, length = int_to_tokens(jnp.clip(value, 0, MAX_VALUE), 2)
    return tokens[:RESULT_WIDTH], length


def _status_token(status: jax.Array) -> jax.Array:
    return jnp.where(status == TIMEOUT, tk.TIMEOUT, tk.ERROR)


def _respond(service: Service, args, args_len, status, latency, max_latency: int) -> ToolOutput:
    """The value on OK, else one ``<error>``/``<timeout>`` token; bad arguments answer at once."""
    field, name, valid = parse(args, args_len)
    status = jnp.where(valid, status, ERROR)
    latency = jnp.where(valid, jnp.clip(latency, 0, max_latency), 0)
    value, length = value_tokens(service.values[name, field])
    failure = jnp.full((RESULT_WIDTH,), tk.PAD, jnp.int32).at[0].set(_status_token(status))
    ok = status == OK
    return tool_output(
        jnp.where(ok, value, failure), jnp.where(ok, length, 1), status, RESULT_WIDTH, latency
    )


def api(
    service: Service, args: jax.Array, args_len: jax.Array, key: jax.Array, max_latency: int
) -> ToolOutput:
    """The flaky service: random latency, errors and timeouts drawn from ``key``."""
    k_fail, k_kind, k_latency = jax.random.split(key, 3)
    latency, slow = draw(k_latency, service.latency, max_latency)
    low = jnp.clip(service.latency.low, 0, max_latency)
    high = jnp.clip(service.latency.high, low, max_latency)
    failed = jax.random.uniform(k_fail) < service.fail_prob
    timed_out = failed & (jax.random.uniform(k_kind) < service.timeout_share)
    status = jnp.where(timed_out | slow, TIMEOUT, jnp.where(failed, ERROR, OK))
    latency = jnp.where(timed_out & ~slow, high, latency)
    return _respond(service, args, args_len, status, latency, max_latency)


def backup(
    service: Service, args: jax.Array, args_len: jax.Array, key: jax.Array, max_latency: int
) -> ToolOutput:
    """The reliable fallback: always answers, after a wait drawn from ``service.backup`` (by
    default the fixed ``backup_latency``)."""
    wait, _ = draw(key, service.backup.replace(timeout=0), max_latency)
    return _respond(service, args, args_len, OK, wait, max_latency)
