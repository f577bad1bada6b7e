"""FlakyAPI-v0: get a value that only a slow, unreliable API knows; retry, or fall back.

Every episode draws a fresh catalogue: a value 0..99 for each (field, name) pair, with
fields ``price`` and ``stock`` and the 16 entity names. The task asks for one of them; the
answer is never in the prompt. Two tools know it (``agentic_jax/tools/flaky_api.py``):

- ``api FIELD NAME`` answers after a random latency, by default uniform on
  ``latency_min..latency_max`` steps, or heavy-tailed (``latency_kind``: lognormal or Pareto
  of mean ``latency_mean`` and shape ``latency_shape``, ``agentic_jax.tools.latency``), with
  a cap and a timeout (the harness writes one forced ``<wait>`` per step before ``<result>``),
  and fails with
  probability ``fail_prob``: a ``timeout_share`` of failures are ``<timeout>`` after the
  full ``latency_max`` wait, the rest ``<error>``. The failure and latency draws come from
  the step key, so the same call retried can succeed.
- ``backup FIELD NAME`` always answers, but only after ``backup_latency`` waits (by default
  longer than the api's worst case; or a lognormal or Pareto wait, ``backup_latency_kind``).
  Its cost is time: a longer transcript, which counts under discounting and against the
  transcript limit.

An episode where the api works at once, and one that retries after a timeout::

    <task> price of bob ? </task>
    <call> api price bob </call> <wait> <wait> <result> 4 7 </result>
    <answer> 4 7 </answer>

    <task> stock of kim ? </task>
    <call> api stock kim </call> <wait> <wait> <wait> <wait> <result> <timeout> </result>
    <call> api stock kim </call> <wait> <wait> <wait> <result> 8 </result>
    <answer> 8 </answer>

The harness's episode statistics count ``retries`` (calls right after a failed call) and
``wasted_calls`` (calls that failed).

Oracles (``oracle_mode``): the plan is fixed at reset while failures are drawn at each
call, so every oracle plan ends with the reliable ``backup`` and succeeds on every task.
Mode 0 calls ``backup`` once and answers; mode 1 shows the retry-then-fallback pattern:
``api`` twice, then ``backup``, then the answer (its api results are ignored; any other
mode value plays mode 0). A call asking for the task's own field and name, with either
tool, is the ``useful_call`` that earns the shaped ``tool_bonus``.

Train and test tasks are disjoint: (name, field) pairs with ``(name + 3 * field) % 5 == 0``
are held out for testing (7 of the 32 pairs).

Static (shape) parameters: ``max_latency`` (the api's latency bound) and
``max_backup_latency``. Traced parameters (``FlakyParams``): ``fail_prob``,
``timeout_share``, ``latency_min``, ``latency_max``, ``backup_latency`` and the api's
latency family (``latency_kind``, ``latency_mean``, ``latency_shape``, ``latency_cap``,
``latency_timeout``) and the backup's (``backup_latency_kind``, ``backup_latency_mean``,
``backup_latency_shape``); the difficulty is the failure probability and the latencies.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.task import Task, TaskFamily, Tool, below, pack, random_words, uniform_choice
from agentic_jax.tools import flaky_api, latency
from agentic_jax.tools.flaky_api import FIELD_IDS, NAME_IDS, RESULT_WIDTH, Service

HELD_OUT_MODULUS = 5
ORACLE_API_TRIES = 2  # api calls the retry oracle (mode 1) makes before its backup call
LATENCY_LIMIT = 16  # the largest static latency bound accepted
CALL_TOKENS = 5  # <call> TOOL FIELD NAME </call>


@struct.dataclass
class FlakyParams:
    fail_prob: float = 0.5
    timeout_share: float = 0.5
    latency_min: int = 2
    latency_max: int = 4
    backup_latency: int = 8
    # The api's latency family (agentic_jax.tools.latency.KINDS: 0 uniform on
    # [latency_min, latency_max], 1 lognormal, 2 Pareto of mean latency_mean and shape
    # latency_shape), clipped to latency_cap; a wait beyond latency_timeout (> 0) times out.
    latency_kind: int = latency.UNIFORM
    latency_mean: float = 3.0
    latency_shape: float = 1.0
    latency_cap: int = LATENCY_LIMIT
    latency_timeout: int = 0
    # The backup's family: uniform (its fixed backup_latency), lognormal or Pareto of mean
    # backup_latency_mean and shape backup_latency_shape; it never times out.
    backup_latency_kind: int = latency.UNIFORM
    backup_latency_mean: float = 8.0
    backup_latency_shape: float = 1.0


@struct.dataclass
class FlakyWorld:
    service: Service
    field: jax.Array  # the field asked for
    name: jax.Array  # index into ENTITY_NAMES of the name asked about


def held_out(name: jax.Array, field: jax.Array) -> jax.Array:
    """Whether a (name, field) question belongs to the test split."""
    return (name + 3 * field) % HELD_OUT_MODULUS == 0


class FlakyAPI(TaskFamily):
    oracle_modes = (0, 1)  # 0: backup at once, 1: api, api, then backup

    def __init__(self, max_latency: int = 8, max_backup_latency: int = 12):
        bounds = {"max_latency": max_latency, "max_backup_latency": max_backup_latency}
        for label, value in bounds.items():
            if not 1 <= value <= LATENCY_LIMIT:
                raise ValueError(f"{label} must be in [1, {LATENCY_LIMIT}], got {value}")
        self.max_latency, self.max_backup_latency = max_latency, max_backup_latency
        self.tools = (
            Tool(
                "api",
                RESULT_WIDTH,
                lambda world, args, n, key: flaky_api.api(world.service, args, n, key, max_latency),
                max_latency=max_latency,
            ),
            Tool(
                "backup",
                RESULT_WIDTH,
                lambda world, args, n, key: flaky_api.backup(
                    world.service, args, n, key, max_backup_latency
                ),
                max_latency=max_backup_latency,
            ),
        )
        self.prompt_width = 6  # <task> FIELD of NAME ? </task>
        self.max_args = 2  # FIELD NAME; the harness closes the call
        self.max_answer = 2  # up to two digits; the harness closes a two-digit answer
        self.answer_mask = tk.id_mask(tk.DIGITS)
        self.arg_mask = tk.id_mask(tk.FLAKY_API_FIELDS + tk.ENTITY_NAMES)
        self.plan_width = (ORACLE_API_TRIES + 1) * CALL_TOKENS + self.max_answer + 2
        # Mode 1 at its longest: every api call times out after max_latency waits.
        api_turn = CALL_TOKENS + max_latency + RESULT_WIDTH + 2
        backup_turn = CALL_TOKENS + max_backup_latency + RESULT_WIDTH + 2
        self.default_max_len = (
            self.prompt_width + ORACLE_API_TRIES * api_turn + backup_turn + self.max_answer + 2
        )

    def default_task_params(self) -> FlakyParams:
        return FlakyParams(
            latency_min=min(2, self.max_latency),
            latency_max=min(4, self.max_latency),
            backup_latency=min(8, self.max_backup_latency),
        )

    def task_param_bounds(self) -> dict[str, tuple[float, float]]:
        return {
            "fail_prob": (0.0, 1.0),
            "timeout_share": (0.0, 1.0),
            "latency_min": (0, self.max_latency),
            "latency_max": (0, self.max_latency),
            "backup_latency": (0, self.max_backup_latency),
            "latency_kind": (0, len(latency.KINDS) - 1),
            "latency_mean": (0.0, float(self.max_latency)),
            "latency_shape": (0.01, 100.0),
            "latency_cap": (0, 2**30),
            "latency_timeout": (0, self.max_latency),
            "backup_latency_kind": (0, len(latency.KINDS) - 1),
            "backup_latency_mean": (0.0, float(self.max_backup_latency)),
            "backup_latency_shape": (0.01, 100.0),
        }

    def task_param_order(self) -> tuple[tuple[str, str], ...]:
        return (("latency_min", "latency_max"),)

    def sample(self, key, params: FlakyParams, split, oracle) -> Task:
        shape = (flaky_api.NUM_NAMES, flaky_api.NUM_FIELDS)
        words = random_words(key, field=(), name=(), values=shape)
        field = below(words["field"], flaky_api.NUM_FIELDS)
        allowed = held_out(jnp.arange(flaky_api.NUM_NAMES), field) == (split == 1)
        name = uniform_choice(words["name"], allowed)
        service = Service(
            values=below(words["values"], flaky_api.MAX_VALUE + 1),
            fail_prob=jnp.clip(jnp.asarray(params.fail_prob, jnp.float32), 0.0, 1.0),
            timeout_share=jnp.clip(jnp.asarray(params.timeout_share, jnp.float32), 0.0, 1.0),
            latency=latency.from_task_params(
                params.latency_kind,
                params.latency_min,
                params.latency_max,
                params.latency_mean,
                params.latency_shape,
                self.max_latency,
                params.latency_cap,
                params.latency_timeout,
            ),
            backup=latency.from_task_params(
                params.backup_latency_kind,
                params.backup_latency,
                params.backup_latency,
                params.backup_latency_mean,
                params.backup_latency_shape,
                self.max_backup_latency,
            ),
        )
        world = FlakyWorld(service, field, name)
        field_token, name_token = FIELD_IDS[field], NAME_IDS[name]
        prompt = jnp.array(
            [
                tk.TASK_OPEN,
                field_token,
                tk.TOKEN_ID["of"],
                name_token,
                tk.TOKEN_ID["?"],
                tk.TASK_CLOSE,
            ]
        )

        def call(tool: str) -> tuple[jax.Array, int]:
            tokens = [tk.CALL_OPEN, tk.TOKEN_ID[tool], field_token, name_token, tk.CALL_CLOSE]
            return jnp.array(tokens), CALL_TOKENS

        answer, answer_len = self.answer_tokens(world)
        retrying = oracle == 1
        api_tries = [(call("api")[0], CALL_TOKENS * retrying)] * ORACLE_API_TRIES
        plan, plan_len = pack(
            [
                *api_tries,
                call("backup"),
                (jnp.array([tk.ANSWER_OPEN]), 1),
                (answer, answer_len),
                (jnp.array([tk.ANSWER_CLOSE]), 1),
            ],
            self.plan_width,
        )
        return Task(prompt, jnp.int32(self.prompt_width), world, plan, plan_len)

    def answer_tokens(self, world: FlakyWorld) -> tuple[jax.Array, jax.Array]:
        return flaky_api.value_tokens(world.service.values[world.name, world.field])

    def verify(self, world: FlakyWorld, answer, answer_len):
        target, target_len = self.answer_tokens(world)
        index = jnp.arange(self.max_answer)
        same = jnp.all((answer[: self.max_answer] == target) | (index >= target_len))
        return (answer_len == target_len) & same

    def useful_call(self, world: FlakyWorld, tool, args, args_len):
        field, name, valid = flaky_api.parse(args, args_len)
        return valid & (field == world.field) & (name == world.name)

    def split_of(self, world: FlakyWorld):
        return held_out(world.name, world.field).astype(jnp.int32)
