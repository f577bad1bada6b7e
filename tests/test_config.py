"""Config loading and validation: every mistake is one clear line."""

import re
from pathlib import Path

import pytest

from agentic_jax.train import config as config_lib
from agentic_jax.train.config import ConfigError

pytestmark = pytest.mark.timeout(60)
CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_is_valid(path):
    config = config_lib.load(path)
    assert config_lib.from_dict(config_lib.to_dict(config)) == config


def test_overrides_are_parsed_and_typed():
    config = config_lib.load(None, ["algo.lr=1e-3", "rollout.group_size=4", "algo.name=grpo"])
    assert config.algo.lr == pytest.approx(1e-3) and isinstance(config.algo.lr, float)
    assert config.rollout.group_size == 4
    config = config_lib.load(None, ["env.overrides.num_entities=4"])
    assert config.env.overrides == {"num_entities": 4}


def test_overrides_reach_a_stage_by_index():
    r1_zero = CONFIGS[0].with_name("r1_zero.yaml")
    config = config_lib.load(
        r1_zero, ["stages.1.updates=250", "stages.0.env.behaviour_probs.oracle=0.2"]
    )
    assert [stage.updates for stage in config.stages] == [400, 250]
    assert config.stages[0].env["behaviour_probs"]["oracle"] == pytest.approx(0.2)
    for bad, message in [("stages.2.updates=1", "'2' is not an index of a list of 2 (valid: 0-1)"),
                         ("stages.rl.updates=1", "'rl' is not an index")]:  # fmt: skip
        with pytest.raises(ConfigError, match=re.escape(message)):
            config_lib.load(r1_zero, [bad])


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["algo.lrr=1e-3"], "unknown config key 'algo.lrr'; did you mean 'algo.lr'"),
        (["modle.d_model=8"], "unknown config key 'modle'; did you mean 'model'"),
        (["algo.lr=fast"], "algo.lr: Input should be a valid number"),
        (["rollout.batching=sideways"], "rollout.batching: Input should be 'episodes' or 'stream'"),
        (["algo.lr=-1"], "algo.lr: Input should be greater than 0"),
        (["rollout.batching=stream"], "algo.name=grpo needs rollout.batching=episodes"),
        (["rollout.group_size=1"], "needs rollout.group_size >= 2"),
        (["algo.num_minibatches=3"], "algo.num_minibatches=3 must divide rollout.num_tasks=64"),
        (["model.n_heads=3"], "model.n_heads=3 must divide model.d_model=64"),
        (["model.init_std=-0.02"], "model.init_std: Input should be greater than or equal to 0"),
        (["updates"], "not of the form key=value"),
    ],
)
def test_bad_config_gives_one_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_lib.load(None, overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config_lib.load(tmp_path / "nope.yaml")
