"""Environment throughput: steps/s of every environment under a random legal policy, at
1 to 65,536 parallel episodes, next to gymnax CartPole-v1 and Catch-bsuite in the same run.

python benchmarks/env_throughput.py [--envs KBLookup-v0 ...] [--sizes 1 256 4096 16384 65536]
                                    [--no-record]

Each measurement is one jitted ``lax.scan`` of auto-resetting ``env.step`` calls over a
vmapped batch (the way a PureJaxRL loop steps gymnax), timed after compilation, best of 3.
Memory per episode is the carry (observation + state) in bytes, and XLA's temporary buffers
for the whole scan divided by the batch size.
"""

from __future__ import annotations

import argparse
import sys
import time

import gymnax
import jax
import jax.numpy as jnp
from results import environment_line, record

from agentic_jax import envs
from agentic_jax.harness import Harness

PEERS = ("CartPole-v1", "Catch-bsuite")
SIZES = (1, 256, 4096, 16384, 65536)
STEPS_PER_CALL = 2**21  # env steps per timed call, spread over the batch (8 to 512 per env)


def random_action(env, key, obs, params):
    """A uniformly random legal token for our environments, a random action for gymnax's."""
    if isinstance(env, Harness):
        return jax.random.categorical(key, jnp.where(obs.legal_mask, 0.0, -jnp.inf))
    return env.action_space(params).sample(key)


def make_rollout(env, params, num_envs: int, num_steps: int):
    """``rollout(key) -> total reward``: ``num_steps`` vmapped, auto-resetting steps."""
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    act = jax.vmap(lambda k, o: random_action(env, k, o, params))

    def rollout(key):
        reset_keys = jax.random.split(key, num_envs)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)

        def body(carry, step_key):
            obs, state, total = carry
            act_key, env_key = jax.random.split(step_key)
            action = act(jax.random.split(act_key, num_envs), obs)
            obs, state, reward, _, _, _ = step(
                jax.random.split(env_key, num_envs), state, action, params
            )
            return (obs, state, total + reward.sum()), None

        keys = jax.random.split(jax.random.fold_in(key, 1), num_steps)
        (obs, state, total), _ = jax.lax.scan(body, (obs, state, jnp.float32(0)), keys)
        return total, (obs, state)

    return jax.jit(rollout)


def measure(env_id: str, num_envs: int, repeats: int = 3) -> dict:
    env, params = envs.make(env_id)
    num_steps = max(8, min(512, STEPS_PER_CALL // num_envs))
    rollout = make_rollout(env, params, num_envs, num_steps)
    key = jax.random.PRNGKey(0)
    compiled = rollout.lower(key).compile()
    start = time.perf_counter()
    _, carry = jax.block_until_ready(compiled(key))
    first = time.perf_counter() - start
    best = first
    for i in range(repeats - 1):
        start = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.PRNGKey(i + 1)))
        best = min(best, time.perf_counter() - start)
    carry_bytes = sum(x.nbytes for x in jax.tree.leaves(carry)) / num_envs
    analysis = compiled.memory_analysis()
    temp = getattr(analysis, "temp_size_in_bytes", 0) if analysis is not None else 0
    return {
        "env": env_id,
        "num_envs": num_envs,
        "steps_per_s": num_envs * num_steps / best,
        "carry_bytes": carry_bytes,
        "temp_bytes": temp / num_envs,
    }


def table(rows: list[dict], sizes: list[int]) -> list[str]:
    """Steps/s per environment and batch size, the ratio to CartPole, and memory."""
    by_key = {(r["env"], r["num_envs"]): r for r in rows}
    header = (
        "| environment | " + " | ".join(f"{n:,} envs" for n in sizes)
        + " | / CartPole at 4,096 | carry bytes/episode | XLA temp bytes/episode (largest batch) |"
    )  # fmt: skip
    lines = [header, "|---|" + "---:|" * (len(sizes) + 3)]
    reference = by_key.get(("CartPole-v1", 4096))
    for env_id in dict.fromkeys(r["env"] for r in rows):
        cells = [
            f"{by_key[(env_id, n)]['steps_per_s']:,.0f}" if (env_id, n) in by_key else "-"
            for n in sizes
        ]
        own = by_key.get((env_id, 4096))
        ratio = f"{own['steps_per_s'] / reference['steps_per_s']:.2f}" if own and reference else "-"
        largest = [by_key[(env_id, n)] for n in sizes if (env_id, n) in by_key][-1]
        memory = f"{largest['carry_bytes']:,.0f} | {largest['temp_bytes']:,.0f}"
        lines.append(f"| {env_id} | " + " | ".join(cells) + f" | {ratio} | {memory} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="*", default=[*PEERS, *envs.registered_envs()])
    parser.add_argument("--sizes", nargs="*", type=int, default=list(SIZES))
    parser.add_argument("--no-record", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    unknown = [e for e in args.envs if e not in envs.REGISTRY and e not in gymnax.registered_envs]
    if unknown:
        parser.error(
            f"unknown environment(s) {unknown}; valid: {envs.registered_envs()} or gymnax ids"
        )
    rows = []
    for env_id in args.envs:
        for num_envs in args.sizes:
            try:
                row = measure(env_id, num_envs)
            except (MemoryError, RuntimeError) as error:  # XLA reports out-of-memory as these
                print(f"{env_id} at {num_envs:,} envs: skipped ({str(error)[:80]})", flush=True)
                continue
            rows.append(row)
            print(
                f"{env_id:14s} {num_envs:>6,} envs: {row['steps_per_s']:>14,.0f} steps/s",
                flush=True,
            )
    command = " ".join(
        ["python benchmarks/env_throughput.py", *(argv if argv is not None else sys.argv[1:])]
    )
    section = "\n".join(
        ["### Environment throughput (random legal policy, steps/s)", "",
         f"`{command}` ({environment_line()})", "", *table(rows, args.sizes)]
    )  # fmt: skip
    record(section + "\n", args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
