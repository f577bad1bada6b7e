"""Running a declared experiment: every arm with its seeds vmapped, into a result (plain data).

``run_experiment`` trains each arm of the experiment's config (``agentic_jax.train.loop.train``,
what ``agentic-jax train`` runs) and returns a ``dict`` ready for JSON: every arm's logged rows
(per-seed evaluation curves included), each measure per seed, which seeds show the effect, and
where and how it was produced (command, commit, date, machine, versions, wall time). With
``quick=True`` every stage is cut to two updates on a small batch: the seconds-long version CI
runs, whose rows are also the experiment's code fingerprint
(``agentic_jax.experiments.fingerprint``).
"""

from __future__ import annotations

import datetime
import subprocess
import time
from pathlib import Path

from rich.console import Console

from agentic_jax.experiments.fingerprint import learning_rows, machine
from agentic_jax.experiments.spec import Arm, Experiment, Measure
from agentic_jax.train.paths import resolve_config

QUICK_SEEDS = 2  # vmapped, so the seed axis is exercised
QUICK_UPDATES = 2  # per stage
QUICK = ("eval_interval=2", "eval_episodes=32", "sft.num_episodes=16")


def config_path(name: str) -> Path:
    return resolve_config(name)


def quick_overrides(raw: dict) -> list[str]:
    """Overrides that cut a config to seconds: two updates per stage, a small batch."""
    stages = raw.get("stages") or []
    items = [*QUICK, f"num_seeds={QUICK_SEEDS}"]
    if stages:
        items += [f"stages.{i}.updates={QUICK_UPDATES}" for i in range(len(stages))]
    else:
        items += [f"updates={QUICK_UPDATES}", f"sft.updates={QUICK_UPDATES}"]
    rollout = raw.get("rollout", {})
    if rollout.get("batching", "episodes") == "episodes":
        items.append(f"rollout.num_tasks={min(8, rollout.get('num_tasks', 8))}")
    else:
        items.append(f"rollout.num_envs={min(16, rollout.get('num_envs', 16))}")
    return items


def arm_raw(experiment: Experiment, arm: Arm, seeds: int, quick: bool) -> dict:
    """The arm's config as a plain dict: the shipped config, the arm, the seeds (or quick)."""
    from agentic_jax.train import config as config_lib

    raw = config_lib.read_yaml(config_path(experiment.config))
    raw = config_lib.apply_overrides(raw, [*arm.overrides, f"num_seeds={seeds}"])
    if arm.keep_stages:
        raw["stages"] = [raw["stages"][index] for index in arm.keep_stages]
    if quick:
        raw = config_lib.apply_overrides(raw, [*quick_overrides(raw), *experiment.quick_overrides])
    return raw


def train_arm(raw: dict, run_dir: Path, console: Console) -> list[dict]:
    from agentic_jax.train import config as config_lib
    from agentic_jax.train import loop

    return loop.train(config_lib.from_dict(raw), run_dir, console, overwrite=True)


def per_seed(rows: list[dict], measure: Measure, seeds: int) -> list[float]:
    """The measure's value for each seed: the metric in the last row of stage ``at`` (or of the
    run, for ``final``)."""
    chosen = [r for r in rows if measure.at in ("final", r.get("stage"))]
    if not chosen:
        stages = sorted({str(r.get("stage")) for r in rows})
        raise ValueError(f"measure {measure.key}: no row of stage {measure.at!r} ({stages})")
    row = chosen[-1]
    if f"{measure.metric}_per_seed" in row:
        return [float(v) for v in row[f"{measure.metric}_per_seed"]]
    if measure.metric not in row:
        raise ValueError(f"measure {measure.key}: {measure.metric!r} is not logged")
    return [float(row[measure.metric])] * seeds


def summarise(experiment: Experiment, arms_rows: dict[str, list[dict]], seeds: int) -> dict:
    """Each arm's measures per seed, and which of its seeds show the effect."""
    values = {
        arm: {m.key: per_seed(rows, m, seeds) for m in experiment.measures}
        for arm, rows in arms_rows.items()
    }
    by_seed = [
        {arm: {key: v[seed] for key, v in measures.items()} for arm, measures in values.items()}
        for seed in range(seeds)
    ]
    tested = experiment.effect.arms or tuple(arms_rows)
    shows = {arm: [bool(experiment.effect.test(arm, seed)) for seed in by_seed] for arm in tested}
    return {"measures": values, "effect_shown": shows}


# What recording a finding rewrites: not a change of the code that produced it.
RENDERED = tuple(
    f":(top,exclude){path}" for path in ("README.md", "benchmarks/RESULTS.md", "benchmarks/results")
)


def git_commit() -> str:
    """The checkout's commit, ``+dirty`` when tracked files other than the rendered findings
    differ from it; "unknown" outside a git checkout (an installed wheel)."""

    def git(*words: str) -> str:
        return subprocess.run(
            ["git", *words],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
            cwd=Path(__file__).parent,
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":/", *RENDERED)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def command_line(experiment: Experiment, seeds: int, quick: bool) -> str:
    parts = ["agentic-jax reproduce", experiment.name]
    if quick:
        parts.append("--quick")
    elif seeds != experiment.seeds:
        parts.append(f"--seeds {seeds}")
    return " ".join(parts)


def run_experiment(
    experiment: Experiment,
    seeds: int | None = None,
    quick: bool = False,
    runs_dir: Path = Path("runs/reproduce"),
    console: Console | None = None,
) -> dict:
    """Train every arm (seeds vmapped) and return the result as plain data."""
    console = console or Console()
    seeds = QUICK_SEEDS if quick else (seeds or experiment.seeds)
    commit, start = git_commit(), time.time()  # the code that runs: the tree at the start
    arms_rows = {}
    for arm in experiment.arms:
        console.print(f"{experiment.name}: arm {arm.name!r}, {seeds} seeds")
        raw = arm_raw(experiment, arm, seeds, quick)
        rows = train_arm(raw, runs_dir / experiment.name / slug(arm.name), console)
        arms_rows[arm.name] = learning_rows(rows)
    return {
        "experiment": experiment.name,
        "command": command_line(experiment, seeds, quick),
        "quick": quick,
        "seeds": seeds,
        "commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "wall_s": round(time.time() - start, 1),
        "arms": {
            arm.name: {"overrides": list(arm.overrides), "rows": arms_rows[arm.name]}
            for arm in experiment.arms
        },
        **summarise(experiment, arms_rows, seeds),
    }


def slug(label: str) -> str:
    """An arm's name as a folder name: ``GRPO, KL to the base`` -> ``GRPO_KL_to_the_base``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label).strip("_")
