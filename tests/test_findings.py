"""Findings are data: the registry, the statistics of a result, and RESULTS.md and the README's
findings table held equal to what the committed result files render."""

import json
import math
from pathlib import Path

import pytest

from agentic_jax.experiments import EXPERIMENTS, Arm, Effect, Experiment, Measure, get, report
from agentic_jax.experiments import fingerprint as fp
from agentic_jax.experiments.run import per_seed, quick_overrides, summarise

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def test_results_md_is_what_the_result_files_render():
    results, stale = report.load_results(RESULTS)
    rendered = report.results_markdown(list(EXPERIMENTS.values()), results, stale)
    assert (REPO / "benchmarks" / "RESULTS.md").read_text() == rendered, (
        "benchmarks/RESULTS.md differs from the result files: run `agentic-jax reproduce --render`"
    )


def test_readme_findings_table_is_what_the_result_files_render():
    results, stale = report.load_results(RESULTS)
    table = report.findings_table(list(EXPERIMENTS.values()), results, stale)
    readme = (REPO / "README.md").read_text()
    assert report.with_findings_table(readme, table) == readme, (
        "README.md's findings table differs from the result files: run "
        "`agentic-jax reproduce --render`"
    )


def test_every_recorded_result_is_a_registered_full_run_with_its_provenance():
    results, stale = report.load_results(RESULTS)
    assert set(stale) <= set(results)
    for name, result in results.items():
        experiment = get(name)
        assert not result["quick"], name
        assert result["seeds"] >= 8, f"{name}: {result['seeds']} seeds"
        assert result["command"].startswith(f"agentic-jax reproduce {name}")
        for key in ("commit", "date", "machine", "wall_s", "fingerprint"):
            assert result[key], f"{name}: no {key}"
        assert set(result["arms"]) == {arm.name for arm in experiment.arms}, name


def test_unknown_experiment_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown experiment 'r1zero'; registered: default"):
        get("r1zero")


def test_mean_and_95_percent_interval_by_hand():
    # mean 2, sample sd 1, n 3: half-width t(0.975, 2) * 1 / sqrt(3) = 4.303 / 1.732 = 2.484
    mean, low, high, ci_low, ci_high = report.mean_interval([1.0, 2.0, 3.0])
    assert (mean, low, high) == (2.0, 1.0, 3.0)
    assert ci_low == pytest.approx(2.0 - 4.303 / math.sqrt(3))
    assert ci_high == pytest.approx(2.0 + 4.303 / math.sqrt(3))
    assert report.mean_interval([0.5]) == (0.5,) * 5


def _experiment(effect_test) -> Experiment:
    return Experiment(
        name="toy", question="q", anchor="a", config="default", arms=(Arm("A"), Arm("B")),
        measures=(Measure("eval/success", "pretrain"), Measure("eval/success", "final")),
        effect=Effect("final beats base", effect_test, arms=("A",)), stage="RL", cpu_minutes=1,
    )  # fmt: skip


def test_measures_are_read_per_seed_at_the_end_of_their_stage_and_the_effect_per_seed():
    rows = [
        {"update": 0, "stage": "init", "eval/success_per_seed": [0.0, 0.0]},
        {"update": 2, "stage": "pretrain", "eval/success_per_seed": [0.3, 0.2]},
        {"update": 4, "stage": "pretrain", "eval/success_per_seed": [0.4, 0.5]},
        {"update": 6, "stage": "rl", "eval/success_per_seed": [0.9, 0.45]},
    ]

    def improves(arm, values):
        return values[arm]["eval/success@final"] > values[arm]["eval/success@pretrain"]

    experiment = _experiment(improves)
    assert per_seed(rows, experiment.measures[0], 2) == [0.4, 0.5]
    assert per_seed(rows, experiment.measures[1], 2) == [0.9, 0.45]
    summary = summarise(experiment, {"A": rows, "B": rows}, 2)
    assert summary["effect_shown"] == {"A": [True, False]}
    with pytest.raises(ValueError, match="no row of stage 'sft'"):
        per_seed(rows, Measure("eval/success", "sft"), 2)


def test_an_effect_on_an_unknown_arm_is_refused():
    with pytest.raises(ValueError, match="unknown arms"):
        Experiment(name="x", question="q", anchor="a", config="default", arms=(Arm("A"),),
                   measures=(), effect=Effect("c", lambda a, v: True, arms=("Z",)), stage="RL",
                   cpu_minutes=1)  # fmt: skip


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_builds_its_arms_and_its_quick_version(name):
    """Every arm of every registered experiment is a valid config, full and quick."""
    from agentic_jax.experiments.run import arm_raw
    from agentic_jax.train import config as config_lib
    from agentic_jax.train.setup import build

    experiment = get(name)
    for arm in experiment.arms:
        for quick in (False, True):
            config = config_lib.from_dict(arm_raw(experiment, arm, experiment.seeds, quick))
            build(config)
    assert any(item.startswith("num_seeds=") for item in quick_overrides({}))


def test_fingerprint_tolerance_follows_the_machine():
    rows = {"A": [{"update": 2, "loss/grad_norm": 0.4561976, "stage": "rl"}]}
    here = fp.machine()
    elsewhere = dict(here, isa=["avx2"])
    moved = {"A": [{"update": 2, "loss/grad_norm": 0.4561858, "stage": "rl"}]}  # 2.6e-5 rel.
    ours = {"machine": here, "arms": moved}
    assert fp.compare(ours, {"machine": here, "arms": rows})[0]  # same machine: a change
    assert not fp.compare(ours, {"machine": elsewhere, "arms": rows})[0]  # another: rounding
    real = {"A": [{"update": 2, "loss/grad_norm": 0.61, "stage": "rl"}]}
    assert fp.compare({"machine": here, "arms": real}, {"machine": elsewhere, "arms": rows})[0]


def test_differences_name_where_and_what():
    found = fp.differences({"a": [1.0, "x"]}, {"a": [1.5, "y"], "b": 2}, fp.SAME_MACHINE, "r")
    assert found == ["r.b: missing", "r.a[0]: 1.0, recorded 1.5", "r.a[1]: 'x', recorded 'y'"]


def test_result_json_round_trips_through_render(tmp_path):
    """A result written as JSON renders a section with its command and the seed share."""
    result = {
        "command": "agentic-jax reproduce toy", "seeds": 2, "wall_s": 60.0, "commit": "abc",
        "date": "2026-12-07T00:00:00+00:00", "quick": False,
        "machine": {"cpu": "cpu", "cores": 2, "device": "1 x cpu", "versions": {"jax": "0"}},
        "measures": {"A": {"eval/success@pretrain": [0.4, 0.5], "eval/success@final": [0.9, 1.0]}},
        "effect_shown": {"A": [True, True]},
    }  # fmt: skip
    (tmp_path / "toy.json").write_text(json.dumps(result))
    results, stale = report.load_results(tmp_path)
    text = report.section(_experiment(lambda a, v: True), results["toy"], {"toy": {"since": "c1"}})
    assert "`agentic-jax reproduce toy`" in text and "| 2/2 |" in text
    assert "**Stale since c1**" in text
