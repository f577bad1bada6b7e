"""The harness: a task family and its tools as a gymnax ``Environment`` of one token per step.

Each step appends exactly one token to the transcript. When it is the agent's turn the token
is the action; otherwise it is forced by the harness and the action is ignored: the prompt at
the start, a tool result after ``</call>``, or the closing token of a segment that reached its
budget (``</think>``, ``</call>``, ``</answer>``).

The transcript grammar, enforced by the legal-token mask in every observation::

    <task> ... </task>  ( <think> ... </think> | <call> TOOL ARGS </call> <result> ... </result> )*
    ( <answer> ... </answer> | <abort> )

``<abort>`` needs ``abort_enabled``; ``inoculate`` writes ``<shortcut_ok>`` after the prompt.

An illegal agent token ends the episode with no reward (``invalid``), as does an action that
is no token id (outside ``[0, VOCAB_SIZE)``, or not whole), which is not written (step info
``out_of_range_action``). A transcript reaching ``max_len`` is truncated with no reward.
Multi-turn episodes and tools that change the world: ``agentic_jax.task``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from agentic_jax import phases, stats
from agentic_jax import tokens as tk
from agentic_jax.behaviours import check_only_oracle, with_behaviour
from agentic_jax.episode_start import (
    first_state,
    fit_plan_to_tools,
    prompt_start,
    with_abort_plan,
    with_effort_prompt,
    with_inoculation,
)
from agentic_jax.task import Limits, TaskFamily
from agentic_jax.tools.base import OK, call_tool, forced_result
from agentic_jax.transcript import (
    HarnessParams,
    HarnessState,
    Observation,
    ObservationSpace,
    Phase,
    append_token,
    not_a_token,
    write_at,
)


class Harness(environment.Environment[HarnessState, HarnessParams]):
    """A gymnax environment whose action is one token of the shared vocabulary."""

    def __init__(
        self,
        family: TaskFamily,
        max_len: int | None = None,
        name: str | None = None,
        effort: bool = False,
        behaviours: bool = False,
        params: HarnessParams | None = None,
    ):
        self.family = family
        self._params = params
        self.effort = bool(effort)  # static: ``<effort> LEVEL`` follows the first prompt
        # static: plans may be corrupted into ``behaviour_probs``'s behaviours. Off, that work
        # is not compiled at all (it is most of a reset's, and every step samples a reset).
        self.behaviours = bool(behaviours)
        self.max_len = int(max_len or family.default_max_len + 2 * self.effort)
        self.env_name = name or type(family).__name__
        self.result_width = max(tool.result_width + tool.max_latency for tool in family.tools)
        # The prompt, then <shortcut_ok> and <effort> LEVEL; or <result> ... </result>.
        self.queue_width = max(family.prompt_width + 3, self.result_width + 2)
        if self.max_len < family.prompt_width + 2:
            raise ValueError(
                f"max_len={self.max_len} is too short: the prompt alone takes up to "
                f"{family.prompt_width} tokens; use max_len >= {family.prompt_width + 2}"
            )
        self.tool_ids = jnp.asarray(tk.ids(t.name for t in family.tools))
        self._tool_mask = jnp.asarray(tk.id_mask(t.name for t in family.tools))
        self._answer_mask = jnp.asarray(family.answer_mask)
        self._arg_mask = jnp.asarray(family.arg_mask)
        self._think_mask = jnp.asarray(tk.CONTENT_MASK)

    name = property(lambda self: self.env_name)
    num_contexts = 1  # transcripts per episode (a ``DelegatingHarness`` has 1 + sub-agents)

    # Steps after the reset until every episode has ended: the transcript's bound.
    episode_steps = property(lambda self: self.max_len - 1)

    def idle(self, state: HarnessState) -> jax.Array:
        """Whether an episode has ended (it writes nothing until it is reset)."""
        return state.phase == Phase.DONE

    def solved(self, state: HarnessState) -> jax.Array:
        """Whether an episode's answer was verified correct (any leading batch axes)."""
        return state.success

    @property
    def num_actions(self) -> int:
        return tk.VOCAB_SIZE

    @property
    def default_params(self) -> HarnessParams:
        """The parameters ``envs.make`` built (what gymnax's wrappers use), or the family's."""
        if self._params is not None:
            return self._params
        budget, task = self.family.default_think_budget, self.family.default_task_params()
        return HarnessParams(think_budget=budget, task=task)

    def action_space(self, params: HarnessParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(tk.VOCAB_SIZE)

    def observation_space(self, params: HarnessParams | None = None) -> ObservationSpace:
        return ObservationSpace(tk.VOCAB_SIZE, self.max_len)

    def reset(self, key: jax.Array, params: HarnessParams | None = None):
        """gymnax's ``reset`` (jitted), refusing first a mixture this harness would ignore."""
        if not self.behaviours and params is not None:
            check_only_oracle(params)
        return super().reset(key, params)

    # ------------------------------------------------------------------ reset
    def reset_env(self, key: jax.Array, params: HarnessParams) -> tuple[Observation, HarnessState]:
        task = self.family.sample(key, params.task, params.split, params.oracle_mode)
        chex.assert_shape(task.prompt, (self.family.prompt_width,))
        if self.behaviours:
            task = with_behaviour(key, task, params, self.family, effort=self.effort)
        task = with_abort_plan(fit_plan_to_tools(task, params), params)
        start = with_inoculation(prompt_start(task, self.queue_width, params.think_budget), params)
        if self.effort:
            start = with_effort_prompt(jax.random.fold_in(key, 1), start, params)
        state = first_state(start, self.max_len, self.family.max_args, self.family.max_answer)
        state = state.replace(impossible=self.family.impossible(task.world))
        return self.observe(key, state, None, params), state

    def _limits(self, state: HarnessState) -> Limits:
        """The current task's grammar: the family's per-task ``limits`` or the static ones."""
        limits = self.family.limits(state.task.world)
        if limits is None:
            family = self.family
            limits = Limits(
                self._tool_mask,
                self._arg_mask,
                self._answer_mask,
                family.max_args,
                family.max_answer,
            )
        return limits

    def _must_close(self, state: HarnessState, params: HarnessParams) -> jax.Array:
        """The open segment is at its budget: the harness writes its closing token."""
        limits = self._limits(state)
        return (
            ((state.phase == Phase.THINK) & (state.think_tokens >= state.think_budget))
            | ((state.phase == Phase.CALL_ARGS) & (state.args_len >= limits.max_args))
            | ((state.phase == Phase.ANSWER) & (state.answer_len >= limits.max_answer))
        )

    def _forced_token(self, state: HarnessState, params: HarnessParams):
        """(token, is_forced) for the next position, regardless of the action."""
        from_queue = state.queue_pos < state.queue_len
        closing = jnp.select(
            [state.phase == Phase.THINK, state.phase == Phase.CALL_ARGS],
            [tk.THINK_CLOSE, tk.CALL_CLOSE],
            tk.ANSWER_CLOSE,
        )
        token = jnp.where(
            from_queue,
            state.queue[jnp.clip(state.queue_pos, 0, self.queue_width - 1)],
            jnp.where(self._must_close(state, params), closing, tk.PAD),
        )
        forced = from_queue | self._must_close(state, params) | (state.phase == Phase.DONE)
        return token.astype(jnp.int32), forced

    def legal_mask(self, state: HarnessState, params: HarnessParams) -> jax.Array:
        """Legal next tokens; when the next token is forced, just that token."""
        # Elementwise selects only (no scatter, no gather by phase): under vmap XLA fuses them
        # into one pass over the batch's [N, V] mask.
        phase, vocab = state.phase, jnp.arange(tk.VOCAB_SIZE)
        may_think = params.think_between_calls | (state.tool_calls == 0)
        can_think = (state.think_tokens < state.think_budget) & may_think
        idle = (
            ((vocab == tk.THINK_OPEN) & can_think)
            | ((vocab == tk.CALL_OPEN) & params.tools_enabled)
            | (vocab == tk.ANSWER_OPEN)
            | ((vocab == tk.ABORT) & params.abort_enabled)
        )
        think = self._think_mask | (vocab == tk.THINK_CLOSE)
        limits = self._limits(state)
        args = write_at(jnp.asarray(limits.arg_mask), tk.CALL_CLOSE, state.args_len > 0)
        answer = write_at(jnp.asarray(limits.answer_mask), tk.ANSWER_CLOSE, state.answer_len > 0)
        effort = jnp.asarray(tk.id_mask(tk.EFFORT_LEVELS))
        agent_mask = jnp.select(
            [
                phase == Phase.EFFORT,
                phase == Phase.THINK,
                phase == Phase.CALL_NAME,
                phase == Phase.CALL_ARGS,
                phase == Phase.ANSWER,
            ],
            [effort, think, jnp.asarray(limits.tool_mask), args, answer],
            idle,  # Phase.IDLE, and Phase.PROMPT (forced)
        )
        token, forced = self._forced_token(state, params)
        return jnp.where(forced, vocab == token, agent_mask)

    def observe(self, key, state: HarnessState, action, params: HarnessParams) -> Observation:
        del key, action
        _, forced = self._forced_token(state, params)
        return Observation(
            token=state.transcript[state.length - 1],
            position=state.length - 1,
            agent_turn=~forced,
            legal_mask=self.legal_mask(state, params),
        )

    def oracle_action(self, state: HarnessState) -> jax.Array:
        """The oracle's next agent token: its plan, one token per agent turn."""
        plan = state.task.plan
        return plan[jnp.clip(state.plan_pos, 0, plan.shape[0] - 1)]

    # ------------------------------------------------------------------ step
    def step_env(self, key, state: HarnessState, action, params: HarnessParams):
        out_of_range = not_a_token(action)
        action = jnp.where(out_of_range, 0, jnp.asarray(action)).astype(jnp.int32)
        was_done = state.phase == Phase.DONE
        forced_token, forced = self._forced_token(state, params)
        invalid = ~forced & (out_of_range | ~self.legal_mask(state, params)[action])
        token = jnp.where(forced, forced_token, action)
        by_agent = ~forced

        new, reward = self._write(key, state, token, by_agent, params)
        unwritten = by_agent & out_of_range  # no token id: nothing written, the episode ends
        new = jax.tree.map(lambda a, b: jnp.where(unwritten, a, b), state, new)
        new = new.replace(invalid=invalid, success=new.success & ~invalid)
        reward = jnp.where(invalid, 0.0, reward)
        ended_now = (new.phase == Phase.DONE) | invalid
        truncated = ~ended_now & (new.length >= self.max_len)
        terminated = ended_now
        new = new.replace(
            phase=jnp.where(terminated | truncated, Phase.DONE, new.phase),
            terminated=terminated,
            truncated=truncated,
            time=state.time + 1,
        )
        # A finished episode idles: nothing changes until it is reset.
        idle_state = state.replace(time=state.time + 1, terminated=False, truncated=False)
        new = jax.tree.map(lambda a, b: jnp.where(was_done, a, b), idle_state, new)
        reward = jnp.where(was_done, 0.0, reward)
        terminated = terminated & ~was_done
        info = self.episode_info(new)
        info["agent_step"] = by_agent & ~was_done
        info["out_of_range_action"] = unwritten & ~was_done
        info["task_reward"] = jnp.where(terminated, new.success.astype(jnp.float32), 0.0)
        obs = self.observe(key, new, action, params)
        return obs, new, reward.astype(jnp.float32), terminated, info

    def is_truncated(self, state: HarnessState, params: HarnessParams) -> jax.Array:
        return state.truncated

    def step_without_reset(self, key, state: HarnessState, action, params: HarnessParams):
        """One step without auto-reset (a finished episode idles): the ``episodes`` batching."""
        obs, state, reward, terminated, info = self.step_env(key, state, action, params)
        return obs, state, reward, terminated, state.truncated, info

    def episode_info(self, state: HarnessState) -> dict[str, jax.Array]:
        """Running episode statistics (``stats.EPISODE_COUNTERS``), read where it ends."""
        return {
            stat.name: getattr(state, stat.field).astype(jnp.float32)
            for stat in stats.EPISODE_COUNTERS
        }

    def _write(self, key, state: HarnessState, token, by_agent, params: HarnessParams):
        """Append ``token`` and advance the transcript state machine; returns (state, reward).
        Each phase's transition reads the phase the token was written in (``phase``)."""
        phase = state.phase
        s = self._append(state, token, by_agent)
        s = phases.drain_queue(s, phase, self.effort & params.agent_effort)
        s, choosing, level = phases.choose_effort(s, phase, token, params)
        s, aborting = phases.open_segment(s, phase, token)
        s, thinking = phases.think(s, phase, token)
        s, bonus = self._call(key, s, phase, token, params)
        s, answering, correct, exploited = self._answer(s, phase, token)
        think_cost = jnp.where(thinking & by_agent, params.think_cost, 0.0)
        level_cost = jnp.where(choosing, jnp.asarray(params.effort_costs)[level], 0.0)
        paid = answering & (correct | (exploited & params.exploit_pays))  # the grader's verdict
        return s, bonus + paid - think_cost - level_cost + aborting * params.abort_reward

    def _append(self, state: HarnessState, token, by_agent) -> HarnessState:
        """The token written at the transcript's end; the oracle's plan advances past it."""
        phase = state.phase
        position = jnp.clip(state.length, 0, self.max_len - 1)
        # A forced closing token also advances the oracle's plan, which lists every closing.
        closing = (phase == Phase.THINK) | (phase == Phase.CALL_ARGS) | (phase == Phase.ANSWER)
        return state.replace(
            transcript=write_at(state.transcript, position, token),
            agent_written=write_at(state.agent_written, position, by_agent),
            length=state.length + 1,
            plan_pos=state.plan_pos + (by_agent | (closing & (token == self.oracle_action(state)))),
        )

    def _call(self, key, s: HarnessState, phase, token, params: HarnessParams):
        """Phase.CALL_NAME: pick the tool; Phase.CALL_ARGS: collect arguments, or close and
        run the tool. Returns (state, the tool's shaped bonus)."""
        tool = jnp.argmax(self.tool_ids == token).astype(jnp.int32)
        naming = phase == Phase.CALL_NAME
        s = s.replace(
            tool=jnp.where(naming, tool, s.tool),
            args_len=jnp.where(naming, 0, s.args_len),
            phase=jnp.where(naming, Phase.CALL_ARGS, s.phase),
        )
        adding_arg = (phase == Phase.CALL_ARGS) & (token != tk.CALL_CLOSE)
        args, args_len = append_token(s.args, s.args_len, adding_arg, token)
        s = s.replace(args=args, args_len=args_len)
        calling = (phase == Phase.CALL_ARGS) & (token == tk.CALL_CLOSE)
        return self._dispatch(key, s, calling, params)

    def _answer(self, s: HarnessState, phase, token):
        """Phase.ANSWER: collect, or close and verify (a multi-turn task's earlier answers
        queue the next turn). Returns (state, answering, correct, exploited)."""
        family = self.family
        adding_answer = (phase == Phase.ANSWER) & (token != tk.ANSWER_CLOSE)
        answer, answer_len = append_token(s.answer, s.answer_len, adding_answer, token)
        s = s.replace(answer=answer, answer_len=answer_len)
        answering = (phase == Phase.ANSWER) & (token == tk.ANSWER_CLOSE)
        if family.num_turns > 1:
            s, answering = self._next_turn(s, answering)
        correct = family.verify(s.task.world, s.answer, s.answer_len)
        exploited = answering & family.exploit(s.task.world, s.answer, s.answer_len)
        s = s.replace(
            hacks=s.hacks + exploited,
            cheated=s.cheated | (answering & correct & s.impossible),
            success=jnp.where(answering, correct, s.success),
            phase=jnp.where(answering, Phase.DONE, s.phase),
        )
        return s, answering, correct, exploited

    def _next_turn(self, s: HarnessState, answering):
        """An answer closed before the last turn queues the next turn's message instead.

        Returns the state and whether the answer is the episode's final one.
        """
        more = answering & (s.turn + 1 < self.family.turns(s.task.world))
        message, length = self.family.next_turn(s.task.world, s.turn + 1)
        chex.assert_shape(message, (self.family.prompt_width,))
        queue = jnp.full((self.queue_width,), tk.PAD, jnp.int32)
        queue = queue.at[: self.family.prompt_width].set(message)
        s = s.replace(
            queue=jnp.where(more, queue, s.queue),
            queue_len=jnp.where(more, length, s.queue_len).astype(jnp.int32),
            queue_pos=jnp.where(more, 0, s.queue_pos),
            phase=jnp.where(more, Phase.PROMPT, s.phase),
            turn=s.turn + more,
            answer=jnp.where(more, tk.PAD, s.answer),
            answer_len=jnp.where(more, 0, s.answer_len),
        )
        return s, answering & ~more

    def _dispatch(self, key, s: HarnessState, calling, params: HarnessParams):
        """Run the chosen tool when ``calling``; queue ``<result> ... </result>``."""
        family = self.family
        out = call_tool(family.tools, s.tool, s.task.world, s.args, s.args_len, key)
        result = forced_result(out, self.queue_width)
        useful = family.useful_call(s.task.world, s.tool, s.args, s.args_len)
        leaked = calling & family.leaky_call(s.task.world, s.tool, s.args, s.args_len)
        earns_bonus = calling & useful & ~s.bonus_given
        s = s.replace(
            queue=jnp.where(calling, result, s.queue),
            queue_len=jnp.where(calling, out.latency + out.length + 2, s.queue_len),
            queue_pos=jnp.where(calling, 0, s.queue_pos),
            phase=jnp.where(calling, Phase.RESULT, s.phase),
            tool_calls=s.tool_calls + calling,
            tool_errors=s.tool_errors + (calling & (out.status != OK)),
            retries=s.retries + (calling & s.last_failed),
            last_failed=jnp.where(calling, out.status != OK, s.last_failed),
            hacks=s.hacks + leaked,
            bonus_given=s.bonus_given | earns_bonus,
        )
        if out.world is not None:
            world = jax.tree.map(lambda a, b: jnp.where(calling, a, b), out.world, s.task.world)
            s = s.replace(task=s.task.replace(world=world))
        return s, jnp.where(earns_bonus, params.tool_bonus, 0.0)
