"""The environment quality report on a small budget."""

import json

import pytest

from agentic_jax import cli, envcheck

pytestmark = pytest.mark.timeout(600)


@pytest.mark.slow
def test_kblookup_quality_report():
    report = envcheck.check_level(
        "KBLookup-v0", {"hops": 1}, episodes=64, draws=2000, speed_envs=64
    )
    assert report["deterministic"] is True
    assert report["oracle_success"] == 1.0
    assert report["random_success"] < 0.25
    assert report["distinct_tasks"] == 2000  # every episode draws a fresh knowledge base
    assert report["train_test_overlap"] == 0.0
    assert report["feedback_richness"] == 1.0  # a search result is the hidden knowledge base
    assert report["hack_rate"] == 1.0 and report["leak_success"] == 1.0
    assert report["shortcut_success_without_leak"] == 0.0
    assert report["steps_per_s"] > 0
    assert report["wait_tokens"]["max"] == 0  # no slow tool
    assert 0 < report["episode_length"]["p50"] <= report["episode_length"]["max"]
    row = envcheck.markdown_rows("KBLookup-v0", [report])[0]
    assert row.startswith("| KBLookup-v0 | hops=1 | yes | 1.000 |")
    json.dumps(report)  # the CLI writes it as JSON


def test_envcheck_rejects_an_unknown_id(capsys):
    assert cli.main(["envcheck", "KBLookUp-v0"]) == 2
    assert "valid ids: all, KBLookup-v0" in capsys.readouterr().err


@pytest.mark.slow
def test_a_heavy_tailed_api_shows_in_the_wait_quantiles():
    """FlakyAPI's api with Pareto latencies (mean 4, alpha 1.5) against the uniform default:
    the oracle that retries (mode 1) waits far longer at the tail than at the median."""
    level = {"latency_kind": 2, "latency_mean": 4.0, "latency_shape": 1.5, "fail_prob": 0.0}
    heavy = envcheck.check_level("FlakyAPI-v0", level, episodes=256, draws=500, speed_envs=64)
    waits = heavy["wait_tokens"]
    assert waits["p50"] < waits["p99"] <= waits["max"]
    assert heavy["oracle_success"] == 1.0
