"""A saved run directory: its config, its newest checkpoint, and what the CLI does with them
(``agentic-jax eval`` and ``agentic-jax render``)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from agentic_jax.algos.pass_at_k import pass_at_ks
from agentic_jax.rollout import rollout_episodes
from agentic_jax.stats import chunk_scalars
from agentic_jax.train import config as config_lib
from agentic_jax.train import update
from agentic_jax.train.checkpoint import restore_checkpoint
from agentic_jax.train.recorder import run_config
from agentic_jax.train.setup import Setup, TrainState, build


def load_run(
    run_dir: str | Path, step: int | None = None
) -> tuple[config_lib.Config, Setup, TrainState]:
    """The config, setup and checkpointed state (the newest, or that of update ``step``) of a
    run directory."""
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    setup = build(config)
    state, _ = restore_checkpoint(run_dir, setup, step)
    return config, setup, state


def evaluate_run(run_dir: str | Path, episodes: int | None = None) -> dict[str, float]:
    """Held-out metrics of a saved policy (``episodes`` greedy episodes, default the config's)."""
    config, setup, state = load_run(run_dir)
    if episodes:
        config = config_lib.from_dict(config_lib.to_dict(config) | {"eval_episodes": episodes})
        setup = build(config)
    return chunk_scalars(jax.jit(jax.vmap(lambda s: update.evaluate(setup, s)))(state))


def pass_at_k_of_run(
    run_dir: str | Path,
    samples: int,
    tasks: int = 64,
    seed: int = 0,
    run_seed: int = 0,
    step: int | None = None,
):
    """pass@k (k = 1, 2, 4, ... ``samples``) of one seed's policy (``run_seed``, an index
    into the run's ``num_seeds``) at its newest checkpoint or that of update ``step``, on
    ``tasks`` held-out tasks, each sampled ``samples`` times at the run's temperature
    (``rollout.temperature``): ``(pass_at_ks, correct counts [tasks])``. ``seed`` draws the
    tasks and samples. Played in blocks of at most 4,096 episodes."""
    config, setup, state = load_run(run_dir, step)
    if not 0 <= run_seed < config.num_seeds:
        raise ValueError(f"run_seed={run_seed}: the run has {config.num_seeds} seed(s)")
    actor = setup.actor
    policy = jax.tree.map(lambda x: x[run_seed], state)
    env_params = actor.env_params.replace(split=1)
    block = max(1, min(tasks, 4096 // samples))

    @jax.jit
    def correct_counts(params, key):
        cache = actor.model.init_cache(block * samples * actor.num_contexts)
        rollout = rollout_episodes(
            actor.env, env_params, actor.policy_step(params), cache, key, block, samples
        )
        return actor.env.solved(rollout.env_state).reshape(block, samples).sum(axis=1)

    keys = jax.random.split(jax.random.PRNGKey(seed), -(-tasks // block))
    counts = np.concatenate([np.asarray(correct_counts(policy.params, k)) for k in keys])[:tasks]
    return pass_at_ks(samples, counts), counts


@struct.dataclass
class Sampled:
    """Greedy episodes for people to read: each context's transcript (one context for a
    single agent; an orchestrator and its sub-agent slots with delegation)."""

    transcripts: np.ndarray  # [count, contexts, T] int32, context 0 the (orchestrator's) own
    success: np.ndarray  # [count] bool
    started_by: np.ndarray  # [count, contexts - 1] int32: the delegate call that started each


def sample_transcripts(run_dir: str | Path, count: int = 3, split: int = 1, seed: int = 0):
    """Greedy episodes of the first seed's policy (``Sampled``)."""
    _, setup, state = load_run(run_dir)
    actor = setup.actor
    first = jax.tree.map(lambda x: x[0], state)
    env_params = actor.env_params.replace(split=split)

    @jax.jit
    def play(params, key):
        rollout = rollout_episodes(
            actor.env,
            env_params,
            actor.policy_step(params, greedy=True),
            actor.model.init_cache(count * actor.num_contexts),
            key,
            count,
        )
        final, solved = rollout.env_state, actor.env.solved(rollout.env_state)
        if actor.num_contexts == 1:
            started_by = jnp.zeros((count, 0), jnp.int32)
            return Sampled(final.transcript[:, None], solved, started_by)
        return Sampled(final.contexts.transcript, solved, final.started_by)

    return jax.tree.map(np.asarray, play(first.params, jax.random.PRNGKey(seed)))


@struct.dataclass
class LabelledEpisodes:
    """Sampled episodes of every seed of a run, with the environment's own hack labels: what
    a reward-hacking monitor is trained and scored on (``agentic_jax.monitors``)."""

    transcripts: jax.Array  # [seeds * episodes, T] int32
    agent: jax.Array  # [seeds * episodes, T] bool, the tokens the agent wrote
    hacked: jax.Array  # [seeds * episodes] bool, the episode used a leak
    success: jax.Array  # [seeds * episodes] bool


def labelled_episodes(
    run_dir: str | Path, episodes: int, split: int, seed: int = 0, **task_overrides
) -> LabelledEpisodes:
    """``episodes`` sampled episodes per seed of the run's newest policy on ``split`` (0 train,
    1 held out) of its training environment (``task_overrides``: traced task parameters such
    as ``impossible_rate``)."""
    _, setup, state = load_run(run_dir)
    actor = setup.actor
    env_params = actor.env_params.replace(split=split)
    if task_overrides:
        env_params = env_params.replace(task=env_params.task.replace(**task_overrides))

    @jax.jit
    @jax.vmap
    def play(params, key):
        rollout = rollout_episodes(
            actor.env,
            env_params,
            actor.policy_step(params),
            actor.model.init_cache(episodes),
            key,
            episodes,
        )
        final = rollout.env_state
        return LabelledEpisodes(
            final.transcript, final.agent_written, final.hacks > 0, actor.env.solved(final)
        )

    keys = jax.random.split(jax.random.PRNGKey(seed), jax.tree.leaves(state.params)[0].shape[0])
    played = play(state.params, keys)
    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), played)
