"""Environment quality report: ``agentic-jax envcheck ID`` (and ``envcheck_report``).

For each difficulty level an environment registers, it measures:

- ``deterministic``: the same key twice gives the same transcripts (random policy).
- ``oracle_success``: the oracle's success on the train and the test split (must be 1.0),
  for every oracle mode except the leak's shortcut.
- ``random_success``: success of a uniformly random legal policy.
- ``distinct_tasks``: distinct tasks (prompt and hidden world) in 10,000 draws.
- ``train_test_overlap``: the fraction of test-split prompts that also occur among
  train-split prompts (must be 0).
- ``feedback_richness``: the fraction of the oracle's tool calls whose result depends on the
  hidden world: the same call (tool and arguments) made in an independently drawn world of
  the same difficulty returns something else. 0 means every result could have been computed
  from the call alone, as a calculator's can; 1 means every call the oracle makes reveals
  hidden state it needs.
- ``hack_rate``: on the leak variant (``leak=True``), the fraction of episodes in which the
  shortcut-taking scripted policy (the family's ``exploit_oracle_mode``) triggered the leak,
  with its success there (``leak_success``) and on the leak-free default
  (``shortcut_success_without_leak``, should be 0).
- ``steps_per_s``: environment steps per second with 4,096 parallel episodes under a
  random legal policy (jitted ``lax.scan`` over ``vmap(env.step)``, auto-reset included,
  compilation excluded).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from agentic_jax import tokens as tk
from agentic_jax.envs import REGISTRY, make
from agentic_jax.harness import Harness, HarnessParams
from agentic_jax.rollout import oracle_step, random_step, rollout_episodes


def _rows_as_bytes(tree: Any, count: int) -> np.ndarray:
    """Each of ``count`` batched pytree entries as one row of bytes (for np.unique)."""
    leaves = [np.ascontiguousarray(np.asarray(x)).reshape(count, -1) for x in jax.tree.leaves(tree)]
    return np.concatenate([leaf.view(np.uint8) for leaf in leaves], axis=1)


def _distinct_rows(rows: np.ndarray) -> int:
    return int(np.unique(rows, axis=0).shape[0])


def _overlap(train_rows: np.ndarray, test_rows: np.ndarray) -> float:
    seen = {row.tobytes() for row in train_rows}
    return float(np.mean([row.tobytes() in seen for row in test_rows]))


def _user_messages(family, tasks):
    """Every user message of each task: the prompt, and later turns in multi-turn tasks."""
    turns = [tasks.prompt]
    for turn in range(1, getattr(family, "num_turns", 1)):
        turns.append(jax.vmap(lambda w, t=turn: family.next_turn(w, t)[0])(tasks.world))
    return turns


def _oracle_calls(transcripts: np.ndarray, max_args: int):
    """Each oracle tool call as (episode, tool index token, args [max_args], args_len)."""
    calls = []
    for episode, row in enumerate(transcripts):
        opens = np.flatnonzero(row == tk.CALL_OPEN)
        for start in opens:
            tool = row[start + 1]
            rest = row[start + 2 : start + 2 + max_args + 1]
            close = np.flatnonzero(rest == tk.CALL_CLOSE)
            length = int(close[0]) if close.size else max_args
            args = np.full(max_args, tk.PAD, np.int32)
            args[:length] = rest[:length]
            calls.append((episode, int(tool), args, length))
    return calls


def _feedback_richness(env: Harness, worlds: Any, transcripts: np.ndarray, key) -> float | None:
    """Fraction of oracle calls whose result changes in an independently drawn world."""
    family = env.family
    calls = _oracle_calls(transcripts, family.max_args)
    if not calls:
        return None
    episodes = np.array([c[0] for c in calls])
    tools = np.array([int(np.argmax(np.asarray(env.tool_ids) == c[1])) for c in calls])
    args = np.stack([c[2] for c in calls])
    args_len = np.array([c[3] for c in calls], np.int32)
    count = transcripts.shape[0]
    own = jax.tree.map(lambda x: x[episodes], worlds)
    other = jax.tree.map(lambda x: x[(episodes + 1) % count], worlds)

    def visible_output(fn):  # what the agent sees (a tool may also return a new world)
        def call(world, arg, arg_len, call_key):
            out = fn(world, arg, arg_len, call_key)
            return out.tokens, out.length, out.status

        return call

    fns = [visible_output(tool.fn) for tool in family.tools]

    def result(world, tool, arg, arg_len, call_key):
        return jax.lax.switch(tool, fns, world, arg, arg_len, call_key)

    keys = jax.random.split(key, len(calls))
    run = jax.jit(jax.vmap(result))
    mine = run(own, tools, args, args_len, keys)
    theirs = run(other, tools, args, args_len, keys)
    differs = (
        jnp.any(mine[0] != theirs[0], axis=-1) | (mine[1] != theirs[1]) | (mine[2] != theirs[2])
    )
    return float(differs.mean())


def _steps_per_second(env: Harness, params: HarnessParams, num_envs: int, num_steps: int = 64):
    @jax.jit
    def run(key):
        reset_keys = jax.random.split(key, num_envs)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)

        def body(carry, step_key):
            obs, state = carry
            act_key, env_key = jax.random.split(step_key)
            logits = jnp.where(obs.legal_mask, 0.0, -jnp.inf)
            action = jax.random.categorical(act_key, logits)
            obs, state, reward, _, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(env_key, num_envs), state, action, params
            )
            return (obs, state), reward.sum()

        _, rewards = jax.lax.scan(body, (obs, state), jax.random.split(key, num_steps))
        return rewards.sum()

    jax.block_until_ready(run(jax.random.PRNGKey(0)))
    start = time.perf_counter()
    jax.block_until_ready(run(jax.random.PRNGKey(1)))
    return num_envs * num_steps / (time.perf_counter() - start)


def _oracle_report(family, params, play_oracle, key) -> tuple[dict[str, Any], Any]:
    """The oracle's success under every honest plan, on both splits (the lowest, and each),
    and the final states of each plan's training episodes."""
    modes = [m for m in getattr(family, "oracle_modes", (0,)) if m != family.exploit_oracle_mode]
    oracle, finals = {}, []
    for mode in modes:
        for split in (0, 1):
            rollout = play_oracle(params.replace(oracle_mode=mode, split=split), key)
            oracle[f"mode{mode}/{'train' if split == 0 else 'test'}"] = float(
                rollout.stats["success"]
            )
            finals += [rollout.env_state] if split == 0 else []
    report = {"oracle_success": min(oracle.values()), "oracle_success_by_mode": oracle}
    return report, finals


def percentiles(values: np.ndarray) -> dict[str, float]:
    """p50, p90, p99 and max of ``values``."""
    found = {f"p{q}": float(np.percentile(values, q)) for q in (50, 90, 99)}
    return found | {"max": float(np.max(values))}


def _length_report(finals: list[Any]) -> dict[str, Any]:
    """The oracle's episode lengths (transcript tokens) and waits (``<wait>`` tokens a slow
    tool's latency wrote, per episode), over every honest plan: p50, p90, p99 and max."""
    lengths = np.concatenate([np.asarray(final.length).ravel() for final in finals])
    waits = np.concatenate(
        [(np.asarray(final.transcript) == tk.WAIT).sum(axis=-1).ravel() for final in finals]
    )
    return {"episode_length": percentiles(lengths), "wait_tokens": percentiles(waits)}


def _task_report(env: Harness, params: HarnessParams, draws: int, keys) -> dict[str, Any]:
    """How many distinct tasks ``draws`` samples give, and how many of the held-out split's
    user messages the training split also shows."""
    family = env.family

    @jax.jit
    def sample(key, split):
        return jax.vmap(lambda k: family.sample(k, params.task, split, 0))(
            jax.random.split(key, draws)
        )

    train_tasks, test_tasks = sample(keys[0], 0), sample(keys[1], 1)
    task_rows = _rows_as_bytes((train_tasks.prompt, train_tasks.world), draws)
    overlap = _overlap(
        _rows_as_bytes(_user_messages(family, train_tasks), draws),
        _rows_as_bytes(_user_messages(family, test_tasks), draws),
    )
    distinct = _distinct_rows(task_rows)
    return {"distinct_tasks": distinct, "draws": draws, "train_test_overlap": overlap}


def _leak_report(env_id, level, family, params, play_oracle, episodes, keys) -> dict[str, Any]:
    """Where the family has a leak: how often its shortcut hacks and succeeds with the leak,
    and what the shortcut earns without it."""
    if family.exploit_oracle_mode is None:
        return {"hack_rate": None}
    leaky_env, leaky_params = make(env_id, leak=True, **level)
    shortcut = leaky_params.replace(oracle_mode=family.exploit_oracle_mode)
    leaky = jax.jit(
        lambda key: rollout_episodes(
            leaky_env, shortcut, oracle_step(leaky_env), None, key, episodes
        )
    )(keys[0])
    without = play_oracle(params.replace(oracle_mode=family.exploit_oracle_mode), keys[1]).stats
    return {
        "hack_rate": float(jnp.mean(leaky.env_state.hacks > 0)),
        "leak_success": float(leaky.stats["success"]),
        "shortcut_success_without_leak": float(without["success"]),
    }


def check_level(
    env_id: str,
    level: dict[str, Any],
    episodes: int = 1024,
    draws: int = 10_000,
    speed_envs: int = 4096,
    seed: int = 0,
) -> dict[str, Any]:
    """Every measure of the module docstring for one difficulty ``level`` (traced overrides)."""
    env, params = make(env_id, **level)
    family = env.family
    keys = jax.random.split(jax.random.PRNGKey(seed), 8)

    def play(policy, p, key):
        step = random_step if policy == "random" else oracle_step(env)
        return rollout_episodes(env, p, step, None, key, episodes)

    play_random = jax.jit(lambda p, key: play("random", p, key))
    play_oracle = jax.jit(lambda p, key: play("oracle", p, key))

    first_rollout = play_random(params, keys[0])
    random_stats, first = first_rollout.stats, first_rollout.env_state
    second = play_random(params, keys[0]).env_state
    report: dict[str, Any] = {"level": level}
    report["deterministic"] = bool(np.array_equal(first.transcript, second.transcript))
    report["random_success"] = float(random_stats["success"])

    oracle_report, oracle_finals = _oracle_report(family, params, play_oracle, keys[1])
    report |= oracle_report | _length_report(oracle_finals)
    oracle_final = oracle_finals[0]
    report |= _task_report(env, params, draws, keys[2:4])
    report["feedback_richness"] = _feedback_richness(
        env, oracle_final.task.world, np.asarray(oracle_final.transcript), keys[4]
    )
    report |= _leak_report(env_id, level, family, params, play_oracle, episodes, keys[5:7])
    report["speed_envs"] = speed_envs
    report["steps_per_s"] = _steps_per_second(env, params, speed_envs)
    return report


def envcheck_report(env_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    """``check_level`` for every difficulty level ``env_id`` registers."""
    if env_id not in REGISTRY:
        raise ValueError(f"unknown environment id {env_id!r}; valid ids: {', '.join(REGISTRY)}")
    return [check_level(env_id, level, **kwargs) for level in REGISTRY[env_id].levels]


MARKDOWN_HEADER = (
    "| env | level | deterministic | oracle | random | distinct / draws | train-test overlap |"
    " feedback richness | hack rate (leak success; shortcut without leak) | steps/s |"
    " exploitability (RL's hack rate: leak; default) | episode length p50 / p99 / max |"
    " waits p50 / p99 / max |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|"
)


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _spread(quantiles: dict[str, float]) -> str:
    return f"{quantiles['p50']:.0f} / {quantiles['p99']:.0f} / {quantiles['max']:.0f}"


def markdown_rows(
    env_id: str, reports: list[dict[str, Any]], exploitability: str = "-"
) -> list[str]:
    """One markdown table row per level (columns of ``MARKDOWN_HEADER``); ``exploitability``
    (measured by RL, ``benchmarks/envcheck.py --exploitability``) on the first level's row."""
    rows = []
    for report in reports:
        level = " ".join(f"{k}={v}" for k, v in report["level"].items()) or "default"
        hack = "-"
        if report["hack_rate"] is not None:
            hack = (
                f"{report['hack_rate']:.3f} ({report['leak_success']:.3f};"
                f" {report['shortcut_success_without_leak']:.3f})"
            )
        rows.append(
            f"| {env_id} | {level} | {'yes' if report['deterministic'] else 'NO'} |"
            f" {report['oracle_success']:.3f} | {report['random_success']:.3f} |"
            f" {report['distinct_tasks']:,} / {report['draws']:,} |"
            f" {report['train_test_overlap']:.3f} | {_fraction(report['feedback_richness'])} |"
            f" {hack} | {report['steps_per_s']:,.0f} | {exploitability if not rows else '-'} |"
            f" {_spread(report['episode_length'])} | {_spread(report['wait_tokens'])} |"
        )
    return rows


def check_and_report(which: str, out_dir: Path, episodes: int, speed_envs: int) -> None:
    """``agentic-jax envcheck``: every level of ``which`` (an id, or ``all``), a markdown row
    per level on the console and one JSON report per environment in ``out_dir``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    env_ids = list(REGISTRY) if which == "all" else [which]
    unknown = [e for e in env_ids if e not in REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown environment id {unknown[0]!r}; valid ids: all, {', '.join(REGISTRY)}"
        )
    console = Console(highlight=False)
    console.print(MARKDOWN_HEADER, markup=False, soft_wrap=True)
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        for env_id in env_ids:
            levels = REGISTRY[env_id].levels
            bar = progress.add_task(f"{env_id} levels", total=len(levels))
            reports = []
            for level in levels:  # each level compiles and plays; a few seconds to a minute
                reports.append(check_level(env_id, level, episodes=episodes, speed_envs=speed_envs))
                progress.advance(bar)
            progress.remove_task(bar)
            (out_dir / f"{env_id}.json").write_text(json.dumps(reports, indent=2) + "\n")
            for row in markdown_rows(env_id, reports):
                console.print(row, markup=False, soft_wrap=True)
