"""The transcript's typed state: its phases, the harness's traced parameters, the
observation the policy sees, and the episode state ``Harness`` steps (see ``harness``)."""

from __future__ import annotations

import enum
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from agentic_jax import tokens as tk
from agentic_jax.task import Task, TaskFamily, check_task_params


class Phase(enum.IntEnum):
    """Where the transcript stands: what the next token may be."""

    PROMPT = 0  # the harness writes the (next) user message
    IDLE = 1  # between segments: the agent opens <think>, <call> or <answer>
    THINK = 2
    CALL_NAME = 3  # after <call>: the tool's name
    CALL_ARGS = 4
    ANSWER = 5
    RESULT = 6  # the harness writes <wait>s and <result> ... </result>
    DONE = 7  # the episode ended; the slot idles until it is reset
    EFFORT = 8  # after <effort>: the agent picks its effort level


def write_at(array: jax.Array, index: jax.Array, value: jax.Array) -> jax.Array:
    """``array.at[index].set(value)`` for a 1-D array, as an elementwise select: under vmap a
    scatter stays a batched scatter, while a select fuses with the ops around it."""
    return jnp.where(jnp.arange(array.shape[0]) == index, value, array)


def append_token(buffer: jax.Array, length: jax.Array, adding: jax.Array, token: jax.Array):
    """``token`` appended to ``buffer`` [W] holding ``length`` tokens, where ``adding``: the
    new (buffer, length). Past the width the last slot is overwritten (bounded)."""
    slot = jnp.where(adding, jnp.clip(length, 0, buffer.shape[0] - 1), -1)
    return write_at(buffer, slot, token), length + adding


@struct.dataclass
class HarnessParams(environment.EnvParams):
    """Traced parameters: vmap or sweep over them without recompiling."""

    max_steps_in_episode: int = 0  # unused: the transcript length ``max_len`` bounds episodes
    think_budget: int = 0  # thinking tokens allowed per episode; 0 = no <think> (instruct mode)
    tool_bonus: float = 0.0  # shaped reward for the first useful tool call of an episode
    split: int = 0  # 0: train tasks, 1: held-out test tasks
    oracle_mode: int = 0  # which oracle plan the task carries (family-specific, 0 = tool use)
    tools_enabled: bool = True  # False masks <call> out and the oracle skips its calls
    # False: all thinking comes before the first tool call (a monologue), and the oracle
    # drops the thinking it would do between calls. True: thinking may interleave with calls.
    think_between_calls: bool = True
    # Effort levels (a harness built with ``effort=True``): after the prompt the harness
    # writes ``<effort> LEVEL`` (LEVEL drawn from ``effort_probs`` over none/low/mid/high; a
    # one-hot fixes it) or, with ``agent_effort``, writes ``<effort>`` and the agent chooses
    # LEVEL as its first action. The level's ``effort_budgets`` entry is the episode's
    # thinking budget (none = 0: instruct mode). ``think_cost`` is subtracted from the reward
    # for every thinking token; ``effort_costs[level]`` once, when the agent picks that level
    # (a mode's fixed price: the overhead of entering it, whatever it then thinks).
    effort_probs: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)
    effort_budgets: tuple[int, ...] = (0, 4, 8, 16)
    effort_costs: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    agent_effort: bool = False
    # With ``agent_effort``, the oracle's level: the cheapest whose budget fits its thinking
    # (True), or one drawn from ``effort_probs`` (False: a demonstrator that picks at random,
    # for a base whose prior over levels is flat; its plan is fitted to the level drawn).
    oracle_picks_cheapest: bool = True
    think_cost: float = 0.0
    # The demonstrator's behaviour mixture, one weight per ``agentic_jax.behaviours.BEHAVIOURS``
    # entry (``envs.make`` and configs take a mapping ``{name: weight}``). All on the oracle:
    # plans unchanged. ``behaviour_noise``: the per-token slip rate of the ``noisy`` oracle.
    # Delegation (``agentic_jax.delegation``), rewards of the orchestrator's: minus
    # ``critical_path_cost`` per step until it answers (a wall-clock price: parallel
    # delegation pays less), plus ``delegation_bonus`` per sub-agent started.
    critical_path_cost: float = 0.0
    delegation_bonus: float = 0.0
    # Reward hacking's mitigations: ``abort_enabled`` makes ``<abort>`` legal where a segment
    # may open; it ends the episode unsolved with ``abort_reward`` (saying that the task
    # cannot be done honestly). ``inoculate`` writes ``<shortcut_ok>`` after the first prompt
    # (the shortcut is allowed): set it for training stages, leave it off for evaluation.
    abort_enabled: bool = False
    abort_reward: float = 0.0
    inoculate: bool = False
    # The leaky grader (a family with ``exploit``, CodeSynth's hard-coded tests): an answer
    # that passes only through the leak earns the success reward (``success`` stays the honest
    # grade). False = graded on the hidden tests alone: the hardened grader.
    exploit_pays: bool = False
    behaviour_probs: tuple[float, ...] = (1.0,) + (0.0,) * 11
    behaviour_noise: float = 0.1
    task: Any = None  # the family's difficulty parameters


@struct.dataclass
class Observation:
    """What the policy sees after each step."""

    token: jax.Array  # int32, the token just appended
    position: jax.Array  # int32, its position in the transcript
    agent_turn: jax.Array  # bool, whether the next token is the agent's to choose
    legal_mask: jax.Array  # [V] bool, legal next tokens (the forced one when not the agent's turn)


class ObservationSpace(spaces.Dict):
    """The space of ``Observation``s: ``sample`` returns one, with the dtypes the harness
    writes (int32 token and position, bool turn and mask), and ``contains`` reads its fields.
    (gymnax's Gym wrapper converts it to a gymnasium ``Dict``, whose ``contains`` wants a
    plain dict: flatten the observation first, ``agentic_jax.wrappers.FlattenObservation``.)"""

    def __init__(self, vocab_size: int, max_len: int):
        super().__init__(
            {
                "token": spaces.Discrete(vocab_size),
                "position": spaces.Discrete(max_len),
                "agent_turn": spaces.Box(0, 1, (), jnp.bool_),
                "legal_mask": spaces.Box(0, 1, (vocab_size,), jnp.bool_),
            }
        )

    def sample(self, key: jax.Array) -> Observation:
        return Observation(**super().sample(key))


@struct.dataclass
class HarnessState(environment.EnvState):
    task: Task
    transcript: jax.Array  # [T] int32
    agent_written: jax.Array  # [T] bool
    length: jax.Array  # int32, tokens written so far
    phase: jax.Array  # int32
    queue: jax.Array  # [F] int32 forced tokens waiting to be written
    queue_len: jax.Array
    queue_pos: jax.Array
    tool: jax.Array  # int32 index into the family's tools
    args: jax.Array  # [C] int32
    args_len: jax.Array
    answer: jax.Array  # [A] int32
    answer_len: jax.Array
    turn: jax.Array  # int32, the current user turn (0-based; multi-turn families)
    plan_pos: jax.Array  # oracle plan tokens written so far (agent tokens and forced closings)
    think_tokens: jax.Array
    think_budget: jax.Array  # int32, this episode's thinking budget (its effort level's)
    effort: jax.Array  # int32, the effort level (index into EFFORT_LEVELS); -1 none yet
    tool_calls: jax.Array
    tool_errors: jax.Array
    hacks: jax.Array  # leaky tool calls plus answers that pass only through a leak
    aborted: jax.Array  # bool, the agent ended the episode with <abort>
    impossible: jax.Array  # bool, the task has no honest solution (``TaskFamily.impossible``)
    cheated: jax.Array  # bool, solved although impossible: a cheat by construction
    retries: jax.Array  # tool calls made right after a failed call (status not OK)
    last_failed: jax.Array  # bool, the episode's latest tool call failed
    bonus_given: jax.Array  # bool
    success: jax.Array  # bool
    invalid: jax.Array  # bool
    terminated: jax.Array  # bool, this step ended the episode with an answer or invalid token
    truncated: jax.Array  # bool, this step filled the transcript


def not_a_token(action) -> jax.Array:
    """Whether an action is outside the vocabulary: negative, ``>= VOCAB_SIZE``, or a float
    that is not a whole number."""
    action = jnp.asarray(action)
    outside = (action < 0) | (action >= tk.VOCAB_SIZE)
    if jnp.issubdtype(action.dtype, jnp.floating):
        outside = outside | (action != jnp.floor(action))
    return outside


def check_harness_params(params: HarnessParams, family: TaskFamily) -> None:
    """Refuse parameters outside their valid ranges (ValueError naming the parameter, the
    value and the range): ``split`` 0 or 1, ``oracle_mode`` one of the family's, budgets
    not negative, effort probabilities a distribution, and the family's own
    difficulty bounds (``TaskFamily.task_param_bounds``). Concrete values only."""
    values = {
        "split": (params.split, 0, 1),
        "think_budget": (params.think_budget, 0, np.inf),
        "effort_budgets": (params.effort_budgets, 0, np.inf),
        "effort_probs": (params.effort_probs, 0.0, 1.0),
        "effort_costs": (params.effort_costs, 0.0, np.inf),
        "behaviour_probs": (params.behaviour_probs, 0.0, np.inf),
        "behaviour_noise": (params.behaviour_noise, 0.0, 1.0),
    }
    for name, (value, low, high) in values.items():
        if isinstance(value, jax.core.Tracer):
            continue
        value = np.asarray(value)
        outside = value[(value < low) | (value > high)]
        if outside.size:
            raise ValueError(
                f"{name}={outside.flat[0].item()!r} is outside its valid range [{low}, {high}]"
            )
    modes = np.asarray(params.oracle_mode)
    if not isinstance(params.oracle_mode, jax.core.Tracer) and not np.all(
        np.isin(modes, family.oracle_modes)
    ):
        raise ValueError(
            f"oracle_mode={modes.flat[0].item()!r} is not one of this environment's oracle "
            f"plans {list(family.oracle_modes)}"
        )
    for name in ("effort_probs", "behaviour_probs"):
        probs = getattr(params, name)
        if not isinstance(probs, jax.core.Tracer) and not np.all(np.sum(probs, axis=-1) > 0):
            raise ValueError(f"{name}={list(np.asarray(probs))} sum to 0; give some weight")
    check_task_params(family, params.task)
