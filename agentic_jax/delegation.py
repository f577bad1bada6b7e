"""Delegation: an orchestrator and its sub-agents as one environment of ``1 + S`` contexts.

The orchestrator is an ordinary ``Harness`` episode (context 0). Its tools include
``delegate``: ``<call> delegate SUBTASK SUBTASK ... </call>``, each sub-task written in
tokens (``family.subtask_width`` of them, e.g. ``hat bob``). The call starts one sub-agent
per whole sub-task in the free slots (contexts 1 .. S): a fresh episode of the same harness
in its own context (its own transcript, so its own KV cache rows in a rollout), whose prompt
``family.subtask(world, written)`` opens with the role token ``<subagent>``, with its own
tools and grammar (``family.limits`` by role) and a bounded length
(``family.subagent_max_len``). The sub-agents of one call run in parallel; the orchestrator
waits, writing nothing, until every one of them has finished, then reads their answers as
the call's result, ``family.subtask_answer_width`` tokens each in the order written
(``<error>`` for a sub-agent that ended without answering)::

    orchestrator: <task> hat of bob eve ? </task> <call> delegate hat bob hat eve </call>
                  (waits)  <result> red gold </result> <answer> red gold </answer>
    slot 1:       <subagent> <task> hat bob </task> <call> search bob </call> ... <answer> red
    slot 2:       <subagent> <task> hat eve </task> <call> search eve </call> ... <answer> gold

Nothing of a sub-agent's transcript but its answer enters the orchestrator's. Each slot runs
at most one sub-agent per episode (so every row of a rollout holds one episode, as GRPO
expects), and a sub-agent has no ``delegate`` (nesting stops at one level). A call with no
whole sub-task, or with no free slot left, returns ``<result> <error> </result>`` at once.

Every context steps together, one token per step, as the sub-agents of a real harness run
concurrently: the episode's ``critical_path`` (the steps until the orchestrator answers: its
own tokens plus the longest sub-agent of each wait) is counted beside ``total_tokens`` (every
context's). Actions, observations, rewards and per-context infos have a leading ``1 + S``
axis; ``agentic_jax.rollout`` flattens it into rows of the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from agentic_jax import stats
from agentic_jax import tokens as tk
from agentic_jax.episode_start import first_state, prompt_start
from agentic_jax.harness import Harness
from agentic_jax.task import Task, pack
from agentic_jax.tools.base import ERROR, OK, ToolOutput, forced_result
from agentic_jax.transcript import HarnessParams, HarnessState, Observation, Phase


@struct.dataclass
class SystemState(environment.EnvState):
    contexts: HarnessState  # [1 + S]: the orchestrator (0), then the sub-agent slots
    waiting: jax.Array  # bool: the orchestrator waits for the sub-agents of its last call
    pending: jax.Array  # [S] bool: the slots its last delegate call started
    used: jax.Array  # [S] bool: the slot has run a sub-agent this episode
    answered: jax.Array  # [S] bool: the slot's sub-agent closed </answer>
    started_by: jax.Array  # [S] int32: which delegate call (0, 1, ...) started it; -1 none
    critical_path: jax.Array  # int32: steps while the orchestrator had not finished
    delegate_calls: jax.Array  # int32

    @property
    def total_tokens(self) -> jax.Array:
        """Tokens written in every context: the orchestrator's and its sub-agents'."""
        lengths = self.contexts.length
        return lengths[0] + jnp.sum(jnp.where(self.used, lengths[1:], 0))

    @property
    def sub_agents(self) -> jax.Array:
        """Sub-agent episodes started."""
        return self.used.sum()


def _select(where: jax.Array, a, b):
    """Per context: ``a`` where ``where`` [C], else ``b`` (pytrees with a leading C axis)."""
    return jax.tree.map(
        lambda x, y: jnp.where(where.reshape(where.shape + (1,) * (x.ndim - 1)), x, y), a, b
    )


class DelegatingHarness(environment.Environment[SystemState, HarnessParams]):
    """An orchestrator context and ``family.sub_agents`` sub-agent slots of one ``Harness``."""

    def __init__(self, harness: Harness, max_steps: int | None = None):
        family = harness.family
        if not getattr(family, "sub_agents", 0):
            raise ValueError(f"{type(family).__name__} has no sub-agent slots (sub_agents=0)")
        if "delegate" not in [tool.name for tool in family.tools]:
            raise ValueError(f"{type(family).__name__} offers no delegate tool")
        self.harness, self.family = harness, family
        self.sub_agents = family.sub_agents
        self.num_contexts = 1 + self.sub_agents
        self.max_len = harness.max_len  # every context's transcript bound (the KV cache's)
        self.subagent_max_len = min(family.subagent_max_len, harness.max_len)
        # Steps after the reset until the episode ends (a harness's wall-clock budget): by
        # default room for the orchestrator's own steps and one full sub-agent per slot.
        longest = harness.max_len - 1 + self.sub_agents * self.subagent_max_len
        self.episode_steps = longest if max_steps is None else int(max_steps)
        if not 1 <= self.episode_steps:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.delegate_index = [tool.name for tool in family.tools].index("delegate")
        self.env_name = harness.env_name
        self.effort, self.behaviours = harness.effort, harness.behaviours

    name = property(lambda self: self.env_name)
    num_actions = property(lambda self: self.harness.num_actions)
    default_params = property(lambda self: self.harness.default_params)

    def action_space(self, params=None):
        return self.harness.action_space(params)

    def observation_space(self, params=None):
        return self.harness.observation_space(params)

    # ------------------------------------------------------------------ reset
    def reset_env(self, key: jax.Array, params: HarnessParams):
        _, orchestrator = self.harness.reset_env(key, params)
        idle = orchestrator.replace(phase=jnp.int32(Phase.DONE))
        contexts = jax.tree.map(
            lambda o, i: jnp.stack([o] + [i] * self.sub_agents), orchestrator, idle
        )
        no_slots = jnp.zeros(self.sub_agents, bool)
        state = SystemState(
            time=jnp.int32(0),
            contexts=contexts,
            waiting=jnp.bool_(False),
            pending=no_slots,
            used=no_slots,
            answered=no_slots,
            started_by=jnp.full(self.sub_agents, -1, jnp.int32),
            critical_path=jnp.int32(0),
            delegate_calls=jnp.int32(0),
        )
        return self.observe(state, params), state

    def observe(self, state: SystemState, params: HarnessParams) -> Observation:
        """Each context's observation [1 + S]."""
        return jax.vmap(self.harness.observe, in_axes=(None, 0, None, None))(
            None, state.contexts, None, params
        )

    def _start(self, task: Task, params: HarnessParams, plan_width: int) -> HarnessState:
        """A sub-agent's first state: its prompt queued, its first token written, its plan
        padded to ``plan_width`` (an orchestrator's plan may be wider: a corpus's behaviours
        widen it)."""
        padding = plan_width - task.plan.shape[0]
        task = task.replace(plan=jnp.pad(task.plan, (0, padding), constant_values=tk.PAD))
        start = prompt_start(task, self.harness.queue_width, params.think_budget)
        return first_state(start, self.max_len, self.family.max_args, self.family.max_answer)

    # ------------------------------------------------------------------ step
    def step_env(self, key, state: SystemState, actions, params: HarnessParams):
        obs, state, reward, terminated, truncated, info = self.step_without_reset(
            key, state, actions, params
        )
        return obs, state, reward, terminated | truncated, info

    def step(self, key, state: SystemState, actions, params: HarnessParams | None = None):
        """gymnax's auto-resetting step: a fresh system once the orchestrator has finished."""
        params = self.default_params if params is None else params
        key, reset_key = jax.random.split(key)
        obs, state, reward, done, info = self.step_env(key, state, actions, params)
        fresh_obs, fresh_state = self.reset_env(reset_key, params)
        finished = state.contexts.phase[0] == Phase.DONE
        pick = lambda a, b: jnp.where(finished, a, b)  # noqa: E731
        return (
            jax.tree.map(pick, fresh_obs, obs),
            jax.tree.map(pick, fresh_state, state),
            reward,
            done,
            info,
        )

    def step_without_reset(self, key, state: SystemState, actions, params: HarnessParams):
        """Every context steps on its action [1 + S]; a waiting orchestrator and idle slots
        write nothing. Returns (obs, state, reward, terminated, truncated, info), each per
        context (the system's statistics broadcast to every context)."""
        contexts, reward, terminated, truncated, info = self._step_contexts(
            key, state, actions, params
        )
        answered = state.answered | (terminated[1:] & ~contexts.invalid[1:])
        orchestrator = jax.tree.map(lambda x: x[0], contexts)
        called = ~state.waiting & (orchestrator.tool_calls > state.contexts.tool_calls[0])
        called &= orchestrator.tool == self.delegate_index
        start, subagents = self._delegate(state, contexts, orchestrator, called, params)
        failed = called & ~start.any()  # no whole sub-task, or no free slot
        waiting = state.waiting | (called & start.any())
        pending = jnp.where(called, start, state.pending)
        answered = answered & ~start
        resume = waiting & jnp.all(~pending | (subagents.phase == Phase.DONE))
        orchestrator = self._deliver(orchestrator, subagents, pending, answered, resume, failed)
        orchestrator = orchestrator.replace(
            tool_errors=orchestrator.tool_errors + failed,
            last_failed=jnp.where(called, failed, orchestrator.last_failed),
        )
        contexts = jax.tree.map(lambda o, s: jnp.concatenate([o[None], s]), orchestrator, subagents)
        on_path = state.contexts.phase[0] != Phase.DONE
        system_terms = params.delegation_bonus * start.sum() - params.critical_path_cost * on_path
        reward = reward.at[0].add(system_terms)
        new = SystemState(
            time=state.time + 1,
            contexts=contexts,
            waiting=waiting & ~resume,
            pending=pending,
            used=state.used | start,
            answered=answered,
            started_by=jnp.where(start, state.delegate_calls, state.started_by),
            critical_path=state.critical_path + on_path,
            delegate_calls=state.delegate_calls + called,
        )
        info |= jax.vmap(self.harness.episode_info)(contexts)  # every context's, paused or not
        for stat in stats.SYSTEM_COUNTERS:  # the system's counters, broadcast to every context
            info[stat.name] = jnp.full(self.num_contexts, getattr(new, stat.field), jnp.float32)
        return self.observe(new, params), new, reward, terminated, truncated, info

    def _step_contexts(self, key, state: SystemState, actions, params: HarnessParams):
        """Each context's harness step, a waiting orchestrator paused; a sub-agent at its
        length bound is cut off (as a transcript at max_len is), and every context once the
        episode's steps run out. Returns (contexts, reward, terminated, truncated, info)."""
        num_contexts = self.num_contexts
        keys = jax.random.split(key, num_contexts)
        _, stepped, reward, terminated, truncated, info = jax.vmap(
            self.harness.step_without_reset, in_axes=(0, 0, 0, None)
        )(keys, state.contexts, actions, params)
        paused = (jnp.arange(num_contexts) == 0) & state.waiting
        contexts = _select(paused, state.contexts, stepped)
        reward = jnp.where(paused, 0.0, reward)
        info = jax.tree.map(lambda x: jnp.where(paused, jnp.zeros_like(x), x), info)
        over = (jnp.arange(num_contexts) > 0) & (contexts.length >= self.subagent_max_len)
        over = (over | (state.time + 1 >= self.episode_steps)) & (contexts.phase != Phase.DONE)
        contexts = contexts.replace(phase=jnp.where(over, Phase.DONE, contexts.phase))
        return contexts, reward, terminated & ~paused, (truncated & ~paused) | over, info

    def _delegate(self, state: SystemState, contexts, orchestrator, called, params):
        """A delegate call starts a sub-agent per whole sub-task, in the free slots, in order.
        Returns (the slots started [S], the sub-agent contexts)."""
        family = self.family
        width = family.subtask_width
        free = ~state.used
        rank = jnp.cumsum(free) - 1  # a free slot's place among the free ones
        start = called & free & (rank < orchestrator.args_len // width)
        chunk = jnp.clip(rank, 0, family.max_args // width - 1)
        written = orchestrator.args[chunk[:, None] * width + jnp.arange(width)]  # [S, width]
        tasks = jax.vmap(family.subtask, in_axes=(None, 0))(orchestrator.task.world, written)
        plan_width = contexts.task.plan.shape[-1]
        fresh = jax.vmap(self._start, in_axes=(0, None, None))(tasks, params, plan_width)
        return start, _select(start, fresh, jax.tree.map(lambda x: x[1:], contexts))

    def _deliver(self, orchestrator, subagents, pending, answered, resume, failed):
        """The call's result queued for the orchestrator: each pending sub-agent's answer in
        order once all have finished, or ``<error>`` at once for a call that started none."""
        queue, queue_len = self._result(subagents, pending, answered)
        error = forced_result(ToolOutput(jnp.array([tk.ERROR]), 1, ERROR), self.harness.queue_width)
        error_len = 3
        writes = resume | failed
        return orchestrator.replace(
            queue=jnp.where(writes, jnp.where(failed, error, queue), orchestrator.queue),
            queue_len=jnp.where(
                writes, jnp.where(failed, error_len, queue_len), orchestrator.queue_len
            ).astype(jnp.int32),
            queue_pos=jnp.where(writes, 0, orchestrator.queue_pos),
            phase=jnp.where(writes, Phase.RESULT, orchestrator.phase),
        )

    def _result(self, subagents: HarnessState, pending, answered):
        """``<result> ANSWER ... </result>``: each pending slot's answer (``<error>`` for one
        that did not answer), as (queue [F], length)."""
        width = self.family.subtask_answer_width
        answers = jnp.where(
            answered[:, None],
            subagents.answer[:, :width],
            jnp.full(width, tk.PAD).at[0].set(tk.ERROR),
        )
        lengths = jnp.where(answered, jnp.clip(subagents.answer_len, 1, width), 1)
        pieces = [
            (answers[s], jnp.where(pending[s], lengths[s], 0)) for s in range(self.sub_agents)
        ]
        body, body_len = pack(pieces, self.sub_agents * width)
        out = ToolOutput(body, body_len, jnp.int32(OK))
        return forced_result(out, self.harness.queue_width), body_len + 2

    # ------------------------------------------------------------------ for rollouts
    def idle(self, state: SystemState) -> jax.Array:
        """Contexts that write nothing this step (finished, unused, or a waiting orchestrator):
        [..., 1 + S] for states with any leading batch axes."""
        orchestrator = jnp.arange(self.num_contexts) == 0
        return (state.contexts.phase == Phase.DONE) | (orchestrator & state.waiting[..., None])

    def solved(self, state: SystemState) -> jax.Array:
        """Whether the system's answer (the orchestrator's) was right (any batch axes)."""
        return state.contexts.success[..., 0]

    def oracle_action(self, state: SystemState) -> jax.Array:
        """Each context's oracle token [1 + S]: its own plan (a sub-agent's, its sub-task's)."""
        return jax.vmap(self.harness.oracle_action)(state.contexts)
