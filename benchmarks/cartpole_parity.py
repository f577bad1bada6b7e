"""Classic-control parity: PPO on gymnax CartPole-v1 through our trainer against the
PureJaxRL-style reference loop (``benchmarks/purejaxrl_ppo.py``), same hyperparameters
(5e5 steps, 4 envs x 128 steps, 4 epochs, 4 minibatches), 1 seed and 4 vmapped seeds.

python benchmarks/cartpole_parity.py [--repeats 2] [--no-record]

Both run as one jitted function, compiled ahead of time; the table gives compile seconds,
the best run of ``--repeats``, and the final return: the mean return of the episodes that
ended during the last 10% of updates, averaged over seeds. Our run evaluates once, at the
end (16 greedy episodes), as part of its timed work.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np
import purejaxrl_ppo
from results import record, section

from agentic_jax.cli import resolve_config
from agentic_jax.train import config as config_lib
from agentic_jax.train.loop import make_train


def timed(fn, arg, repeats: int):
    """(compile seconds, best run seconds, output) of a jitted function."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(arg).compile()
    compile_s = time.perf_counter() - start
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(arg))
        best = min(best, time.perf_counter() - start)
    return compile_s, best, out


def final_return(return_sum: np.ndarray, episodes: np.ndarray) -> float:
    """Mean return of episodes ending in the last 10% of updates, averaged over seeds."""
    tail = max(1, return_sum.shape[-1] // 10)
    per_seed = return_sum[..., -tail:].sum(-1) / np.maximum(episodes[..., -tail:].sum(-1), 1)
    return float(np.mean(per_seed))


def ours(seeds: int, repeats: int):
    config = config_lib.load(resolve_config("cartpole_ppo"), ["eval_interval=976"])
    train = make_train(config)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    fn = (lambda k: train(k[0])) if seeds == 1 else jax.vmap(train)
    compile_s, run_s, (_, outputs) = timed(fn, keys, repeats)
    metrics, _ = outputs[0][0]  # the one stage, its one scanned block of chunks
    reward = np.asarray(metrics["train/reward"]).reshape(seeds, -1)
    episodes = np.asarray(metrics["train/episodes"]).reshape(seeds, -1)
    return compile_s, run_s, final_return(reward * episodes, episodes)


def reference(seeds: int, repeats: int):
    train = purejaxrl_ppo.make_train(purejaxrl_ppo.CARTPOLE)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    fn = (lambda k: train(k[0])) if seeds == 1 else jax.vmap(train)
    compile_s, run_s, (_, metrics) = timed(fn, keys, repeats)
    return_sum = np.asarray(metrics["return_sum"]).reshape(seeds, -1)
    episodes = np.asarray(metrics["episodes"]).reshape(seeds, -1)
    return compile_s, run_s, final_return(return_sum, episodes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    lines = [
        "| seeds | loop | final return | compile s | run s | ours / reference (run) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for seeds in (1, 4):
        ref = reference(seeds, args.repeats)
        own = ours(seeds, args.repeats)
        for name, (compile_s, run_s, ret) in (("PureJaxRL-style", ref), ("agentic-jax", own)):
            ratio = f"{own[1] / ref[1]:.2f}" if name == "agentic-jax" else ""
            lines.append(
                f"| {seeds} | {name} | {ret:.1f} | {compile_s:.1f} | {run_s:.2f} | {ratio} |"
            )
            print(lines[-1], flush=True)
    text = section("CartPole-v1 PPO parity (5e5 steps)", "cartpole_parity.py", argv, lines)
    record(text + "\n", args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
