"""Hyperparameters are declared once, in each algorithm's dataclass: the config schema, the
sweep's traced keys and the ``TrainState`` all read the declaration."""

import dataclasses

import jax
import pytest
from conftest import TINY

from agentic_jax.algos import ALGORITHMS, grpo, ppo
from agentic_jax.algos.hyperparams import docs_table, field_names, traced_names
from agentic_jax.train import config as config_lib
from agentic_jax.train import sweep
from agentic_jax.train.setup import hyperparams, traced_keys

pytestmark = pytest.mark.timeout(120)


def test_the_config_schema_is_the_union_of_the_declarations():
    schema = {f.name for f in dataclasses.fields(config_lib.AlgoConfig)} - {"name"}
    declared = {name for a in ALGORITHMS.values() for name in field_names(a.hyperparams)}
    assert schema == declared
    assert config_lib.AlgoConfig().gamma == 1.0  # PPO's declared default


def test_traced_and_static_come_from_the_declaration():
    assert "gamma" in traced_names(ppo.PPOHyperparams)
    assert "vf_clip" not in traced_names(ppo.PPOHyperparams)  # static: changes the compile
    assert "normalize_std" not in traced_names(grpo.GRPOHyperparams)
    assert {"algo.kl_coef", "algo.gamma", "sft.lr", "algo.lr"} <= set(traced_keys())
    assert "algo.loss_agg" not in traced_keys()


def test_the_train_state_holds_the_chosen_algorithms_hyperparameters():
    hyper = hyperparams(config_lib.load(None, ["algo.name=ppo", "rollout.batching=stream"]))
    assert isinstance(hyper.algo, ppo.PPOHyperparams)
    leaves = jax.tree.leaves(hyper.algo)
    assert len(leaves) == len(traced_names(ppo.PPOHyperparams))  # static fields are not leaves
    assert hyper.algo.off_policy == "none"  # on-policy: no correction


def test_another_algorithms_hyperparameter_is_a_clear_error():
    with pytest.raises(config_lib.ConfigError, match="algo.gamma=0.9 is not a hyperparameter of"):
        config_lib.load(None, ["algo.gamma=0.9"])  # GRPO has no discount


def test_kl_needs_an_estimator():
    with pytest.raises(config_lib.ConfigError, match="set algo.kl_estimator to k1, k2 or k3"):
        config_lib.load(None, ["algo.kl_coef=0.1"])


def test_stale_rollouts_need_an_algorithm_that_corrects_them():
    with pytest.raises(config_lib.ConfigError, match="corrects stale rollouts.*got gspo"):
        config_lib.load(None, ["algo.name=gspo", "rollout.staleness=2"])


def test_a_kl_sweep_from_zero_is_one_compile_group():
    """The KL coefficient is traced: a sweep over it (0 included) compiles once, the term
    compiled in by the (static) estimator."""
    base = config_lib.apply_overrides({}, [*TINY, "updates=2", "algo.kl_estimator=k2"])
    _, settings = sweep.grid(base, ["algo.kl_coef=0.0,0.1"])
    assert [len(group) for group in sweep.compile_groups(settings)] == [2]


def test_the_docs_table_names_every_hyperparameter():
    table = "\n".join(docs_table({n: a.hyperparams for n, a in ALGORITHMS.items()}))
    for name in {f.name for f in dataclasses.fields(config_lib.AlgoConfig)} - {"name"}:
        assert f"`{name}`" in table
