"""Asynchronous acting (``rollout.overlap``): the actor and the learner on two devices at once.

With ``rollout.staleness`` k >= 1 an RL update acts with parameters at least one update old,
so the rollout of update t + 1 needs nothing that update t computes: its key is split from
update t's and its acting parameters are already in update t's staleness buffer
(``update.next_acting_inputs``). ``OverlappedChunks`` is the host loop's chunk functions
(the interface of ``loop.CompiledChunks``) for that case: per update it dispatches the next
rollout to the actor device and this update's learning to the learner device, and JAX's
asynchronous dispatch runs the two at once. Each update computes exactly what
``update.rl_update`` computes on one device, so a run gives the metrics of the same config
without ``overlap`` (``tests/test_overlap.py``); only the wall time changes.

SFT stages and evaluations run on the learner device as usual. The pipeline restarts at each
chunk (its first rollout is not overlapped), so it pays most with long chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

from agentic_jax.train import update
from agentic_jax.train.setup import Setup, TrainState


def act(setup: Setup, state: TrainState, next_update: bool):
    """The rollout of this state's update (or, ``next_update``, of the one after it), with
    the final environment states dropped: the learner does not read them."""
    inputs = update.next_acting_inputs if next_update else update.acting_inputs
    rollout_key, acting = inputs(state)
    rollout = update.collect(setup, state, rollout_key, acting)[1]
    return rollout.replace(obs=None, env_state=None)


def learn_from(setup: Setup, stage_index: int, state: TrainState, rollout):
    """The learning half of ``update.rl_update``, on a rollout the actor made."""
    next_key, shuffle_key = update.learning_keys(state)
    return update.learn(setup, state.replace(key=next_key), rollout, shuffle_key, stage_index)


class OverlappedChunks:
    """``loop.drive``'s chunk functions with the actor and the learner pipelined on
    ``setup.overlap_devices``; every function is vmapped over seeds, as in ``CompiledChunks``."""

    def __init__(self, setup: Setup, report: Callable[[str, float | None], None] | None = None):
        if setup.overlap_devices is None:
            raise ValueError("OverlappedChunks needs a setup built with rollout.overlap=true")
        self.setup = setup
        self.actor_device, self.learner_device = setup.overlap_devices
        self.report = report or (lambda what, seconds: None)
        self.cache: dict[tuple, Callable] = {}
        self.compiled: set[int] = set()  # RL stages whose pieces are compiled

    def _jitted(self, key: tuple, fn: Callable) -> Callable:
        if key not in self.cache:
            self.cache[key] = jax.jit(jax.vmap(fn))
        return self.cache[key]

    def start_stage(self, stage_index: int) -> Callable:
        start = partial(update.start_stage, self.setup, stage_index=stage_index)
        jitted = self._jitted(("start", stage_index), start)
        return lambda state: jitted(jax.device_put(state, self.learner_device))

    def chunk(self, num_updates: int, stage_index: int, state) -> Callable:
        setup = self.setup
        evaluate = self._jitted(("evaluate",), partial(update.evaluate, setup))
        if setup.stages[stage_index].kind == "sft":
            chunk = partial(
                update.run_chunk, setup, num_updates=num_updates, stage_index=stage_index
            )
            scanned = self._jitted(("sft", num_updates, stage_index), chunk)
            return lambda state: scanned(jax.device_put(state, self.learner_device))
        act_now = self._jitted(("act", False), partial(act, setup, next_update=False))
        act_next = self._jitted(("act", True), partial(act, setup, next_update=True))
        learn = self._jitted(("learn", stage_index), partial(learn_from, setup, stage_index))
        if stage_index not in self.compiled:  # compile once: a chunk's time is training
            what = f"the {setup.stages[stage_index].name} stage's overlapped actor and learner"
            self.report(what, None)
            started = time.time()
            learner_state = jax.device_put(state, self.learner_device)
            rollout = jax.block_until_ready(act_now(jax.device_put(state, self.actor_device)))
            act_next(jax.device_put(state, self.actor_device))
            learn(learner_state, jax.device_put(rollout, self.learner_device))
            jax.block_until_ready(evaluate(learner_state))
            self.compiled.add(stage_index)
            self.report(what, time.time() - started)

        def run(state):
            state = jax.device_put(state, self.learner_device)
            rollout = act_now(jax.device_put(state, self.actor_device))
            metrics = []
            for t in range(num_updates):
                upcoming = None
                if t + 1 < num_updates:  # the actor starts update t + 1 while t learns
                    upcoming = act_next(jax.device_put(state, self.actor_device))
                state, step_metrics = learn(state, jax.device_put(rollout, self.learner_device))
                metrics.append(step_metrics)
                rollout = upcoming
            stacked = jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *metrics)
            return state, stacked, evaluate(state)

        return run
