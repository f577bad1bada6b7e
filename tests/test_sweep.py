"""``agentic-jax sweep``: vmapped settings equal the same settings run alone."""

import csv

import jax
import numpy as np
import pytest
import yaml
from conftest import TINY  # the shared tiny model and batch

from agentic_jax import cli
from agentic_jax.train import config as config_lib
from agentic_jax.train import sweep
from agentic_jax.train.loop import make_train
from agentic_jax.train.setup import seed_keys

BASE = config_lib.apply_overrides({}, [*TINY, "updates=2"])


def test_parse_axis():
    assert sweep.parse_axis("algo.lr=1e-3,3e-3") == ("algo.lr", [1e-3, 3e-3])
    assert sweep.parse_axis("seed=0:3") == ("seed", [0, 1, 2])
    assert sweep.parse_axis("updates=4") == ("updates", [4])
    with pytest.raises(config_lib.ConfigError, match="START:STOP"):
        sweep.parse_axis("seed=a:b")
    with pytest.raises(config_lib.ConfigError, match="empty"):
        sweep.parse_axis("seed=3:3")


def test_grid_groups_traced_keys_together_and_structural_keys_apart():
    swept, settings = sweep.grid(BASE, ["algo.lr=1e-3,3e-3", "seed=0:2", "model.d_model=16,32"])
    assert swept == ["algo.lr", "seed", "model.d_model"] and len(settings) == 8
    groups = sweep.compile_groups(settings)
    assert [len(g) for g in groups] == [4, 4]
    assert {s.config.model.d_model for s in groups[0]} == {16}


@pytest.mark.parametrize(
    "items, message",
    [(["algo.lrr=1e-3,3e-3"], "unknown config key 'algo.lrr'"),
     (["algo.lr=-1,1e-3"], "algo.lr"),
     (["num_seeds=2"], "seed=0:N")],
)  # fmt: skip
def test_bad_sweeps_are_clear_errors(items, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        sweep.grid(BASE, items)


@pytest.mark.slow  # two compiles of a training loop: 45 s of the first stage's 10 minutes
def test_vmapped_settings_equal_runs_alone():
    """Two settings (learning rate and seed both differ) in one compiled group, each against
    ``make_train`` of its own config: the same held-out success and parameters."""
    _, settings = sweep.grid(BASE, ["algo.lr=1e-3,1e-2", "seed=0:2"])
    settings = [settings[0], settings[3]]
    result = sweep.run_group(settings)
    assert result["eval/success"].shape == (2, 2)  # before training, and after 2 updates
    for i, setting in [(1, settings[1])]:  # one compile of make_train is enough
        config = setting.config
        state, outputs = jax.jit(make_train(config))(seed_keys(config)[0])
        ((_, evals),) = outputs[0]
        assert float(result["eval/success"][i, -1]) == pytest.approx(
            float(np.asarray(evals["eval/success"]).reshape(-1)[-1]), abs=1e-6
        )
        for swept, alone in zip(jax.tree.leaves(result["state"].params),
                                jax.tree.leaves(state.params), strict=True):  # fmt: skip
            # Float noise, which Adam's normalisation can grow to a few % of one step (lr).
            np.testing.assert_allclose(np.asarray(swept)[i], alone, atol=0.05 * config.algo.lr)
    # The learning rates differ, so the parameters do.
    first = jax.tree.leaves(result["state"].params)[0]
    assert not np.allclose(first[0], first[1])


@pytest.mark.slow  # the command end to end: runs in the second CI stage
def test_sweep_command_writes_table_and_plot(tmp_path):
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(BASE))
    out = tmp_path / "sweep"
    code = cli.main(["sweep", str(config_path), "algo.entropy_coef=0.0,0.01", "seed=0:2",
                     "--out", str(out)])  # fmt: skip
    assert code == 0
    with (out / "settings.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["seed"] for r in rows} == {"0", "1"}
    assert all(0.0 <= float(r["final_eval_success"]) <= 1.0 for r in rows)
    summary = (out / "summary.md").read_text()
    assert "| algo.entropy_coef | seeds | final held-out success |" in summary
    assert summary.count("±") == 2
    assert (out / "sweep.png").stat().st_size > 1000
