"""KBGather-v0: one attribute of several entities of a fresh knowledge base, each needing its
own ``search``: independent sub-tasks whose raw results outgrow a small attention window.

Every episode draws a fresh knowledge base as KBLookup-v0 does (``num_entities`` entities,
``num_attributes`` attributes each, two relations). The question names one attribute and
``num_queried`` distinct entities; the answer lists the attribute's value for each, in the
question's order. Nothing of the answer is in the prompt: each value is read out of that
entity's ``search`` result, about a dozen tokens long, so the whole transcript holds
``num_queried`` results where the answer needs one word of each::

    <task> hat of bob eve kim ? </task>
    <call> search bob </call> <result> friend eve boss kim hat red coat blue </result>
    <call> search eve </call> <result> friend kim boss bob hat gold coat teal </result>
    <call> search kim </call> <result> friend bob boss eve hat red coat pink </result>
    <answer> red gold red </answer>

A single agent whose attention window is shorter than the transcript no longer sees the
first results when it answers, unless it keeps notes (``<think>`` is allowed, within
``think_budget``). The task splits into sub-tasks that KBLookup-v0 asks one at a time
(``hat of bob ?``): the task family for an orchestrator that delegates them.

Train and test tasks are disjoint: a task is held out for testing when its first queried
(name, attribute) pair is (KBLookup's rule: ``(name + 2 * attribute) % 5 == 0``).

Delegation (``sub_agents`` > 0, ``agentic_jax.delegation``): the asker may also
``delegate`` sub-tasks, each written as an attribute and a name (``hat bob``, several in one
call run in parallel); each runs as a sub-agent episode in its own context, whose prompt is
the sub-task as written and whose only tool is ``search``; the sub-agents' answers come back
as the call's result, one token each (``<error>`` for one that did not answer)::

    <task> hat of bob eve kim ? </task>
    <call> delegate hat bob hat eve hat kim </call> <result> red gold red </result>
    <answer> red gold red </answer>

    <subagent> <task> hat bob </task>
    <call> search bob </call> <result> friend eve boss kim hat red coat blue </result>
    <answer> red </answer>

Oracle plans (``oracle_mode``): 0 searches every entity itself (the single agent's plan); with
delegation, 1 delegates every sub-task in one call (parallel), 2 one per call (sequential),
and 3 draws one of these three per episode with weights ``plan_probs`` (a pretraining
corpus of mixed habits, for a base whose way of working RL then selects).
A sub-agent's own plan searches its entity and answers its value; its verifier knows that
value (a sub-agent's own verifiable reward), and a malformed sub-task (no attribute of the
knowledge base first, or no entity of it second) has no right answer.

Static (shape) parameters: ``max_entities``, ``max_attributes``, ``max_queried``,
``sub_agents`` (sub-agent slots per episode; 0 = no delegation) and ``subagent_max_len``
(a sub-agent's transcript bound). Traced parameters (``GatherParams``): ``num_entities``,
``num_attributes``, ``num_queried``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import task as draw  # a sampler's one-draw helpers
from agentic_jax import tokens as tk
from agentic_jax.task import Limits, Task, TaskFamily, Tool, pack
from agentic_jax.tools import kb_search
from agentic_jax.tools.base import OK, ToolOutput, tool_output
from agentic_jax.tools.kb_search import ATTRIBUTE_IDS, NAME_IDS, VALUE_IDS

from .kblookup import NUM_NAMES, NUM_RELATIONS, held_out, knowledge_base

SEARCH, DELEGATE = tk.TOKEN_ID["search"], tk.TOKEN_ID["delegate"]
MAIN, SUBAGENT = 0, 1  # ``GatherWorld.role``: the asker (a single agent or an orchestrator)


@struct.dataclass
class GatherParams:
    num_entities: int = 8
    num_attributes: int = 4
    num_queried: int = 3
    # oracle_mode 3 (with delegation): each episode's plan drawn with these weights from
    # (single agent, parallel delegation, sequential delegation): a corpus of mixed habits.
    plan_probs: tuple[float, float, float] = (1.0, 1.0, 1.0)


@struct.dataclass
class GatherWorld:
    kb: kb_search.KnowledgeBase
    attribute: jax.Array  # the attribute asked for
    queried: jax.Array  # [max_queried] entity indices, in the question's order
    num_queried: jax.Array  # a sub-agent's: 1, or 0 for a malformed sub-task (no right answer)
    role: jax.Array  # MAIN or SUBAGENT


class KBGather(TaskFamily):
    subtask_width = 2  # a delegated sub-task: ATTRIBUTE NAME
    subtask_answer_width = 1  # a sub-agent's answer: one value

    def __init__(
        self,
        max_entities: int = 8,
        max_attributes: int = 6,
        max_queried: int = 4,
        sub_agents: int = 0,
        subagent_max_len: int = 0,
    ):
        if not 2 <= max_entities <= NUM_NAMES:
            raise ValueError(f"max_entities must be in [2, {NUM_NAMES}], got {max_entities}")
        if not 1 <= max_attributes <= len(tk.ATTRIBUTES):
            raise ValueError(
                f"max_attributes must be in [1, {len(tk.ATTRIBUTES)}], got {max_attributes}"
            )
        if not 1 <= max_queried <= max_entities:
            raise ValueError(
                f"max_queried must be in [1, max_entities={max_entities}], got {max_queried}"
            )
        if sub_agents < 0:
            raise ValueError(f"sub_agents must be >= 0 (0 = no delegation), got {sub_agents}")
        if subagent_max_len < 0:
            raise ValueError(
                f"subagent_max_len must be >= 0 (0 = room for one search), got {subagent_max_len}"
            )
        self.max_entities, self.max_attributes, self.max_queried = (
            max_entities,
            max_attributes,
            max_queried,
        )
        width = kb_search.result_width(max_attributes)
        self.tools = (Tool("search", width, self._search),)
        self.prompt_width = max_queried + 5  # <task> ATTR of NAME ... ? </task>
        self.plan_width = 5 * max_queried + 2  # a 4-token search per entity, then the answer
        self.max_answer = max_queried
        self.answer_mask = tk.id_mask(tk.VALUES)
        self.max_args = 1  # one entity name; the harness closes the call
        self.arg_mask = tk.id_mask(tk.ENTITY_NAMES)
        self.default_max_len = self.prompt_width + max_queried * (4 + width + 2) + max_queried + 3
        self.sub_agents = sub_agents
        # <subagent> <task> ATTR NAME </task>, a search, its result, a one-value answer.
        self.subagent_max_len = subagent_max_len or 5 + 4 + width + 2 + 3
        if sub_agents:
            self.oracle_modes = (0, 1, 2, 3)
            self.tools += (
                Tool("delegate", sub_agents * self.subtask_answer_width, self._delegate),
            )
            self.max_args = self.subtask_width * max_queried
            self.arg_mask = self.arg_mask | tk.id_mask(tk.ATTRIBUTES)
            self.plan_width = 6 * max_queried + 2  # one 5-token call per entity, the answer
            self.default_max_len = max(
                self.default_max_len, self.prompt_width + max_queried * 8 + max_queried + 3
            )
            if self.subagent_max_len > self.default_max_len:
                raise ValueError(
                    f"subagent_max_len={self.subagent_max_len} exceeds the asker's transcript "
                    f"bound {self.default_max_len}"
                )

    def default_task_params(self) -> GatherParams:
        return GatherParams(
            num_entities=min(8, self.max_entities),
            num_attributes=min(4, self.max_attributes),
            num_queried=min(3, self.max_queried, self.max_entities),
        )

    def task_param_bounds(self) -> dict[str, tuple[float, float]]:
        return {
            "num_entities": (2, self.max_entities),
            "num_attributes": (1, self.max_attributes),
            "num_queried": (1, self.max_queried),
            "plan_probs": (0.0, 1.0e9),
        }

    def task_param_order(self) -> tuple[tuple[str, str], ...]:
        return (("num_queried", "num_entities"),)

    def sample(self, key, params: GatherParams, split, oracle) -> Task:
        n, q = self.max_entities, self.max_queried
        plan_word = {"plan": ()} if self.sub_agents else {}  # (other families' draws unchanged)
        words = draw.random_words(
            key,
            attribute=(),
            name=(),
            order=(NUM_NAMES,),
            slots=(n,),
            values=(n, self.max_attributes),
            offsets=(n, NUM_RELATIONS),
            **plan_word,
        )
        num_entities = jnp.clip(params.num_entities, 2, n)
        num_attributes = jnp.clip(params.num_attributes, 1, self.max_attributes)
        num_queried = jnp.clip(params.num_queried, 1, jnp.minimum(q, num_entities))
        attribute = draw.below(words["attribute"], num_attributes)
        # The first queried name decides the split; the knowledge base holds it and others.
        allowed = held_out(jnp.arange(NUM_NAMES), attribute) == (split == 1)
        name = draw.uniform_choice(words["name"], allowed)
        names = draw.random_order(words["order"], first=name)[:n]
        # The queried entities: distinct slots in use, in random order (unused slots sort last).
        keys = words["slots"] >> 1
        keys = jnp.where(jnp.arange(n) < num_entities, keys, jnp.uint32(0xFFFFFFFF))
        queried = draw.stable_argsort(keys)[:q]
        # Move name 0 (the split's) to the first queried slot.
        first = queried[0]
        names = names.at[0].set(names[first]).at[first].set(name)
        kb = knowledge_base(words, names, num_entities, num_attributes)
        active = jnp.arange(q) < num_queried
        queried = jnp.where(active, queried, 0)
        world = GatherWorld(kb, attribute, queried, num_queried, jnp.int32(MAIN))
        queried_names = jnp.where(active, kb.names[queried], tk.PAD)
        prompt, prompt_len = pack(
            [
                (jnp.array([tk.TASK_OPEN, ATTRIBUTE_IDS[attribute], tk.TOKEN_ID["of"]]), 3),
                (queried_names, num_queried),
                (jnp.array([tk.TOKEN_ID["?"], tk.TASK_CLOSE]), 2),
            ],
            self.prompt_width,
        )
        searches = jnp.stack(
            [
                jnp.full(q, tk.CALL_OPEN),
                jnp.full(q, SEARCH),
                queried_names,
                jnp.full(q, tk.CALL_CLOSE),
            ],
            axis=1,
        ).reshape(-1)
        answer = [(tk.ANSWER_OPEN, 1), (self.answers(world), num_queried), (tk.ANSWER_CLOSE, 1)]
        plan, plan_len = pack([(searches, 4 * num_queried), *answer], self.plan_width)
        if self.sub_agents:
            drawn = draw.weighted_choice(words["plan"], jnp.asarray(params.plan_probs))
            oracle = jnp.where(oracle == 3, drawn, oracle)
            plan, plan_len = self._delegating_plan(world, queried_names, oracle, plan, plan_len)
        return Task(prompt, prompt_len, world, plan, plan_len)

    def _delegating_plan(self, world, queried_names, oracle, plan, plan_len):
        """Oracle plans 1 (every sub-task in one ``delegate`` call) and 2 (one call each)."""
        q, num_queried = self.max_queried, world.num_queried
        attribute = jnp.full(q, ATTRIBUTE_IDS[world.attribute])
        subtasks = jnp.stack([attribute, queried_names], axis=1).reshape(-1)
        answer = [(tk.ANSWER_OPEN, 1), (self.answers(world), num_queried), (tk.ANSWER_CLOSE, 1)]
        parallel, parallel_len = pack(
            [
                (jnp.array([tk.CALL_OPEN, DELEGATE]), 2),
                (subtasks, 2 * num_queried),
                (tk.CALL_CLOSE, 1),
                *answer,
            ],
            self.plan_width,
        )
        calls = jnp.stack(
            [
                jnp.full(q, tk.CALL_OPEN),
                jnp.full(q, DELEGATE),
                attribute,
                queried_names,
                jnp.full(q, tk.CALL_CLOSE),
            ],
            axis=1,
        ).reshape(-1)
        serial, serial_len = pack([(calls, 5 * num_queried), *answer], self.plan_width)
        plan = jnp.select([oracle == 1, oracle == 2], [parallel, serial], plan)
        plan_len = jnp.select([oracle == 1, oracle == 2], [parallel_len, serial_len], plan_len)
        return plan, plan_len.astype(jnp.int32)

    def subtask(self, world: GatherWorld, written: jax.Array) -> Task:
        """The sub-agent episode a ``delegate`` call starts for the sub-task ``written``
        [subtask_width] (``ATTRIBUTE NAME`` as the orchestrator wrote it)."""
        attribute_match = ATTRIBUTE_IDS == written[0]
        attribute = jnp.argmax(attribute_match).astype(jnp.int32)
        entity, found = kb_search.lookup(world.kb, written[1])
        valid = attribute_match.any() & (attribute < world.kb.num_attributes) & found
        queried = jnp.zeros(self.max_queried, jnp.int32).at[0].set(entity)
        sub_world = GatherWorld(
            world.kb, attribute, queried, valid.astype(jnp.int32), jnp.int32(SUBAGENT)
        )
        prompt, prompt_len = pack(
            [
                (jnp.array([tk.SUBAGENT, tk.TASK_OPEN]), 2),
                (written, self.subtask_width),
                (tk.TASK_CLOSE, 1),
            ],
            self.prompt_width,
        )
        value = VALUE_IDS[world.kb.values[entity, attribute]]
        plan, plan_len = pack(
            [
                (jnp.array([tk.CALL_OPEN, SEARCH, written[1], tk.CALL_CLOSE]), 4 * valid),
                (jnp.array([tk.ANSWER_OPEN, value, tk.ANSWER_CLOSE]), 3),
            ],
            self.plan_width,
        )
        return Task(prompt, prompt_len, sub_world, plan, plan_len)

    def _delegate(self, world: GatherWorld, args, args_len, key) -> ToolOutput:
        """Stands for the ``delegate`` tool in the harness's tool switch: its result is
        written by ``agentic_jax.delegation.DelegatingHarness`` when the sub-agents answer."""
        del world, args, args_len, key
        width = self.sub_agents * self.subtask_answer_width
        return tool_output(jnp.zeros(width, jnp.int32), 0, OK, width)

    def limits(self, world: GatherWorld) -> Limits | None:
        """With delegation: the asker may ``search`` and ``delegate`` (arguments: names and
        attributes); a sub-agent only ``search``es one name and answers one value."""
        if not self.sub_agents:
            return None
        sub = world.role == SUBAGENT
        names = jnp.asarray(tk.id_mask(tk.ENTITY_NAMES))
        return Limits(
            tool_mask=jnp.where(
                sub,
                jnp.asarray(tk.id_mask(["search"])),
                jnp.asarray(tk.id_mask(["search", "delegate"])),
            ),
            arg_mask=jnp.where(sub, names, jnp.asarray(self.arg_mask)),
            answer_mask=jnp.asarray(self.answer_mask),
            max_args=jnp.where(sub, 1, self.max_args),
            max_answer=jnp.where(sub, self.subtask_answer_width, self.max_answer),
        )

    def _search(self, world: GatherWorld, args, args_len, key):
        del key
        return kb_search.search(world.kb, args, args_len)

    def answers(self, world: GatherWorld) -> jax.Array:
        """The right answer's value tokens [max_queried] (padding past ``num_queried``)."""
        values = VALUE_IDS[world.kb.values[world.queried, world.attribute]]
        return jnp.where(jnp.arange(self.max_queried) < world.num_queried, values, tk.PAD)

    def verify(self, world: GatherWorld, answer, answer_len):
        within = jnp.arange(self.max_queried) < world.num_queried
        right = (answer[: self.max_queried] == self.answers(world)) | ~within
        return (answer_len == world.num_queried) & jnp.all(right) & (world.num_queried > 0)

    def useful_call(self, world: GatherWorld, tool, args, args_len):
        within = jnp.arange(self.max_queried) < world.num_queried
        asked = (world.kb.names[world.queried] == args[0]) & within
        return (tool == 0) & (args_len == 1) & asked.any()  # a search of an entity asked for

    def split_of(self, world: GatherWorld):
        name_index = jnp.argmax(NAME_IDS == world.kb.names[world.queried[0]])
        return held_out(name_index, world.attribute).astype(jnp.int32)
