"""Short runs whose logged rows are recorded in ``tests/golden.json``: the redesign's proof that
nothing changed but the shape (``tests/test_golden.py`` reruns them and compares).

Each run is a shipped config shrunk to seconds (a small model and batch, a few updates, an
evaluation every 2 updates), trained through the host loop the command line uses
(``agentic_jax.train.loop.train``). Recorded per run: every logged row, every metric but wall
time and tokens/s. Besides the configs: a short sweep's summary, and a run resumed after a
kill (emulated exactly: the checkpoints after update 4 and the rows after them are removed,
which is what a kill between those checkpoints leaves).

Re-record (only in a commit that changes results on purpose, and say so in RESULTS.md)::

    python tests/golden_runs.py
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).with_name("golden.json")

SMALL = ["model.d_model=32", "model.n_layers=1", "eval_episodes=32", "eval_interval=2"]
RUNS: dict[str, list[str]] = {
    "kblookup_sft_rl": [*SMALL, "env.overrides.max_len=28", "rollout.num_tasks=8",
                        "rollout.group_size=4", "sft.updates=4", "sft.num_episodes=16",
                        "updates=4"],
    "kblookup_ppo": [*SMALL, "rollout.num_envs=16", "rollout.rollout_len=16", "sft.updates=2",
                     "sft.num_episodes=16", "updates=4"],
    "flakyapi_decoupled": [*SMALL, "rollout.num_tasks=8", "rollout.group_size=4",
                           "rollout.staleness=2", "sft.updates=2", "sft.num_episodes=16",
                           "updates=6"],
    "qwen3_pipeline": [*SMALL, "env.overrides.width=4", "rollout.num_tasks=8",
                       "rollout.group_size=4", "sft.num_episodes=16", "stages.0.updates=2",
                       "stages.1.updates=2", "stages.2.updates=2", "stages.3.updates=2"],
    "kblookup_curriculum": [*SMALL, "rollout.num_tasks=8", "rollout.group_size=4",
                            "sft.updates=2", "sft.num_episodes=16", "updates=4"],
    "cartpole_ppo": ["eval_episodes=4", "eval_interval=2", "rollout.num_envs=4",
                     "rollout.rollout_len=32", "updates=4"],
}  # fmt: skip
SWEEP = ("kblookup_sft_rl", ["algo.lr=1e-4,1e-3", "seed=0:2"])
RESUMED = "kblookup_sft_rl"
KILLED_AFTER = 4  # the newest checkpoint a kill left


def _config(name: str, overrides: list[str]):
    import yaml

    from agentic_jax.train import config as config_lib

    raw = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    if name == "qwen3_pipeline":  # list items are set in place (overrides address dicts)
        stages = {
            o.split("=")[0]: int(o.split("=")[1]) for o in overrides if o.startswith("stages.")
        }
        for key, updates in stages.items():
            raw["stages"][int(key.split(".")[1])]["updates"] = updates
        overrides = [o for o in overrides if not o.startswith("stages.")]
    return config_lib.from_dict(config_lib.apply_overrides(raw, overrides))


def _train(config, run_dir: Path) -> list[dict]:
    from rich.console import Console

    from agentic_jax.train import loop

    return loop.train(config, run_dir, Console(quiet=True))


def _resume(run_dir: Path) -> list[dict]:
    from rich.console import Console

    from agentic_jax.train import loop

    return loop.resume(run_dir, None, Console(quiet=True))


def _sweep(base_name: str, items: list[str], out: Path) -> list[dict]:
    import yaml
    from rich.console import Console

    from agentic_jax.train import config as config_lib
    from agentic_jax.train import sweep

    base = yaml.safe_load((REPO / "configs" / f"{base_name}.yaml").read_text())
    base = config_lib.apply_overrides(base, RUNS[base_name])
    return sweep.sweep(base, items, out, Console(quiet=True))


def record_run(name: str, folder: Path) -> list[dict]:
    from agentic_jax.experiments.fingerprint import learning_rows

    return learning_rows(_train(_config(name, RUNS[name]), folder / name))


def record_resume(folder: Path) -> list[dict]:
    """Train, cut the run back to what a kill after update ``KILLED_AFTER`` leaves, resume."""
    run_dir = folder / "resumed"
    _train(_config(RESUMED, RUNS[RESUMED]), run_dir)
    for step in (run_dir / "checkpoints").iterdir():
        if step.name.isdigit() and int(step.name) > KILLED_AFTER:
            shutil.rmtree(step)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["update"] <= KILLED_AFTER + 2]
    (run_dir / "metrics.jsonl").write_text("".join(line + "\n" for line in kept))
    from agentic_jax.experiments.fingerprint import learning_rows

    return learning_rows(_resume(run_dir))


def record_all() -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in RUNS:
            out[name] = record_run(name, folder)
            print(f"{name}: {len(out[name])} rows", flush=True)
        out["sweep"] = _sweep(SWEEP[0], SWEEP[1], folder / "sweep")
        out["resumed"] = record_resume(folder)
    return out


def record_with_machine() -> dict:
    """The rows and the machine they were recorded on (the comparison is like with like)."""
    from agentic_jax.experiments.fingerprint import machine

    return {"machine": machine(), "runs": record_all()}


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    GOLDEN.write_text(json.dumps(record_with_machine(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
