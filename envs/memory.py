"""Memory-v0: remember facts across many turns, beyond the policy's attention window.

An episode is a conversation of several user turns. The first ``num_facts`` turns each state
one fact (``NAME ATTRIBUTE VALUE``, distinct (name, attribute) keys); then come
``num_fillers`` turns of noise (six random digits); the last turn asks for the value of one
of the facts. Every turn but the last is acknowledged with ``<answer> ok </answer>`` (any
answer is accepted there and nothing is verified); only the last turn's answer is graded.
The asked value is never in the question: it was said turns earlier. A policy whose
attention window (``model.attention_window``) is shorter than that distance cannot attend
back to it; the ``write`` / ``read`` tools keep it in a key-value memory that lives in the
episode's world (``agentic_jax.tools.memory``).

    <task> bob hat red </task>
    <call> write bob hat red </call> <result> ok </result> <answer> ok </answer>
    <task> ivy car teal </task>
    <call> write ivy car teal </call> <result> ok </result> <answer> ok </answer>
    <task> 3 1 4 1 5 9 </task> <answer> ok </answer>
    <task> 2 6 5 3 5 8 </task> <answer> ok </answer>
    <task> hat of bob ? </task>
    <call> read bob hat </call> <result> red </result>
    <answer> red </answer>

Distance: the asked fact sits at a random one of the fact turns; the oracle's transcript
spends 17 tokens on a fact turn and 11 on a filler turn, so the question comes at least
``11 * num_fillers + 6`` tokens after the fact. A stack of L layers with window w reaches
back ``L * (w - 1)`` positions, so pick ``num_fillers`` with that in mind.

Oracles: ``oracle_mode`` 0 writes each fact when it arrives, reads the asked key at the end
and answers; 1 uses no tools and answers from the transcript (what a full-attention policy
can do; with a short window it cannot).

Train and test tasks are disjoint: questions about (name, attribute) pairs with
``(3 * name + attribute) % 5 == 0`` are held out for testing (the other facts of an episode
are distractors and may use any pair).

Static (shape) parameters: ``max_facts``, ``max_fillers``, ``memory_slots`` (>= max_facts).
Traced parameters (``MemoryParams``): ``num_facts``, ``num_fillers``.
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
    below,
    pack,
    random_order,
    random_words,
    uniform_choice,
)
from agentic_jax.tools import memory
from agentic_jax.tools.kb_search import ATTRIBUTE_IDS, NAME_IDS, VALUE_IDS

NUM_NAMES = len(tk.ENTITY_NAMES)
NUM_ATTRIBUTES = len(tk.ATTRIBUTES)
NUM_VALUES = len(tk.VALUES)
HELD_OUT_MODULUS = 5
KEY_WIDTH = 2  # a key is NAME ATTRIBUTE
FILLER_LEN = 6  # digits in a filler turn
MAX_FACTS = 8
MAX_FILLERS = 32
OK = tk.TOKEN_ID["ok"]
OF, QUESTION = tk.TOKEN_ID["of"], tk.TOKEN_ID["?"]
WRITE, READ = tk.TOKEN_ID["write"], tk.TOKEN_ID["read"]


@struct.dataclass
class MemoryParams:
    num_facts: int = 2
    num_fillers: int = 4


@struct.dataclass
class MemoryWorld:
    memory: memory.Memory  # the agent's key-value memory: mutable episode state
    facts: jax.Array  # [F, 3] int32 tokens: name, attribute, value of each fact
    asked: jax.Array  # int32, the fact the last turn asks about
    num_facts: jax.Array
    num_fillers: jax.Array
    messages: jax.Array  # [N, P] int32, the user message of every turn
    message_lens: jax.Array  # [N] int32


def held_out(name_index: jax.Array, attribute: jax.Array) -> jax.Array:
    """Whether a question about (name, attribute) belongs to the test split."""
    return (3 * name_index + attribute) % HELD_OUT_MODULUS == 0


def _write_tool(world: MemoryWorld, args, args_len, key):
    out, updated = memory.write(world.memory, args, args_len)
    return out.replace(world=world.replace(memory=updated))


def _read_tool(world: MemoryWorld, args, args_len, key):
    return memory.read(world.memory, args, args_len)


class Memory(TaskFamily):
    oracle_modes = (0, 1)  # 0: write and read memory, 1: no tools (full attention only)

    def __init__(self, max_facts: int = 4, max_fillers: int = 8, memory_slots: int = 4):
        if not 1 <= max_facts <= MAX_FACTS:
            raise ValueError(f"max_facts must be in [1, {MAX_FACTS}], got {max_facts}")
        if not 0 <= max_fillers <= MAX_FILLERS:
            raise ValueError(f"max_fillers must be in [0, {MAX_FILLERS}], got {max_fillers}")
        if not max_facts <= memory_slots <= 4 * MAX_FACTS:
            raise ValueError(
                f"memory_slots must be in [max_facts={max_facts}, {4 * MAX_FACTS}] (room for "
                f"every fact), got {memory_slots}"
            )
        self.max_facts, self.max_fillers, self.memory_slots = max_facts, max_fillers, memory_slots
        self.num_turns = max_facts + max_fillers + 1
        self.tools = (
            Tool("write", memory.RESULT_WIDTH, _write_tool),
            Tool("read", memory.RESULT_WIDTH, _read_tool),
        )
        self.prompt_width = FILLER_LEN + 2  # <task> d d d d d d </task>
        # Fact turn: <call> write N A V </call> <answer> ok </answer>; filler: <answer> ok
        # </answer>; question: <call> read N A </call> <answer> V </answer>.
        self.plan_width = 9 * max_facts + 3 * max_fillers + 8
        self.max_args = KEY_WIDTH + 1  # write N A V; the harness closes the call
        self.max_answer = 1  # "ok" or a value; the harness closes the answer
        self.answer_mask = tk.id_mask(tk.VALUES + ("ok",))
        self.arg_mask = tk.id_mask(tk.ENTITY_NAMES + tk.ATTRIBUTES + tk.VALUES)
        # Oracle turns: fact 5 + 6 + 3 + 3, filler 8 + 3, question 6 + 5 + 3 + 3 tokens.
        self.default_max_len = 17 * max_facts + 11 * max_fillers + 17

    def default_task_params(self) -> MemoryParams:
        return MemoryParams(num_facts=min(2, self.max_facts), num_fillers=min(4, self.max_fillers))

    def task_param_bounds(self) -> dict[str, tuple[float, float]]:
        return {"num_facts": (1, self.max_facts), "num_fillers": (0, self.max_fillers)}

    def sample(self, key, params: MemoryParams, split, oracle) -> Task:
        words = random_words(
            key,
            pair=(),
            order=(NUM_NAMES * NUM_ATTRIBUTES,),
            slot=(),
            values=(self.max_facts,),
            fillers=(max(self.max_fillers, 1), FILLER_LEN),
        )
        num_facts = jnp.clip(params.num_facts, 1, self.max_facts).astype(jnp.int32)
        num_fillers = jnp.clip(params.num_fillers, 0, self.max_fillers).astype(jnp.int32)
        # The asked (name, attribute) pair from the split, the others distinct and random.
        pairs = jnp.arange(NUM_NAMES * NUM_ATTRIBUTES)
        allowed = held_out(pairs // NUM_ATTRIBUTES, pairs % NUM_ATTRIBUTES) == (split == 1)
        pair = uniform_choice(words["pair"], allowed)
        chosen = random_order(words["order"], first=pair)[: self.max_facts]
        asked = below(words["slot"], num_facts)
        chosen = chosen.at[0].set(chosen[asked]).at[asked].set(pair)
        values = below(words["values"], NUM_VALUES)
        facts = jnp.stack(
            [
                NAME_IDS[chosen // NUM_ATTRIBUTES],
                ATTRIBUTE_IDS[chosen % NUM_ATTRIBUTES],
                VALUE_IDS[values],
            ],
            axis=1,
        ).astype(jnp.int32)
        fillers = jnp.asarray(tk.DIGIT_IDS)[below(words["fillers"], 10)]
        name, attribute = facts[asked, 0], facts[asked, 1]

        # Every turn's message and the oracle's tokens for it.
        turn = jnp.arange(self.num_turns)
        fact = facts[jnp.clip(turn, 0, self.max_facts - 1)]  # [N, 3]
        filler = fillers[jnp.clip(turn - num_facts, 0, fillers.shape[0] - 1)]  # [N, 6]
        is_fact = turn < num_facts
        is_question = turn == num_facts + num_fillers
        pad = jnp.full((self.num_turns, self.prompt_width), tk.PAD, jnp.int32)
        task_open = jnp.full((self.num_turns, 1), tk.TASK_OPEN, jnp.int32)
        task_close = jnp.full((self.num_turns, 1), tk.TASK_CLOSE, jnp.int32)
        fact_msg = pad.at[:, :5].set(jnp.concatenate([task_open, fact, task_close], axis=1))
        filler_msg = jnp.concatenate([task_open, filler, task_close], axis=1)
        question = jnp.array([tk.TASK_OPEN, attribute, OF, name, QUESTION, tk.TASK_CLOSE])
        question_msg = pad.at[:, :6].set(question)
        messages = jnp.where(
            is_fact[:, None], fact_msg, jnp.where(is_question[:, None], question_msg, filler_msg)
        ).astype(jnp.int32)
        message_lens = jnp.where(is_fact, 5, jnp.where(is_question, 6, self.prompt_width))
        world = MemoryWorld(
            memory=memory.empty(self.memory_slots, KEY_WIDTH),
            facts=facts,
            asked=asked,
            num_facts=num_facts,
            num_fillers=num_fillers,
            messages=messages,
            message_lens=message_lens.astype(jnp.int32),
        )
        return Task(messages[0], message_lens[0], world, *self.oracle_plan(world, oracle))

    def oracle_plan(self, world: MemoryWorld, oracle) -> tuple[jax.Array, jax.Array]:
        """The oracle's agent tokens, turn by turn (forced closings included)."""
        use_tools = oracle == 0
        ack = jnp.array([tk.ANSWER_OPEN, OK, tk.ANSWER_CLOSE])
        pieces = []
        for turn in range(self.num_turns):
            is_fact = turn < world.num_facts
            is_question = turn == world.num_facts + world.num_fillers
            in_episode = turn <= world.num_facts + world.num_fillers
            name, attribute, value = world.facts[min(turn, self.max_facts - 1)]
            write = jnp.array([tk.CALL_OPEN, WRITE, name, attribute, value, tk.CALL_CLOSE])
            pieces.append((write, jnp.where(is_fact & use_tools, 6, 0)))
            pieces.append((ack, jnp.where(in_episode & ~is_question, 3, 0)))
        name, attribute, value = world.facts[world.asked]
        read = jnp.array([tk.CALL_OPEN, READ, name, attribute, tk.CALL_CLOSE])
        pieces.append((read, jnp.where(use_tools, 5, 0)))
        pieces.append((jnp.array([tk.ANSWER_OPEN, value, tk.ANSWER_CLOSE]), 3))
        return pack(pieces, self.plan_width)

    def turns(self, world: MemoryWorld) -> jax.Array:
        return world.num_facts + world.num_fillers + 1

    def next_turn(self, world: MemoryWorld, turn) -> tuple[jax.Array, jax.Array]:
        turn = jnp.clip(turn, 0, self.num_turns - 1)
        return world.messages[turn], world.message_lens[turn]

    def verify(self, world: MemoryWorld, answer, answer_len):
        return (answer_len == 1) & (answer[0] == world.facts[world.asked, 2])

    def useful_call(self, world: MemoryWorld, tool, args, args_len):
        """A ``write`` of the fact the last turn will ask about (name, attribute and value)."""
        return (tool == 0) & (args_len == 3) & jnp.all(args[:3] == world.facts[world.asked])

    def split_of(self, world: MemoryWorld):
        name, attribute, _ = world.facts[world.asked]
        name_index = jnp.argmax(NAME_IDS == name)
        attribute_index = jnp.argmax(ATTRIBUTE_IDS == attribute)
        return held_out(name_index, attribute_index).astype(jnp.int32)
