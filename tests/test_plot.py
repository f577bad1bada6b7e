"""``agentic-jax plot``: learning curves from run directories."""

import json

import pytest

from agentic_jax import cli, plot
from agentic_jax.plot import plot_runs, read_metrics

pytestmark = pytest.mark.timeout(120)


def write_run(path, rows):
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


ROWS = [
    {"update": 0, "eval/success": 0.1, "train/reward": None},
    {"update": 50, "eval/success": 0.5, "train/reward": 0.4},
    {"update": 100, "eval/success": 0.9, "train/reward": 0.8},
]


def test_plot_writes_a_png_of_several_runs(tmp_path):
    runs = [write_run(tmp_path / "a", ROWS), write_run(tmp_path / "b", ROWS[:2])]
    out = plot_runs(runs, tmp_path / "plots" / "curves.png", ("eval/success", "train/reward"))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["plot", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_plot_bad_input_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["plot", str(tmp_path / "missing"), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    run = write_run(tmp_path / "a", ROWS)
    with pytest.raises(ValueError, match="none of eval/nothing was logged; logged: eval/success"):
        plot_runs([run], tmp_path / "x.png", ("eval/nothing",))
    assert read_metrics(run)[1]["update"] == 50


def test_every_panel_spans_every_stage_and_noise_is_not_magnified():
    rows = [{"update": 0, "stage": "init"}, {"update": 50, "stage": "sft"},
            {"update": 100, "stage": "sft"}, {"update": 150, "stage": "rl"}]  # fmt: skip
    assert plot.stage_starts(rows) == [(0, "sft"), (100, "rl")]
    # A reward of 0.99999-1.0 is drawn on 0..1.08, not on a range of 1e-5.
    assert plot.y_limits("train/reward", [0.99999, 1.0]) == (0.0, 1.08)
    assert plot.y_limits("eval/success", [0.5]) == (-0.02, 1.05)
    low, high = plot.y_limits("loss/policy", [-0.01, 0.01])
    assert low < -0.01 and high > 0.01


def test_a_run_of_several_seeds_is_drawn_as_a_band(tmp_path):
    rows = [
        {"update": 0, "eval/success": 0.2, "eval/success_per_seed": [0.1, 0.2, 0.3]},
        {"update": 50, "eval/success": 0.6, "eval/success_per_seed": [0.4, 0.9, 0.5]},
    ]
    assert plot.seed_band(rows, "eval/success") == ([0, 50], [0.1, 0.4], [0.3, 0.9])
    assert plot.seed_band(ROWS, "eval/success") is None
    out = plot_runs([write_run(tmp_path / "a", rows)], tmp_path / "band.png", ("eval/success",))
    assert out.stat().st_size > 1000
