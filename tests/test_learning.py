"""RL learns: from one fixed small base, each RL algorithm lifts held-out success by a clear
margin within a few dozen updates. A sign flipped in a loss, a broken mask or advantage, or an
update that does nothing fails here (the other tests check values, not learning)."""

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from agentic_jax.algos import ALGORITHMS
from agentic_jax.cli import resolve_config
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

SMALL = ["eval_episodes=256", "num_seeds=2", "seed=1"]
BASE = [*SMALL, "stages.0.updates=400", "stages.1.updates=1", "eval_interval=200"]
RL_UPDATES = 30
GROUPED = ["rollout.num_tasks=64", "rollout.group_size=8"]
STREAM = ["rollout.batching=stream", "rollout.num_envs=256", "rollout.rollout_len=32",
          "algo.num_minibatches=4", "algo.gae_lambda=0.95", "algo.vf_coef=0.5",
          "algo.entropy_coef=0.001"]  # fmt: skip
SETTINGS = {"gspo": ["algo.clip_eps_low=3e-4", "algo.clip_eps_high=4e-4"]}  # the paper's


def algorithm_overrides(name: str) -> list[str]:
    """Each registered algorithm on the batching it needs (a critic: stream, else groups)."""
    batching = STREAM if ALGORITHMS[name].critic else GROUPED
    return [f"algo.name={name}", *batching, *SETTINGS.get(name, [])]


MARGIN = 0.15  # held-out success gained over the base, each seed


def held_out(rows: list[dict]) -> np.ndarray:
    return np.asarray(rows[-1]["eval/success_per_seed"])


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The default recipe's pretrain stage, shortened: a base near 0.4."""
    run_dir = tmp_path_factory.mktemp("base") / "run"
    config = config_lib.load(resolve_config("default"), BASE)
    rows = loop.train(config, run_dir, Console(quiet=True))
    pretrained = [r for r in rows if r["stage"] == "pretrain"]
    return run_dir, held_out(pretrained)


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))  # every registered algorithm
def test_rl_lifts_a_fixed_base(base, algorithm, tmp_path):
    base_dir, base_success = base
    assert np.all(base_success < 0.7), f"the base is already good: {base_success}"
    overrides = [*SMALL, f"init={base_dir}", f"stages.1.updates={RL_UPDATES}",
                 f"eval_interval={RL_UPDATES}", *algorithm_overrides(algorithm)]  # fmt: skip
    raw = config_lib.apply_overrides(config_lib.read_yaml(resolve_config("default")), overrides)
    raw["stages"] = raw["stages"][1:]  # RL alone, from the base
    rows = loop.train(config_lib.from_dict(raw), tmp_path / "rl", Console(quiet=True))
    after = held_out(rows)
    print(f"{algorithm}: base {base_success} -> {after}")
    assert np.all(after - base_success[:1] >= MARGIN), (
        f"{algorithm} did not learn: held-out success {base_success[:1]} (base, seed 0's "
        f"parameters) -> {after} after {RL_UPDATES} updates"
    )
