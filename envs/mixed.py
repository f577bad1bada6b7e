"""Mixed-v0: a mixture over the other environments, for multi-task training.

Each episode first draws a task type from the normalised mixture weights, then a task of that
type from its environment's own generator. The prompt is that task's prompt with a task-type
token right after ``<task>`` (``kb math flaky web code mem``, one per environment), so a
policy can tell the types apart from the first token on; the tools, the verifier and the
oracle are the type's own::

    <task> kb hat of bob ? </task>
    <call> search bob </call> <result> friend eve boss kim hat red coat blue </result>
    <answer> red </answer>

    <task> math 3 7 * 4 8 = ? </task>
    <call> calc 3 7 * 4 8 </call> <result> 1 7 7 6 </result>
    <answer> 1 7 7 6 </answer>

Which environments: the static argument ``include``, comma-separated ids (a YAML config sets
it as an env override: ``overrides: {include: "KBLookup-v0,Arithmetic-v0"}``). The default
is every environment but ``Memory-v0``: its many-turn transcripts (``default_max_len`` 173
against 89 for the longest other one, CodeSynth) would double the mixture's transcript
limit, and in ``episodes`` batching every slot runs to that limit. Include it by name.
Sub-environments are built with their default (leak-free) constructors.

Grammar: each sub-task keeps exactly its own environment's legal tokens and budgets: the
family's ``limits`` hook gives the harness the type's tool names, argument and answer masks
and ``max_args``/``max_answer`` (where the harness auto-closes ``</call>`` and
``</answer>``), so a sub-task's transcript is its environment's, plus the type token. The
static masks and budgets (``arg_mask``, ``max_args``, ...) are the union/maximum over the
included families and only size the arrays. The tools are the union of the families' tools
by name; a call runs the current type's tool of that name on the type's own world (a tool
that updates its world, Memory's ``write``, updates that entry of the mixture's world).
Every tool's result width is the widest of all the families' tools (the harness's
``lax.switch`` over tools needs one shape); a tool's latency bound is the largest among the
families that have it. The
thinking budget is one harness parameter for all types: by default the largest family
default (Arithmetic's scratchpad, 21 tokens), so a task of any type may think.

Multi-turn (Memory included): later turns' messages are the type's own, without a type
token (the type is named once, in the first message).

Oracle: every type plays its own ``oracle_mode`` 0 plan (tool use); ``verify``,
``useful_call``, ``leaky_call``, ``exploit``, ``split_of``, ``turns`` and ``next_turn``
are the type's. Under ``vmap`` every included family's generator runs at reset and every
family's verifier at every step (``lax.switch`` runs all branches when batched), so a step
costs about the sum of the included environments' steps.

Train and test tasks are disjoint: a task's split is its sub-task's split (every
sub-family samples from the requested split).

Static (shape) parameter: ``include``. Traced parameters (``MixedParams``): one mixture
weight per environment (``kblookup_weight``, ``arithmetic_weight``, ``flakyapi_weight``,
``webnav_weight``, ``codesynth_weight``, ``memory_weight``; weights of excluded
environments are ignored, negative ones count as 0, all 0 means uniform), and each
environment's own difficulty parameters nested under its short name (``kblookup``:
``KBParams``, ..., ``memory``: ``MemoryParams``), e.g.
``params.replace(task=params.task.replace(kblookup=KBParams(hops=2)))``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.task import Limits, Task, TaskFamily, Tool, pack, weighted_choice
from agentic_jax.tools.base import ERROR, tool_output

from .arithmetic import Arithmetic, ArithmeticParams
from .codesynth import CodeParams, CodeSynth
from .flakyapi import FlakyAPI, FlakyParams
from .kblookup import KBLookup, KBParams
from .memory import Memory, MemoryParams
from .webnav import WebNav, WebNavParams

# Environment id: (family, short name of its MixedParams fields, task-type token).
FAMILIES = {
    "KBLookup-v0": (KBLookup, "kblookup", "kb"),
    "Arithmetic-v0": (Arithmetic, "arithmetic", "math"),
    "FlakyAPI-v0": (FlakyAPI, "flakyapi", "flaky"),
    "WebNav-v0": (WebNav, "webnav", "web"),
    "CodeSynth-v0": (CodeSynth, "codesynth", "code"),
    "Memory-v0": (Memory, "memory", "mem"),
}
DEFAULT_INCLUDE = "KBLookup-v0,Arithmetic-v0,FlakyAPI-v0,WebNav-v0,CodeSynth-v0"


@struct.dataclass
class MixedParams:
    """Mixture weights (normalised over the included environments) and their difficulties."""

    kblookup_weight: float = 1.0
    arithmetic_weight: float = 1.0
    flakyapi_weight: float = 1.0
    webnav_weight: float = 1.0
    codesynth_weight: float = 1.0
    memory_weight: float = 1.0
    kblookup: KBParams = struct.field(default_factory=KBParams)
    arithmetic: ArithmeticParams = struct.field(default_factory=ArithmeticParams)
    flakyapi: FlakyParams = struct.field(default_factory=FlakyParams)
    webnav: WebNavParams = struct.field(default_factory=WebNavParams)
    codesynth: CodeParams = struct.field(default_factory=CodeParams)
    memory: MemoryParams = struct.field(default_factory=MemoryParams)


@struct.dataclass
class MixedWorld:
    kind: jax.Array  # int32, this task's type: an index into ``Mixed.families``
    worlds: tuple  # one world per included family; ``worlds[kind]`` is this task's


def parse_include(include: str) -> tuple[str, ...]:
    """The environment ids of a comma-separated ``include``; a clear error for a bad one."""
    ids = tuple(part.strip() for part in str(include).split(",") if part.strip())
    valid = ", ".join(FAMILIES)
    unknown = [env_id for env_id in ids if env_id not in FAMILIES]
    if unknown:
        raise ValueError(f"include: unknown environment id(s) {', '.join(unknown)}; valid: {valid}")
    if not ids:
        raise ValueError(f"include names no environment; valid ids: {valid}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"include names an environment twice: {include!r}")
    return ids


class Mixed(TaskFamily):
    def __init__(self, include: str = DEFAULT_INCLUDE):
        self.ids = parse_include(include)
        self.families = tuple(FAMILIES[env_id][0]() for env_id in self.ids)
        self.names = tuple(FAMILIES[env_id][1] for env_id in self.ids)
        self.type_tokens = tk.ids(FAMILIES[env_id][2] for env_id in self.ids)
        families = self.families
        tool_names = list(dict.fromkeys(t.name for f in families for t in f.tools))
        self.tools = tuple(self._mixed_tool(name) for name in tool_names)
        # local[i, j]: the index of mixture tool j among family i's tools (-1: it has none).
        self.local_tool = np.full((len(families), len(tool_names)), -1, np.int32)
        for i, family in enumerate(families):
            for k, tool in enumerate(family.tools):
                self.local_tool[i, tool_names.index(tool.name)] = k
        self.prompt_width = max(f.prompt_width for f in families) + 1  # + the type token
        self.plan_width = max(f.plan_width for f in families)
        self.max_args = max(f.max_args for f in families)
        self.max_answer = max(f.max_answer for f in families)
        self.arg_mask = np.any([f.arg_mask for f in families], axis=0)
        self.answer_mask = np.any([f.answer_mask for f in families], axis=0)
        self.default_max_len = max(f.default_max_len for f in families) + 1
        self.default_think_budget = max(f.default_think_budget for f in families)
        self.num_turns = max(f.num_turns for f in families)
        # Each type's own grammar, one row per family (``limits`` picks the task's row).
        self.grammar = Limits(
            tool_mask=jnp.asarray([tk.id_mask(t.name for t in f.tools) for f in families]),
            arg_mask=jnp.asarray(np.stack([f.arg_mask for f in families])),
            answer_mask=jnp.asarray(np.stack([f.answer_mask for f in families])),
            max_args=jnp.asarray([f.max_args for f in families], jnp.int32),
            max_answer=jnp.asarray([f.max_answer for f in families], jnp.int32),
        )

    def default_task_params(self) -> MixedParams:
        own = {
            name: f.default_task_params() for name, f in zip(self.names, self.families, strict=True)
        }
        return MixedParams(**own)

    def task_param_bounds(self) -> dict[str, tuple[float, float]]:
        bounds = {f"{name}_weight": (0.0, np.inf) for name in self.names}
        for name, family in zip(self.names, self.families, strict=True):
            bounds |= {f"{name}.{k}": v for k, v in family.task_param_bounds().items()}
        return bounds

    def task_param_order(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (f"{name}.{low}", f"{name}.{high}")
            for name, family in zip(self.names, self.families, strict=True)
            for low, high in family.task_param_order()
        )

    # ------------------------------------------------------------------ tasks
    def weights(self, params: MixedParams) -> jax.Array:
        """The included types' mixture probabilities [len(families)]."""
        weights = jnp.stack(
            [jnp.asarray(getattr(params, f"{name}_weight"), jnp.float32) for name in self.names]
        )
        weights = jnp.maximum(weights, 0.0)
        weights = jnp.where(weights.sum() > 0, weights, 1.0)  # all zero: uniform
        return weights / weights.sum()

    def sample(self, key, params: MixedParams, split, oracle) -> Task:
        """Every type's task is drawn (vmap runs all anyway); ``kind`` picks the episode's."""
        del oracle  # every type plays its oracle_mode 0 plan
        k_kind, *keys = jax.random.split(key, len(self.families) + 1)
        kind = weighted_choice(jax.random.bits(k_kind, (), jnp.uint32), self.weights(params))
        tasks = [
            family.sample(k, getattr(params, name), split, 0)
            for family, name, k in zip(self.families, self.names, keys, strict=True)
        ]
        prompts, plans = [], []
        for task, type_token in zip(tasks, self.type_tokens, strict=True):
            prompts.append(
                pack(
                    [
                        (jnp.array([tk.TASK_OPEN, type_token]), 2),
                        (task.prompt[1:], task.prompt_len - 1),
                    ],
                    self.prompt_width,
                )
            )
            pad = self.plan_width - task.plan.shape[0]
            plans.append((jnp.pad(task.plan, (0, pad), constant_values=tk.PAD), task.plan_len))

        def pick(*options):  # the drawn type's option
            return jnp.stack(options)[kind]

        prompt, prompt_len = jax.tree.map(pick, *prompts)
        plan, plan_len = jax.tree.map(pick, *plans)
        world = MixedWorld(kind, tuple(task.world for task in tasks))
        return Task(prompt, prompt_len, world, plan, plan_len)

    def limits(self, world: MixedWorld) -> Limits:
        return jax.tree.map(lambda rows: rows[world.kind], self.grammar)

    # ------------------------------------------------------------------ dispatch on the type
    def _switch(self, world: MixedWorld, method, *args, dtype=jnp.bool_):
        """``method(i, family, sub_world, *args)`` for the task's type ``i``."""
        branches = [
            lambda world, *a, i=i: jnp.asarray(
                method(i, self.families[i], world.worlds[i], *a), dtype
            )
            for i in range(len(self.families))
        ]
        return jax.lax.switch(world.kind, branches, world, *args)

    def _on_answer(self, name: str, world: MixedWorld, answer, answer_len):
        def run(i, family, sub, answer, answer_len):
            return getattr(family, name)(sub, answer[: family.max_answer], answer_len)

        return self._switch(world, run, answer, answer_len)

    def _on_call(self, name: str, world: MixedWorld, tool, args, args_len):
        local_tool = jnp.asarray(self.local_tool)

        def run(i, family, sub, tool, args, args_len):
            local = local_tool[i, jnp.clip(tool, 0, local_tool.shape[1] - 1)]
            hook = getattr(family, name)
            own = hook(sub, jnp.maximum(local, 0), args[: family.max_args], args_len)
            return (local >= 0) & own

        return self._switch(world, run, tool, args, args_len)

    def verify(self, world: MixedWorld, answer, answer_len):
        return self._on_answer("verify", world, answer, answer_len)

    def exploit(self, world: MixedWorld, answer, answer_len):
        return self._on_answer("exploit", world, answer, answer_len)

    def useful_call(self, world: MixedWorld, tool, args, args_len):
        return self._on_call("useful_call", world, tool, args, args_len)

    def leaky_call(self, world: MixedWorld, tool, args, args_len):
        return self._on_call("leaky_call", world, tool, args, args_len)

    def split_of(self, world: MixedWorld):
        return self._switch(world, lambda i, f, sub: f.split_of(sub), dtype=jnp.int32)

    def turns(self, world: MixedWorld):
        return self._switch(world, lambda i, f, sub: f.turns(sub), dtype=jnp.int32)

    def next_turn(self, world: MixedWorld, turn):
        def branch(i):
            family = self.families[i]

            def run(world, turn):
                if family.num_turns == 1:  # never asked: such a type has one turn
                    return jnp.full((self.prompt_width,), tk.PAD, jnp.int32), jnp.int32(0)
                message, length = family.next_turn(world.worlds[i], turn)
                padded = jnp.full((self.prompt_width,), tk.PAD, jnp.int32)
                return padded.at[: message.shape[0]].set(message), jnp.asarray(length, jnp.int32)

            return run

        branches = [branch(i) for i in range(len(self.families))]
        return jax.lax.switch(world.kind, branches, world, turn)

    # ------------------------------------------------------------------ tools
    def _mixed_tool(self, name: str) -> Tool:
        """Tool ``name``: the current type's tool of that name (``<error>`` if it has none)."""
        owned = [t for f in self.families for t in f.tools if t.name == name]
        # One width for every tool: the harness's switch over tools needs equal shapes.
        width = max(t.result_width for f in self.families for t in f.tools)

        def branch(i):
            family = self.families[i]
            tool = next((t for t in family.tools if t.name == name), None)

            def run(world: MixedWorld, args, args_len, key):
                """(output padded to ``width``, the updated mixture world or None)."""
                if tool is None:
                    return tool_output(jnp.array([tk.ERROR]), 1, ERROR, width), None
                out = tool.fn(world.worlds[i], args[: family.max_args], args_len, key)
                padded = tool_output(out.tokens, out.length, out.status, width, out.latency)
                if out.world is None:
                    return padded, None
                worlds = world.worlds[:i] + (out.world,) + world.worlds[i + 1 :]
                return padded, world.replace(worlds=worlds)

            return run

        def fn(world: MixedWorld, args, args_len, key):
            branches = [branch(i) for i in range(len(self.families))]
            shapes = [jax.eval_shape(b, world, args, args_len, key) for b in branches]
            updates = any(updated is not None for _, updated in shapes)

            def finish(b):
                def run(world, args, args_len, key):
                    out, updated = b(world, args, args_len, key)
                    if not updates:
                        return out
                    return out.replace(world=world if updated is None else updated)

                return run

            return jax.lax.switch(
                world.kind, [finish(b) for b in branches], world, args, args_len, key
            )

        return Tool(name, width, fn, max_latency=max(t.max_latency for t in owned))


__all__ = ["DEFAULT_INCLUDE", "FAMILIES", "Mixed", "MixedParams", "MixedWorld", "parse_include"]
