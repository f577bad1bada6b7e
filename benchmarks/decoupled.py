"""Decoupled rollouts with slow tools: learning and throughput with stale parameters, and
the straggler cost of ``episodes`` batching against ``stream``.

python benchmarks/decoupled.py [--staleness 0 1 2 4] [--no-record]
python benchmarks/decoupled.py --corrections [--no-record]

1. ``configs/flakyapi_decoupled.yaml`` trained with ``rollout.staleness`` = k for each k:
   held-out success per evaluation, tokens/s of the RL stage, and the mean KL between the
   learner's and the stale behaviour policy. Curves in ``benchmarks/decoupled.png``.
2. Slot utilisation in 1,024 slots: the retry-then-fallback oracle at FlakyAPI-v0's three
   difficulty levels (the api's latency grows), and the first trained policy, sampling.
   ``episodes`` batching ends a batch when its slowest episode ends, so its throughput is
   slots / longest episode; ``stream`` refills a slot as soon as its episode ends, so it is
   episodes finished / slot-steps.
3. Phase times of one on-policy update (rollout, then learning), measured apart: on one
   device they add up; an actor and a learner on two devices, k >= 1 apart, overlap them,
   so per update the bound is the longer phase instead of the sum.

``--overlap``: the actor and the learner measured, not bounded: the k = 1 config trained in
turn on one device, then with the training option ``rollout.overlap=true`` on two (the
actor rolls out update t + 1 while the learner runs update t; ``train/overlap.py``). On a
CPU with one device it reruns itself with ``--xla_force_host_platform_device_count=2``.

``--corrections``: the same config with a faster learner (``FAST``: lr 1e-3, 2 epochs x 2
minibatches), on-policy against k = 4 under each correction (``algo.off_policy``: none, tis,
decoupled); curves in ``benchmarks/decoupled_corrections.png``.
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
import numpy as np
from results import best_time, record, section
from rich.console import Console

from agentic_jax import envs
from agentic_jax.cli import resolve_config
from agentic_jax.models import TransformerPolicy
from agentic_jax.rollout import oracle_step, rollout_episodes, rollout_stream
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop, update
from agentic_jax.train.saved import load_run
from agentic_jax.train.setup import build

SLOTS = 1024
PLOT = Path("runs") / "bench" / "decoupled.png"
# A learner that moves further per update, where a stale actor lags far enough to matter.
FAST = ("algo.lr=1e-3", "algo.update_epochs=2", "algo.num_minibatches=2")
CORRECTION_RUNS = [(0, "decoupled"), (4, "none"), (4, "tis"), (4, "decoupled")]
CORRECTIONS_PLOT = Path("runs") / "bench" / "decoupled_corrections.png"


SLOT_HEADER = [
    "| policy | FlakyAPI level | episodes: mean / longest length "
    "| episodes: episodes per 1k slot-steps | stream: episodes per 1k slot-steps "
    "| stream / episodes |",
    "|---|---|---:|---:|---:|---:|",
]


def slot_row(name, env, params, step, cache_for, level: str) -> str:
    """One policy in ``SLOTS`` slots, batched both ways. ``cache_for(transcript, position)``
    gives the policy's carry for slots that start mid-way (None for a stateless policy)."""
    key = jax.random.PRNGKey(0)
    episodes = jax.jit(
        lambda k: rollout_episodes(env, params, step, cache_for(None, None), k, SLOTS)
    )
    final = episodes(key).env_state
    lengths = np.asarray(final.length)
    episodes_rate = 1000 / lengths.max()  # every slot finishes one episode per batch
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, SLOTS), params)
    steps = 8 * env.max_len
    stream = jax.jit(lambda o, s, k: rollout_stream(
        env, params, step, cache_for(s.transcript, o.position), o, s, k, steps))  # fmt: skip
    stream_stats = stream(obs, state, key).stats
    stream_rate = 1000 * float(stream_stats["episodes"]) / (SLOTS * steps)
    return (
        f"| {name} | {level} | {lengths.mean():.1f} / {lengths.max()} | {episodes_rate:.1f} "
        f"| {stream_rate:.1f} | {stream_rate / episodes_rate:.2f} |"
    )


def slot_utilisation(trained_run: Path) -> list[str]:
    lines = list(SLOT_HEADER)
    for level in envs.REGISTRY["FlakyAPI-v0"].levels:
        env, params = envs.make(
            "FlakyAPI-v0", max_latency=8, max_backup_latency=12, oracle_mode=1, **level
        )
        label = (
            f"api {level['latency_min']}-{level['latency_max']}, backup {level['backup_latency']}"
        )
        lines.append(slot_row("oracle", env, params, oracle_step(env), lambda t, p: None, label))
        print(lines[-1], flush=True)
    config, setup, state = load_run(trained_run)
    actor = setup.actor
    weights = jax.tree.map(lambda x: x[0], state.params)

    def cache_for(transcript, position):
        if transcript is None:
            return actor.model.init_cache(SLOTS)
        return actor.model.apply(weights, transcript, position, method=TransformerPolicy.prefill)

    level = "training level (api 2-4, backup 8)"
    lines.append(slot_row("trained (k = 0), sampling", actor.env, actor.env_params,
                          actor.policy_step(weights), cache_for, level))  # fmt: skip
    print(lines[-1], flush=True)
    return lines


def learning(
    runs: list[tuple[int, str]], out: Path, extra: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, list[dict]]]:
    """``flakyapi_decoupled`` once per (staleness k, off-policy correction) with ``extra``
    overrides: a table row and the metric rows of each run."""
    lines = [
        "| staleness k | correction | sampled training success by update "
        "| final held-out success | RL tokens/s | behaviour KL: mean / last |",
        "|---:|---|---|---:|---:|---:|",
    ]
    curves = {}
    for k, correction in runs:
        overrides = [f"rollout.staleness={k}", f"algo.off_policy={correction}", *extra]
        config = config_lib.load(
            resolve_config("flakyapi_decoupled"), [*overrides, "logging.tensorboard=false"]
        )
        rows = loop.train(config, out / f"k{k}_{correction}", overwrite=True)
        curves[f"k = {k}, {correction}" if k else "k = 0"] = rows
        rl = [r for r in rows if r["stage"] == "rl"]
        by_update = ", ".join(f"{r['update']}: {r['train/success']:.2f}" for r in rl[::2])
        tokens = np.mean([r["tokens_per_s"] for r in rl])
        kl = [r.get("loss/behaviour_kl", 0.0) for r in rl]
        lines.append(
            f"| {k} | {correction if k else '-'} | {by_update} | {rows[-1]['eval/success']:.3f} "
            f"| {tokens:,.0f} | {np.mean(kl):.4f} / {kl[-1]:.4f} |"
        )
        print(lines[-1], flush=True)
    return lines, curves


def phase_times(repeats: int = 3) -> list[str]:
    config = config_lib.load(resolve_config("flakyapi_decoupled"))
    setup = build(config)
    rl_stage = len(setup.stages) - 1
    state = update.start_stage(setup, update.init(setup, jax.random.PRNGKey(0)), rl_stage)
    rollout_s = best_time(lambda s: update.collect(setup, s, s.key, s.params), state, repeats)
    update_s = best_time(lambda s: update.rl_update(setup, rl_stage, s), state, repeats)
    learn_s = max(update_s - rollout_s, 0.0)
    tokens = setup.num_envs * (setup.actor.env.max_len - 1)
    return [
        "| phase | seconds per update |",
        "|---|---:|",
        f"| rollout (acting, tools, environment) | {rollout_s:.3f} |",
        f"| learning (forward, backward, Adam) | {learn_s:.3f} |",
        f"| one device, in turn (k = 0): tokens/s | {tokens / update_s:,.0f} |",
        f"| actor and learner overlapped (k >= 1), bound: tokens/s "
        f"| {tokens / max(rollout_s, learn_s):,.0f} |",
    ]


OVERLAP_RUN = ["rollout.staleness=1", "sft.updates=0", "updates=60", "eval_interval=20"]


def overlap_rows(devices: int) -> dict[str, list[dict]]:
    """The k = 1 config trained by ``agentic-jax train``'s loop: in turn on the first device,
    and with ``rollout.overlap`` on two when there are two. The metric rows of each."""
    runs = {"in_turn": ["devices=1"]}
    if devices >= 2:
        runs["overlapped"] = ["devices=2", "rollout.overlap=true"]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, more in runs.items():
            config = config_lib.load(resolve_config("flakyapi_decoupled"), OVERLAP_RUN + more)
            rows[name] = loop.train(config, Path(tmp) / name, Console(quiet=True))
    return rows


def rl_tokens_per_s(rows: list[dict]) -> float:
    """Median tokens/s of the chunks after the first (the first waits for the pipeline)."""
    return float(np.median([row["tokens_per_s"] for row in rows[2:]]))


def overlap_table(alone: dict[str, list[dict]], split: dict[str, list[dict]]) -> list[str]:
    """``alone``: this process on one device; ``split``: the same CPU as two devices."""
    rows = [("one device (the whole CPU), in turn", alone["in_turn"])]
    if "overlapped" not in alone:
        rows.append(("two devices (the CPU split in two): one of them, in turn", split["in_turn"]))
    overlapped = alone.get("overlapped", split.get("overlapped"))
    rows.append(("two devices, `rollout.overlap=true`", overlapped))
    in_turn = (split or alone)["in_turn"]
    pairs = zip(in_turn, overlapped, strict=True)
    same = max(abs(a["eval/success"] - b["eval/success"]) for a, b in pairs)
    lines = [
        f"`configs/flakyapi_decoupled.yaml` with `{' '.join(OVERLAP_RUN)}`, trained by the"
        " CLI's loop (`loop.train`); tokens/s of the RL chunks (median of the chunks after"
        " the first):",
        "",
        "| actor and learner | RL tokens/s | final held-out success |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {rl_tokens_per_s(r):,.0f} | {r[-1]['eval/success']:.3f} |"
              for name, r in rows]  # fmt: skip
    ratio = rl_tokens_per_s(overlapped) / rl_tokens_per_s(alone["in_turn"])
    return lines + [
        "",
        f"Overlapped / one device in turn: {ratio:.2f}x. Largest difference in held-out"
        f" success between the overlapped run and the same run in turn: {same:.2g}.",
    ]


def plot(curves: dict[str, list[dict]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for label, rows in curves.items():
        rl = [r for r in rows if r["stage"] == "rl"]
        left.plot([r["update"] for r in rl], [r["train/success"] for r in rl], label=label)
        right.plot([r["update"] for r in rows], [r["eval/success"] for r in rows], label=label)
    left.set(xlabel="update", ylabel="sampled training success", ylim=(0, 1.02), title=title)
    right.set(xlabel="update (SFT, then GRPO)", ylabel="held-out success (greedy)",
              ylim=(0, 1.02), title="held-out")  # fmt: skip
    left.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staleness", nargs="*", type=int, default=[0, 1, 2, 4])
    parser.add_argument(
        "--corrections", action="store_true",
        help="only the faster learner (FAST), k = 0 and k = 4 under each correction",
    )  # fmt: skip
    parser.add_argument(
        "--overlap", action="store_true",
        help="only the measured actor/learner overlap on two devices",
    )  # fmt: skip
    parser.add_argument("--overlap-json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.overlap_json:  # the two-device half of --overlap, in a child process
        print(json.dumps(overlap_rows(jax.local_device_count())))
        return 0
    if args.overlap:
        alone, split = overlap_rows(jax.local_device_count()), {}
        if "overlapped" not in alone:
            if jax.default_backend() != "cpu":
                parser.error(f"--overlap needs two devices; found {jax.devices()}")
            flags = os.environ.get("XLA_FLAGS", "")
            env = os.environ | {"XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=2"}
            child = subprocess.run(
                [sys.executable, __file__, "--overlap-json"], env=env, check=True,
                capture_output=True, text=True,
            )  # fmt: skip
            split = json.loads(child.stdout.strip().splitlines()[-1])
        lines = overlap_table(alone, split)
        text = section("Actor and learner on two devices, measured", "decoupled.py", argv, lines)
        record(text + "\n", args.no_record)
        return 0
    if args.corrections:
        with tempfile.TemporaryDirectory() as tmp:
            table, curves = learning(CORRECTION_RUNS, Path(tmp), FAST)
        if not args.no_record:
            plot(curves, CORRECTIONS_PLOT, "GRPO, lr 1e-3, 2 epochs x 2 minibatches")
        text = section(
            "Stale rollouts under a faster learner: the corrections compared", "decoupled.py",
            argv, [f"`configs/flakyapi_decoupled.yaml` with `{' '.join(FAST)}`; plot: "
                   f"`benchmarks/{CORRECTIONS_PLOT.name}`:", "", *table],
        )  # fmt: skip
        record(text + "\n", args.no_record)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(k, "decoupled") for k in args.staleness]
        curves_table, curves = learning(runs, Path(tmp))
        slots = slot_utilisation(Path(tmp) / f"k{args.staleness[0]}_decoupled")
    phases = phase_times()
    if not args.no_record:
        plot(curves, PLOT, "FlakyAPI-v0, GRPO acting k updates stale")
    text = section(
        "Decoupled rollouts and slow tools", "decoupled.py", argv,
        ["Learning with stale parameters (`configs/flakyapi_decoupled.yaml`, decoupled "
         "PPO correction; plot: `benchmarks/decoupled.png`):", "", *curves_table, "",
         "Slot utilisation, 1,024 slots:", "", *slots, "",
         "Phase times of one on-policy update:", "", *phases],
    )  # fmt: skip
    record(text + "\n", args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
