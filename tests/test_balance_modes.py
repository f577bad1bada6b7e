"""``rollout.balance_modes``: AdaptThink's balanced think/no-think sampler in the rollout."""

import jax
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.algos.masked import first_in_row
from agentic_jax.train import config as config_lib
from agentic_jax.train.setup import build

BALANCED = [
    "env.id=Tally-v0",
    "env.overrides.tools_enabled=false",
    "env.overrides.think_budget=4",
    "env.overrides.max_items=4",
    "model.d_model=32",
    "model.n_layers=1",
    "rollout.num_tasks=4",
    "rollout.group_size=4",
    "rollout.balance_modes=true",
]


@pytest.fixture(scope="module")
def rollout_and_setup():
    setup = build(config_lib.load(None, BALANCED))
    actor = setup.actor
    params = actor.init_params(jax.random.PRNGKey(0))
    collect = jax.jit(
        lambda key: actor.collect(params, actor.env_params, None, None, key, setup.shard_batch)
    )
    return collect(jax.random.PRNGKey(3)), setup, params


def test_half_of_every_group_thinks_and_the_log_prob_is_the_samplers(rollout_and_setup):
    rollout, setup, params = rollout_and_setup
    traj = rollout.trajectory
    decision = np.asarray(first_in_row(traj.agent))
    assert decision.sum(axis=1).tolist() == [1] * traj.actions.shape[0]
    first = np.asarray(traj.actions)[decision]
    behaviour = np.asarray(traj.log_probs)[decision]
    in_group = np.arange(first.shape[0]) % 4
    assert (first[in_group < 2] == tk.THINK_OPEN).all()
    assert (first[in_group >= 2] != tk.THINK_OPEN).all()
    np.testing.assert_allclose(behaviour[in_group < 2], np.log(0.5), rtol=1e-6)
    # The others: 1/2 x the policy's probability renormalised without <think>.
    legal = np.asarray(traj.legal)[decision]
    outputs = setup.actor.model.apply(params, traj.tokens, traj.positions, traj.segments)[0]
    at_decision = np.asarray(outputs)[decision]
    masked = np.where(legal, at_decision, -np.inf)
    p = np.exp(masked - np.logaddexp.reduce(masked, axis=-1, keepdims=True))
    others = in_group >= 2
    expected = np.log(0.5 * p[others, first[others]] / (1 - p[others, tk.THINK_OPEN]))
    np.testing.assert_allclose(behaviour[others], expected, atol=1e-4)


def test_only_the_decision_is_forced(rollout_and_setup):
    """Every other agent token keeps its sampled log-probability (at most 0)."""
    traj = rollout_and_setup[0].trajectory
    rest = np.asarray(traj.agent) & ~np.asarray(first_in_row(traj.agent))
    log_probs = np.asarray(traj.log_probs)[rest]
    assert (log_probs <= 0).all() and not np.allclose(log_probs, np.log(0.5))


def test_balance_modes_needs_groups():
    with pytest.raises(ValueError, match="group_size >= 2"):
        build(config_lib.load(None, [*BALANCED, "rollout.group_size=1"]))


def test_per_mode_advantages_need_an_algorithm_that_reads_them():
    overrides = ["algo.mode_advantage=per_mode", "algo.name=ppo", "rollout.batching=stream"]
    with pytest.raises(ValueError, match=r"mode_advantage=per_mode is not a hyperparameter of ppo"):
        build(config_lib.load(None, overrides))
