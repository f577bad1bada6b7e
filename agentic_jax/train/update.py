"""The jitted update functions, each a pure function of a ``Setup`` and a ``TrainState``.

- ``init(setup, key)``: parameters, optimiser state, environment carry;
- ``start_stage(setup, state, stage_index)``: a fresh optimiser and the stage's environment
  parameters (an RL stage also takes the current policy as its KL reference);
- ``run_chunk(setup, state, num_updates, stage_index)``: ``num_updates`` updates of the stage
  (``sft_update`` or ``rl_update``) in a ``lax.scan``, then a held-out ``evaluate``;
- ``rl_update`` = ``collect`` (a rollout by the acting policy) + ``learn`` (epochs of
  minibatch steps on the registered algorithm's loss, ``agentic_jax.algos.ALGORITHMS``).

The actor (``setup.actor``) supplies the policy's forward pass and rollouts; everything here
is the same for the token transformer and the classic-control MLP.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

from agentic_jax.algos import algorithm, grpo, sft
from agentic_jax.algos.corrections import truncated_is_weights
from agentic_jax.algos.credit import assign_credit
from agentic_jax.algos.masked import aggregate
from agentic_jax.algos.policy import Minibatch
from agentic_jax.monitors import action_monitor
from agentic_jax.rollout import Rollout
from agentic_jax.stats import update_stat
from agentic_jax.train.setup import Hyperparams, Setup, TrainState, hyperparams

Metrics = dict[str, jax.Array]
EVAL_KEY_SALT = 1_000_003  # evaluation keys are folded from the state's key with this


def init(setup: Setup, key: jax.Array, hyper: Hyperparams | None = None) -> TrainState:
    """Fresh parameters and optimiser; ``hyper`` defaults to the config's own."""
    key, init_key, env_key = jax.random.split(key, 3)
    actor = setup.actor
    params = actor.init_params(init_key) if setup.base_params is None else setup.base_params
    obs, env_state = actor.init_carry(env_key, actor.env_params)
    return TrainState(
        params=params,
        opt_state=setup.optimizer.init(params),
        ref_params=params,
        env_params=setup.level_params(0) if setup.curriculum_levels else actor.env_params,
        obs=obs,
        env_state=env_state,
        key=key,
        update=jnp.int32(0),
        level=jnp.int32(0),
        hyper=hyperparams(setup.config) if hyper is None else hyper,
        stale_params=fresh_stale_params(setup, params),
    )


def fresh_stale_params(setup: Setup, params):
    """A staleness buffer holding ``k`` copies of ``params`` (None when on-policy)."""
    k = setup.config.rollout.staleness
    return None if k == 0 else jax.tree.map(lambda x: jnp.stack([x] * k), params)


def start_stage(setup: Setup, state: TrainState, stage_index: int) -> TrainState:
    """Begin a stage: fresh optimiser state and the stage's environment parameters; an RL
    stage takes the current policy as its KL reference."""
    if setup.curriculum_levels:
        env_params = setup.level_params(state.level)
    else:
        env_params = setup.stage_env_params[stage_index]
    state = state.replace(opt_state=setup.optimizer.init(state.params), env_params=env_params)
    if setup.stages[stage_index].kind == "rl":
        params = state.params
        state = state.replace(ref_params=params, stale_params=fresh_stale_params(setup, params))
    return state


def apply_gradients(setup: Setup, state: TrainState, grads, lr: jax.Array) -> TrainState:
    updates, opt_state = setup.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, jax.tree.map(lambda u: -lr * u, updates))
    return state.replace(params=params, opt_state=opt_state)


def sft_update(setup: Setup, stage_index: int, state: TrainState, _=None):
    """Imitate oracle transcripts of train tasks: cross-entropy on agent tokens only."""
    stage = setup.stages[stage_index]
    key, rollout_key = jax.random.split(state.key)
    env_params = state.env_params.replace(oracle_mode=stage.oracle_mode)
    rollout = setup.actor.demonstrations(env_params, rollout_key, setup.shard_batch)
    traj = rollout.trajectory
    loss, grads = jax.value_and_grad(sft.loss)(state.params, setup.actor.evaluate_actions, traj)
    lr = state.hyper.stage_lr[stage_index]
    state = apply_gradients(setup, state, grads, lr).replace(key=key, update=state.update + 1)
    metrics = {"sft/loss": loss, "sft/oracle_success": rollout.stats["success"]}
    return state, metrics | {"env_steps": jnp.float32(traj.tokens.size)}


def collect(setup: Setup, state: TrainState, key: jax.Array, params) -> tuple[TrainState, Rollout]:
    """One rollout acting with ``params``; a stream's environments carry on in the state."""
    rollout = setup.actor.collect(
        params, state.env_params, state.obs, state.env_state, key, setup.shard_batch
    )
    if setup.config.rollout.batching == "stream":
        state = state.replace(obs=rollout.obs, env_state=rollout.env_state)
    return state, rollout


def acting_inputs(state: TrainState) -> tuple[jax.Array, object]:
    """What this state's RL update acts with: its rollout key and the acting parameters (the
    current policy, or with a staleness buffer its oldest entry)."""
    _, rollout_key, _ = jax.random.split(state.key, 3)
    stale = state.stale_params is not None
    acting = jax.tree.map(lambda b: b[0], state.stale_params) if stale else state.params
    return rollout_key, acting


def next_acting_inputs(state: TrainState) -> tuple[jax.Array, object]:
    """``acting_inputs`` of the state after this one's update, known before that update runs
    when the actor is at least one update stale (``rollout.overlap``): the next key is split
    from this one, and the buffer's next oldest entry is already here (with one entry, it is
    today's parameters)."""
    next_key, _, _ = jax.random.split(state.key, 3)
    buffer = jax.tree.map(
        lambda b, p: jnp.concatenate([b[1:], p[None]]), state.stale_params, state.params
    )
    return acting_inputs(state.replace(key=next_key, stale_params=buffer))


def learning_keys(state: TrainState) -> tuple[jax.Array, jax.Array]:
    """The key this state's RL update leaves for the next one, and its minibatch shuffle key
    (split from the same key as ``acting_inputs``' rollout key)."""
    next_key, _, shuffle_key = jax.random.split(state.key, 3)
    return next_key, shuffle_key


def rl_update(setup: Setup, stage_index: int, state: TrainState, _=None):
    """One RL update: a rollout acting with the current policy (or, stale, the oldest of the
    staleness buffer), then ``learn`` on it."""
    rollout_key, acting = acting_inputs(state)
    state, rollout = collect(setup, state, rollout_key, acting)
    next_key, shuffle_key = learning_keys(state)
    return learn(setup, state.replace(key=next_key), rollout, shuffle_key, stage_index)


def advantages_and_returns(setup: Setup, rollout: Rollout, hyper: Hyperparams, num_groups: int):
    """The algorithm's advantages over the rollout, and its value targets (None without a
    critic)."""
    config = setup.config
    return algorithm(config.algo.name).advantages(
        rollout.trajectory, rollout.last_value, hyper.algo, num_groups
    )


def monitored(setup: Setup, rollout: Rollout) -> tuple[Rollout, jax.Array]:
    """The rollout with ``algo.monitor_penalty`` taken from each episode the monitor flags (at
    its last step), and the flags [N] (``episodes`` batching: one finished episode per row).
    The monitor reads the transcript and which tokens the agent wrote, nothing else."""
    final, penalty = rollout.env_state, setup.config.algo.monitor_penalty
    if setup.transcript_monitor is not None:
        flags = setup.transcript_monitor.flags(final.transcript, final.agent_written)
    else:
        flags = action_monitor(final.transcript, final.agent_written, setup.config.env.id)
    traj = rollout.trajectory
    last_step = jnp.arange(traj.rewards.shape[1]) == traj.rewards.shape[1] - 1
    rewards = traj.rewards - jnp.where(last_step, penalty * flags[:, None], 0.0)
    return rollout.replace(trajectory=traj.replace(rewards=rewards)), flags


def learn(setup: Setup, state: TrainState, rollout: Rollout, shuffle_key, stage_index: int):
    """The learner's half of an RL update: ``update_epochs`` passes of shuffled minibatch
    steps on ``rollout``. With a staleness buffer the rollout's log-probs are the behaviour
    policy's and the loss corrects for them (``algo.off_policy``); an actor on another device
    may supply the rollout (``benchmarks/decoupled.py --overlap``). Returns (state, metrics)."""
    config, actor = setup.config, setup.actor
    stale = state.stale_params is not None
    proximal_log_probs, stale_metrics = None, {}
    if stale:
        rollout, proximal_log_probs, stale_metrics = with_learner_values(setup, state, rollout)
    flagged = None
    if config.algo.monitor_penalty > 0:  # the action monitor's flags cost reward
        rollout, flagged = monitored(setup, rollout)
    traj, num_groups = rollout.trajectory, config.rollout.num_tasks
    if actor.num_contexts > 1:  # an orchestrator and its sub-agents: algo.credit
        traj, num_groups = assign_credit(traj, config.algo.credit, actor.num_contexts, num_groups)
        rollout = rollout.replace(trajectory=traj)
    advantages, returns = advantages_and_returns(setup, rollout, state.hyper, num_groups)
    reference_log_probs = None
    if config.algo.kl_estimator != "none":
        reference_log_probs = actor.evaluate_actions(state.ref_params, traj).log_probs
    batch = Minibatch(traj, advantages, returns, reference_log_probs, proximal_log_probs)
    params_before = state.params
    state, metrics = gradient_steps(setup, state, batch, shuffle_key, stage_index)
    if stale:  # the parameters this update started from join the buffer, the oldest leaves
        push = lambda b, p: jnp.concatenate([b[1:], p[None]])  # noqa: E731
        state = state.replace(stale_params=jax.tree.map(push, state.stale_params, params_before))
    metrics |= stale_metrics | rollout_metrics(setup, rollout, num_groups, flagged)
    state = state.replace(update=state.update + 1)
    if setup.curriculum_levels:
        passed = rollout.stats["success"] >= config.curriculum.threshold
        level = jnp.minimum(state.level + passed, len(setup.curriculum_levels) - 1)
        state = state.replace(level=level, env_params=setup.level_params(level))
        metrics["train/curriculum_level"] = update_stat("curriculum_level", level)
    return state, metrics


def with_learner_values(setup: Setup, state: TrainState, rollout: Rollout):
    """A stale rollout with the learner's own values (and, with a critic, its bootstrap) at
    this update's start; returns (rollout, the learner's log-probs, the staleness metrics)."""
    actor, traj = setup.actor, rollout.trajectory
    proximal = actor.evaluate_actions(state.params, traj)
    traj = traj.replace(values=proximal.values)
    rollout = rollout.replace(trajectory=traj)
    if algorithm(setup.config.algo.name).critic:  # the bootstrap from the learner's critic too
        rollout = rollout.replace(last_value=actor.bootstrap_values(state.params, rollout))
    log_ratio = proximal.log_probs - traj.log_probs
    divergence = jnp.exp(log_ratio) - 1.0 - log_ratio  # k3's estimate of KL(behaviour || learner)
    weights = truncated_is_weights(proximal.log_probs, traj.log_probs, setup.config.algo.is_cap)
    metrics = {
        "loss/behaviour_kl": aggregate(divergence, traj.loss_mask, "token"),
        "loss/is_weight": aggregate(weights, traj.loss_mask, "token"),
    }
    return rollout, proximal.log_probs, metrics


def gradient_steps(setup: Setup, state: TrainState, batch: Minibatch, shuffle_key, stage_index):
    """``update_epochs`` passes over ``batch``, each in ``num_minibatches`` shuffled steps
    (whole units: a row, or an episode's rows); returns (state, the steps' mean metrics)."""
    config = setup.config
    batch, rows_per_unit = setup.actor.minibatch_rows(batch)
    units = jax.tree.leaves(batch)[0].shape[0] // rows_per_unit

    def shuffled_minibatches(epoch_key):
        order = jax.random.permutation(epoch_key, units)
        rows = (order[:, None] * rows_per_unit + jnp.arange(rows_per_unit)).reshape(-1)
        n = config.algo.num_minibatches
        return jax.tree.map(lambda x: x[rows].reshape(n, x.shape[0] // n, *x.shape[1:]), batch)

    epoch_keys = jax.random.split(shuffle_key, config.algo.update_epochs)
    epochs = jax.vmap(shuffled_minibatches)(epoch_keys)  # [epochs, minibatches, ...]
    one_epoch = partial(jax.lax.scan, partial(minibatch_step, setup, stage_index))
    state, metrics = jax.lax.scan(one_epoch, state, epochs)
    return state, jax.tree.map(jnp.mean, metrics)


def rollout_metrics(setup: Setup, rollout: Rollout, num_groups: int, flagged) -> dict:
    """The rollout's statistics as ``train/...`` metrics, with the update's own."""
    traj = rollout.trajectory
    metrics = {f"train/{k}": v for k, v in rollout.stats.items()}
    if algorithm(setup.config.algo.name).grouped:
        metrics["train/informative_groups"] = update_stat(
            "informative_groups",
            traj.rewards.sum(axis=1),
            traj.group,
            num_groups,
            grpo.holds_episode(traj),
        )
    if flagged is not None:
        metrics["train/monitor_flags"] = update_stat("monitor_flags", flagged)
    metrics["env_steps"] = jnp.float32(traj.actions.size)
    return metrics


def minibatch_step(setup: Setup, stage_index: int, state: TrainState, batch: Minibatch):
    """One gradient step of the algorithm's loss."""
    algorithm_loss = algorithm(setup.config.algo.name).loss
    (loss, metrics), grads = jax.value_and_grad(algorithm_loss, has_aux=True)(
        state.params, setup.actor.evaluate_actions, batch, state.hyper.algo
    )
    metrics["loss/total"] = loss
    metrics["loss/grad_norm"] = optax.tree.norm(grads)
    return apply_gradients(setup, state, grads, state.hyper.stage_lr[stage_index]), metrics


def evaluate(setup: Setup, state: TrainState) -> Metrics:
    """Greedy held-out episodes of the current policy (``eval/...`` metrics)."""
    key = jax.random.fold_in(state.key, EVAL_KEY_SALT)
    return setup.actor.evaluate(state.params, key, setup.shard_batch)


def run_chunk(setup: Setup, state: TrainState, num_updates: int, stage_index: int):
    """``num_updates`` updates of stage ``stage_index``, then a held-out evaluation.
    Returns (state, metrics stacked per update, evaluation metrics)."""
    if not 0 <= stage_index < len(setup.stages):
        raise ValueError(f"stage index {stage_index} out of range: {len(setup.stages)} stages")
    update = sft_update if setup.stages[stage_index].kind == "sft" else rl_update
    state, metrics = jax.lax.scan(
        partial(update, setup, stage_index), state, None, length=num_updates
    )
    return state, metrics, evaluate(setup, state)
