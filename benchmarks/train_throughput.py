"""Training throughput: tokens/s of the full jitted GRPO update (rollout + learning) with the
default transformer at several batch sizes, the environment's share of the step, and the
achieved FLOP/s against a matmul ceiling measured in the same run.

python benchmarks/train_throughput.py [--tasks 8 32 64 256] [--against REV] [--no-record]

- one update = rollout of ``tasks x 8`` episodes to the transcript limit (31 steps) with KV-cache
  decoding, then one epoch of the GRPO loss over the whole batch (the default config's RL
  stage); best of 3 after compilation;
- environment share: the same rollout scan with a uniform random legal policy instead of the
  transformer (environment code and the scan alone), over the full update's time;
- FLOPs are counted from the model's shapes (XLA's cost analysis counts a loop body once):
  every Dense kernel costs 2 x its size per token, attention 4 x layers x length x width per
  token (the decode step attends over the whole cache, masked); the update's forward and
  backward cost 3 x a forward. The ceiling is a jitted 2048 x 2048 float32 matmul.
- ``--against REV``: the same measurement of the code at git revision ``REV`` (checked out
  in a temporary worktree), each batch size measured in turn in fresh processes, old then
  new, so that both see the same machine load; the table gains the ratio of tokens/s. The
  old path needs no flag in today's code: it is the old revision.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
from results import best_time, record, section

from agentic_jax.cli import resolve_config
from agentic_jax.rollout import random_step, rollout_episodes
from agentic_jax.train import config as config_lib
from agentic_jax.train import update
from agentic_jax.train.setup import build


def matmul_ceiling(n: int = 2048) -> float:
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    return 2 * n**3 / best_time(lambda x: x @ x, a, repeats=5)


def dense_params(params) -> int:
    """Scalars in Dense kernels (the embedding tables are lookups, not matmuls)."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return sum(
        int(leaf.size) for path, leaf in leaves if jax.tree_util.keystr(path).endswith("['kernel']")
    )


def measure(num_tasks: int) -> dict:
    config = config_lib.load(
        resolve_config("kblookup_sft_rl"), [f"rollout.num_tasks={num_tasks}", "sft.updates=0"]
    )
    setup = build(config)
    env = setup.actor.env
    stage = len(setup.stages) - 1
    state = update.start_stage(setup, update.init(setup, jax.random.PRNGKey(0)), stage)
    update_s = best_time(lambda s: update.rl_update(setup, stage, s)[0], state)
    n, steps = setup.num_envs, env.max_len - 1
    env_s = best_time(
        lambda s: rollout_episodes(env, s.env_params, random_step, None, s.key, num_tasks, 8).stats,
        state,
    )
    m = config.model
    attention = 4 * m.n_layers * env.max_len * m.d_model
    forward_per_token = 2 * dense_params(state.params) + attention
    flops = n * steps * forward_per_token * (1 + 3 * config.algo.update_epochs)
    _, metrics = jax.jit(lambda s: update.rl_update(setup, stage, s))(state)
    return {
        "episodes": n,
        "update_s": update_s,
        "tokens_per_s": n * steps / update_s,
        "agent_tokens_per_s": float(metrics["train/agent_tokens"]) / update_s,
        "env_share": env_s / update_s,
        "flops_per_s": flops / update_s,
    }


def measure_in_process(num_tasks: int, code_root: Path) -> dict:
    """``measure(num_tasks)`` in a fresh process importing agentic_jax from ``code_root``."""
    env = os.environ | {"PYTHONPATH": str(code_root)}
    out = subprocess.run(
        [sys.executable, __file__, "--measure-json", str(num_tasks)],
        env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def old_revision_tree(revision: str, into: Path) -> Path:
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        ["git", "-C", str(root), "worktree", "add", "--detach", "-f", str(into), revision],
        check=True, capture_output=True,
    )  # fmt: skip
    return into


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", type=int, default=[8, 32, 64, 256])
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--measure-json", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.measure_json is not None:
        print(json.dumps(measure(args.measure_json)))
        return 0
    ceiling = matmul_ceiling()
    lines = [
        "| episodes per update | update s | tokens/s | agent tokens/s | environment share "
        "| model GFLOP/s | of matmul ceiling |" + (f" tokens/s at {args.against} | ratio |"
                                                   if args.against else ""),
        "|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.against else ""),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        old_root = old_revision_tree(args.against, Path(scratch) / "old") if args.against else None
        new_root = Path(__file__).resolve().parents[1]
        for num_tasks in args.tasks:
            old = measure_in_process(num_tasks, old_root) if old_root else None
            r = measure_in_process(num_tasks, new_root) if old_root else measure(num_tasks)
            lines.append(
                f"| {r['episodes']:,} | {r['update_s']:.3f} | {r['tokens_per_s']:,.0f} "
                f"| {r['agent_tokens_per_s']:,.0f} | {r['env_share']:.1%} "
                f"| {r['flops_per_s'] / 1e9:.2f} | {r['flops_per_s'] / ceiling:.1%} |"
                + (f" {old['tokens_per_s']:,.0f} | {r['tokens_per_s'] / old['tokens_per_s']:.2f} |"
                   if old else "")
            )  # fmt: skip
            print(lines[-1], flush=True)
        if old_root:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_root)],
                           cwd=new_root, check=False, capture_output=True)  # fmt: skip
    ceiling_line = f"Matmul ceiling (2048 x 2048 float32): {ceiling / 1e9:.1f} GFLOP/s."
    text = section("Training throughput (default transformer, GRPO update)",
                   "train_throughput.py", argv, [ceiling_line, "", *lines])  # fmt: skip
    record(text + "\n", args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
