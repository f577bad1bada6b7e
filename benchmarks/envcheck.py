"""Environment quality table: ``agentic-jax envcheck`` on every environment, into RESULTS.md.

python benchmarks/envcheck.py [ENV_ID ...] [--episodes 1024] [--exploitability] [--no-record]

``--exploitability`` fills the column of that name for every environment with a leak variant:
the held-out hack rate (sampled) that GRPO from random initialisation reaches in a fixed short
budget (``EXPLOIT_UPDATES`` updates of 32 tasks x 8 samples, 3 seeds vmapped, mean and
range) on the leak variant (CodeSynth with its leaky grader, ``exploit_pays``), and on the
default variant, where it must be 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from results import environment_line, record

from agentic_jax import envcheck
from agentic_jax.envs import REGISTRY
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop

EXPLOIT_UPDATES = 100
LEAKY_GRADER = {"CodeSynth-v0": {"exploit_pays": True}}  # its leak pays through the grader


def rl_hack_rate(env_id: str, leak: bool, runs: Path) -> str:
    """GRPO from random initialisation for ``EXPLOIT_UPDATES`` updates: the held-out hack rate
    (sampled), mean (lowest-highest of 3 seeds)."""
    overrides = {"leak": leak, **LEAKY_GRADER.get(env_id, {})}
    config = config_lib.from_dict({
        "env": {"id": env_id, "overrides": overrides},
        "model": {"d_model": 64, "n_layers": 2, "n_heads": 4, "mlp_ratio": 4},
        "algo": {"name": "grpo", "lr": 1e-3, "clip_eps_high": 0.28},
        "rollout": {"batching": "episodes", "num_tasks": 32, "group_size": 8},
        "updates": EXPLOIT_UPDATES, "eval_interval": EXPLOIT_UPDATES, "eval_episodes": 512,
        "eval_sample": True, "num_seeds": 3,
    })  # fmt: skip
    row = loop.train(config, runs / f"{env_id}_leak{int(leak)}", overwrite=True)[-1]
    seeds = row["eval/hacks_per_seed"]
    return f"{row['eval/hacks']:.3f} ({min(seeds):.3f}-{max(seeds):.3f})"


def exploitability(env_id: str, runs: Path) -> str:
    """``LEAK; DEFAULT`` hack rates RL reaches, or "-" for an environment without a leak."""
    family = REGISTRY[env_id].family
    if getattr(family, "exploit_oracle_mode", None) is None:
        return "-"
    return f"{rl_hack_rate(env_id, True, runs)}; {rl_hack_rate(env_id, False, runs)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_ids", nargs="*", default=list(REGISTRY))
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--exploitability", action="store_true", help="RL's hack rates (minutes)")
    parser.add_argument("--runs", default="runs/bench/exploitability")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    rows = []
    for env_id in args.env_ids:
        reports = envcheck.envcheck_report(env_id, episodes=args.episodes)
        exploit = exploitability(env_id, Path(args.runs)) if args.exploitability else "-"
        rows += envcheck.markdown_rows(env_id, reports, exploit)
        print(rows[-1], flush=True)
    command = " ".join(["python benchmarks/envcheck.py", *(argv or sys.argv[1:])])
    section = "\n".join(
        ["### Environment quality (envcheck)", "", f"`{command}` ({environment_line()})", "",
         envcheck.MARKDOWN_HEADER, *rows]
    )  # fmt: skip
    record(section + "\n", args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
