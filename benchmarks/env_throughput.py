"""Environment throughput: steps/s of every environment under a random legal policy, at
1 to 65,536 parallel episodes, next to gymnax CartPole-v1 and Catch-bsuite in the same run.

python benchmarks/env_throughput.py [--envs KBLookup-v0 ...] [--sizes 1 256 4096 16384 65536]
                                    [--no-record]

Each measurement is one jitted ``lax.scan`` of auto-resetting steps over a batch, timed
after compilation, best of 3. gymnax's environments step as a PureJaxRL loop steps them,
``vmap(env.step)``, which resets inside every environment at every step. Ours step as the
``stream`` rollout does (``rollout.stream_batch_step``): one batch step, then fresh episodes
for at most a quarter of the slots; the column "vmap(env.step)" gives ours stepped the
gymnax way too. Actions: a uniform random legal token (``rollout.sample_legal``) for ours,
``action_space.sample`` for gymnax's. Memory per episode is the carry (observation + state)
in bytes, and XLA's temporary buffers for the whole scan divided by the batch size.
Steps/s counts real steps only: a slot of ours that waits in ``DONE`` for a fresh episode
takes none (the "real / slot steps" column gives the share that are real).
"""

from __future__ import annotations

import argparse
import collections
import glob
import re
import sys
import tempfile
import time

import gymnax
import jax
import jax.numpy as jnp
from results import environment_line, record

from agentic_jax import envs
from agentic_jax.harness import Harness, Phase
from agentic_jax.rollout import (
    default_max_resets,
    episodes_batch_step,
    sample_legal,
    stream_batch_step,
)

PEERS = ("CartPole-v1", "Catch-bsuite")
SIZES = (1, 256, 4096, 16384, 65536)
STEPS_PER_CALL = 2**21  # env steps per timed call, spread over the batch (8 to 512 per env)


def random_actions(env, key, obs, num_envs: int, policy: str = "random"):
    """One key for the whole batch, as PureJaxRL samples: a uniformly random legal token for
    our environments, a uniformly random action for gymnax's (``policy="first"``: the first
    legal token, no sampling)."""
    if not isinstance(env, Harness):
        return jax.random.randint(key, (num_envs,), 0, env.num_actions)
    if policy == "first":
        return jnp.argmax(obs.legal_mask, axis=-1)
    return sample_legal(key, obs.legal_mask)


def batch_step(env, num_envs: int, gymnax_style: bool, resets: bool = True):
    """``step(key, state, action, params) -> (obs, state, reward)`` for the whole batch."""
    if isinstance(env, Harness) and not resets:
        step = episodes_batch_step(env)
        return lambda key, state, action, params: step(key, state, action, params)[:3]
    if isinstance(env, Harness) and not gymnax_style:
        step = stream_batch_step(env, default_max_resets(num_envs))
        return lambda key, state, action, params: step(key, state, action, params)[:3]
    vmapped = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    return lambda key, state, action, params: vmapped(
        jax.random.split(key, num_envs), state, action, params
    )[:3]


def make_rollout(env, params, num_envs: int, num_steps: int, gymnax_style=False, resets=True,
                 policy="random"):  # fmt: skip
    """``rollout(key) -> ((total reward, real steps), final carry)``: ``num_steps``
    auto-resetting batch steps. A real step is one taken by a slot whose episode is running
    (ours: not ``Phase.DONE``, waiting for a fresh episode); every gymnax step is real."""
    step = batch_step(env, num_envs, gymnax_style, resets)

    def rollout(key):
        reset_keys = jax.random.split(key, num_envs)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)

        def body(carry, step_key):
            obs, state, total, real = carry
            act_key, env_key = jax.random.split(step_key)
            with jax.named_scope("policy"):
                action = random_actions(env, act_key, obs, num_envs, policy)
            running = state.phase != Phase.DONE if isinstance(env, Harness) else True
            real = real + jnp.sum(jnp.broadcast_to(running, (num_envs,)))
            obs, state, reward = step(env_key, state, action, params)
            return (obs, state, total + reward.sum(), real), None

        keys = jax.random.split(jax.random.fold_in(key, 1), num_steps)
        start = (obs, state, jnp.float32(0), jnp.int32(0))
        (obs, state, total, real), _ = jax.lax.scan(body, start, keys)
        return (total, real), (obs, state)

    return jax.jit(rollout)


def measure(env_id: str, num_envs: int, repeats: int = 3, **variant) -> dict:
    env, params = envs.make(env_id)
    num_steps = max(8, min(512, STEPS_PER_CALL // num_envs))
    rollout = make_rollout(env, params, num_envs, num_steps, **variant)
    key = jax.random.PRNGKey(0)
    compiled = rollout.lower(key).compile()
    start = time.perf_counter()
    (_, real), carry = jax.block_until_ready(compiled(key))
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
        "steps_per_s": int(real) / best,  # real steps: a slot waiting in Phase.DONE is not one
        "slot_steps_per_s": num_envs * num_steps / best,
        "utilisation": int(real) / (num_envs * num_steps),
        "carry_bytes": carry_bytes,
        "temp_bytes": temp / num_envs,
    }


def table(rows: list[dict], sizes: list[int]) -> list[str]:
    """Steps/s per environment and batch size, the ratio to CartPole, and memory."""
    by_key = {(r["env"], r["num_envs"]): r for r in rows}
    header = (
        "| environment | " + " | ".join(f"{n:,} envs" for n in sizes)
        + " | / CartPole at 4,096 | real / slot steps at 4,096 | vmap(env.step) at 4,096"
        " | carry bytes/episode"
        " | XLA temp bytes/episode (largest batch) |"
    )  # fmt: skip
    lines = [header, "|---|" + "---:|" * (len(sizes) + 5)]
    reference = by_key.get(("CartPole-v1", 4096))
    for env_id in dict.fromkeys(r["env"] for r in rows):
        cells = [
            f"{by_key[(env_id, n)]['steps_per_s']:,.0f}" if (env_id, n) in by_key else "-"
            for n in sizes
        ]
        own = by_key.get((env_id, 4096))
        ratio = f"{own['steps_per_s'] / reference['steps_per_s']:.2f}" if own and reference else "-"
        utilisation = f"{own['utilisation']:.3f}" if own else "-"
        largest = [by_key[(env_id, n)] for n in sizes if (env_id, n) in by_key][-1]
        memory = f"{largest['carry_bytes']:,.0f} | {largest['temp_bytes']:,.0f}"
        gymnax_way = by_key.get((env_id, "vmap"))
        gymnax_way = f"{gymnax_way['steps_per_s']:,.0f}" if gymnax_way else "-"
        lines.append(
            f"| {env_id} | "
            + " | ".join(cells)
            + f" | {ratio} | {utilisation} | {gymnax_way} | {memory} |"
        )
    return lines


def ablation(env_id: str, num_envs: int = 4096) -> list[str]:
    """Where an environment's step time goes: without resets, without sampling, neither.
    Slot-steps/s: the cost of a batch step, whether or not a slot's episode is running."""
    variants = {
        "as measured (random legal token, resets)": {},
        "no resets (slots idle when done)": {"resets": False},
        "no sampling (first legal token)": {"policy": "first"},
        "neither": {"resets": False, "policy": "first"},
    }
    lines = [f"| {env_id}, {num_envs:,} envs | slot-steps/s |", "|---|---:|"]
    for name, variant in variants.items():
        rate = measure(env_id, num_envs, **variant)["slot_steps_per_s"]
        lines.append(f"| {name} | {rate:,.0f} |")
    return lines


def kernel_profile(env_id: str, num_envs: int = 4096, num_steps: int = 64) -> list[str]:
    """Where a batch step's kernel time goes, from a ``jax.profiler`` trace of one rollout:
    each XLA kernel's time (summed over the CPU's threads; a loop counts once, with its body)
    by the part of the step it belongs to (``jax.named_scope``), and, apart, the loops that
    generate random bits (threefry's CPU lowering is a rolled loop). CPU only."""
    env, params = envs.make(env_id)
    compiled = make_rollout(env, params, num_envs, num_steps).lower(jax.random.PRNGKey(0))
    compiled = compiled.compile()
    jax.block_until_ready(compiled(jax.random.PRNGKey(0)))
    op_names = dict(re.findall(r'%([\w.\-]+) = .*?op_name="([^"]*)"', compiled.as_text()))
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        jax.block_until_ready(compiled(jax.random.PRNGKey(1)))
        jax.profiler.stop_trace()
        trace = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0]
        data = jax.profiler.ProfileData.from_file(trace)
    parts = collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            if "Eigen" not in line.name:  # XLA's worker threads run the kernels
                continue
            end = 0.0  # kernels inside a loop's body are part of the loop's own event
            for event in sorted(line.events, key=lambda e: e.start_ns):
                if event.name.startswith("ThunkExecutor") or event.start_ns < end:
                    continue
                end = event.start_ns + event.duration_ns
                op_name = op_names.get(event.name, "")
                part = next((p for p in ("policy", "fresh_episodes") if p in op_name), "step")
                random = event.name.startswith("while") and re.search(
                    r"threefry|_uniform|_randint|_split|_bits", op_name
                )
                parts[(part, "random bits" if random else "other kernels")] += event.duration_ns
    total = sum(parts.values())
    if not total:  # another backend: its kernels run on device streams, not these threads
        return [f"(No kernel profile: it reads XLA's CPU worker threads; this ran on "
                f"{jax.default_backend()}.)"]  # fmt: skip
    names = {"policy": "random legal policy", "step": "environment step",
             "fresh_episodes": "fresh episodes (bounded resets)"}  # fmt: skip
    lines = [
        f"| {env_id}, {num_envs:,} envs: part of the batch step | kernels | ms per step "
        "(summed over threads) | share |",
        "|---|---|---:|---:|",
    ]
    for (part, kind), ns in sorted(parts.items(), key=lambda item: -item[1]):
        lines.append(f"| {names[part]} | {kind} | {ns / 1e6 / num_steps:.3f} | {ns / total:.0%} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="*", default=[*PEERS, *envs.registered_envs()])
    parser.add_argument("--sizes", nargs="*", type=int, default=list(SIZES))
    parser.add_argument("--no-record", action="store_true", help="print only")
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
        if env_id in envs.REGISTRY and 4096 in args.sizes:
            row = measure(env_id, 4096, gymnax_style=True)
            rows.append(row | {"num_envs": "vmap"})
            print(f"{env_id:14s} vmap(env.step) at 4,096: {row['steps_per_s']:,.0f} steps/s")
    command = " ".join(
        ["python benchmarks/env_throughput.py", *(argv if argv is not None else sys.argv[1:])]
    )
    ours = [r for r in rows if r["env"] in envs.REGISTRY and r["num_envs"] == 4096]
    profile = []
    if ours:
        fastest = max(ours, key=lambda r: r["steps_per_s"])["env"]
        profile = ["", f"Where the step time goes in the fastest of ours ({fastest}):", "",
                   *ablation(fastest), "", *kernel_profile(fastest)]  # fmt: skip
    section = "\n".join(
        ["### Environment throughput (random legal policy, steps/s)", "",
         f"`{command}` ({environment_line()})", "", *table(rows, args.sizes), *profile]
    )  # fmt: skip
    record(section + "\n", args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
