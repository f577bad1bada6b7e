"""``agentic-jax sweep CONFIG key=v1,v2,... seed=0:8``: a grid of settings, vmapped where it can.

Every setting is a full, validated config. Settings that differ only in traced keys
(``setup.traced_keys()``: the fields each algorithm declares traced, such as learning
rates, clipping, entropy, KL and value coefficients, gamma, lambda) and ``seed`` run as one
vmapped computation, compiled once: their
``Hyperparams`` and PRNG keys are stacked. A structural key (a model size, a group size, an
environment override) changes what is compiled, so each of its values is a separate group,
run one after another.

The sweep writes into its output folder ``settings.csv`` (one row per setting: its values,
final held-out success and train reward), ``summary.md`` (mean +- std over seeds of each
setting), ``curves.jsonl`` (held-out success per evaluation, per setting) and ``sweep.png``.
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from agentic_jax.stats import chunk_mean
from agentic_jax.train import config as config_lib
from agentic_jax.train import update
from agentic_jax.train.loop import drive, host_chunks, initial_state
from agentic_jax.train.paths import writable_dir
from agentic_jax.train.setup import build, hyperparams, seed_keys, traced_keys

VMAPPED_KEYS = (*traced_keys(), "seed")


@dataclass(frozen=True)
class Setting:
    values: dict[str, Any]  # swept key -> this setting's value
    config: config_lib.Config

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.values.items())


def parse_axis(item: str) -> tuple[str, list[Any]]:
    """``key=v1,v2,...`` or ``key=START:STOP`` (integers START..STOP-1) -> (key, values)."""
    path, value = config_lib.parse_override(item)
    key = ".".join(path)
    text = item.split("=", 1)[1]
    if ":" in text and "," not in text:
        start, _, stop = text.partition(":")
        try:
            values: list[Any] = list(range(int(start), int(stop)))
        except ValueError:
            raise config_lib.ConfigError(
                f"sweep {item!r}: a range is START:STOP with integers, e.g. seed=0:8"
            ) from None
        if not values:
            raise config_lib.ConfigError(f"sweep {item!r}: the range {text} is empty")
        return key, values
    if "," in text:
        return key, [config_lib.parse_override(f"{key}={part}")[1] for part in text.split(",")]
    return key, [value]


def grid(base: dict, items: list[str]) -> tuple[list[str], list[Setting]]:
    """The swept keys and every setting of their product, each validated as a config."""
    axes = dict(parse_axis(item) for item in items)
    if "num_seeds" in axes:
        raise config_lib.ConfigError("sweep seeds with seed=0:N, not num_seeds")
    swept = [key for key, values in axes.items() if len(values) > 1]
    settings = []
    for combination in itertools.product(*axes.values()):
        values = dict(zip(axes, combination, strict=True))
        overrides = [f"{key}={json.dumps(value)}" for key, value in values.items()]
        config = config_lib.from_dict(config_lib.apply_overrides(base, overrides))
        if config.num_seeds != 1:
            raise config_lib.ConfigError("sweep seeds with seed=0:N; set num_seeds=1")
        settings.append(Setting({k: values[k] for k in swept}, config))
    return swept, settings


def _structure(config: config_lib.Config) -> str:
    """The config with the vmapped keys blanked: settings with equal structure share a compile."""
    raw = config_lib.to_dict(config)
    for key in VMAPPED_KEYS:
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = None
    return yaml.safe_dump(raw, sort_keys=True)


def compile_groups(settings: list[Setting]) -> list[list[Setting]]:
    """Settings grouped by what they compile, in first-seen order."""
    groups: dict[str, list[Setting]] = {}
    for setting in settings:
        groups.setdefault(_structure(setting.config), []).append(setting)
    return list(groups.values())


def run_group(group: list[Setting], console: Console | None = None) -> dict[str, np.ndarray]:
    """Train every setting of one compile group as one vmapped computation.

    Returns ``update`` [E] and, with a leading settings axis, ``eval/success`` [S, E] (E
    evaluations, the first before training), ``train/reward`` [S] (the last chunk's) and
    the final ``state``.
    """
    setup = build(group[0].config)
    stack = lambda *xs: jax.tree.map(lambda *leaves: np.stack(leaves), *xs)  # noqa: E731
    hyper = stack(*[hyperparams(s.config) for s in group])
    keys = np.stack([np.asarray(seed_keys(s.config)[0]) for s in group])  # as `train` draws it
    state = initial_state(setup, keys, hyper)
    evaluate = jax.jit(jax.vmap(lambda s: update.evaluate(setup, s)))
    updates, success = [0], [np.asarray(evaluate(state)["eval/success"])]
    reward = np.full(len(group), np.nan)

    def after_chunk(state, run, metrics, evals, seconds):
        nonlocal reward
        updates.append(updates[-1] + run.num_updates)
        success.append(np.asarray(evals["eval/success"]))
        if "train/reward" in metrics:
            reward = chunk_mean(metrics, "train/reward")
        if console is not None:
            console.print(
                f"  update {updates[-1]:>5}/{setup.total_updates}  held-out "
                f"success {success[-1].mean():.3f} (mean of {len(group)} settings)"
            )

    state, _ = drive(setup, state, host_chunks(setup), 0, after_chunk)
    return {
        "update": np.asarray(updates),
        "eval/success": np.stack(success, axis=1),
        "train/reward": reward,
        "state": state,
    }


def summarise(swept: list[str], settings: list[Setting], final: np.ndarray) -> list[dict]:
    """Mean and std of final held-out success over seeds, per setting of the other keys."""
    others = [key for key in swept if key != "seed"]
    rows: dict[tuple, list[float]] = {}
    for setting, value in zip(settings, final, strict=True):
        rows.setdefault(tuple(setting.values.get(k) for k in others), []).append(float(value))
    return [
        {
            **dict(zip(others, key, strict=True)),
            "seeds": len(values),
            "mean": float(np.mean(values)),
            "std": float(np.std(values)),
        }
        for key, values in rows.items()
    ]


def summary_markdown(rows: list[dict]) -> list[str]:
    keys = [k for k in rows[0] if k not in ("seeds", "mean", "std")]
    lines = [
        "| " + " | ".join([*keys, "seeds", "final held-out success"]) + " |",
        "|" + "---|" * len(keys) + "---:|---:|",
    ]
    for row in rows:
        cells = [str(row[k]) for k in keys] + [str(row["seeds"])]
        lines.append("| " + " | ".join(cells) + f" | {row['mean']:.3f} ± {row['std']:.3f} |")
    return lines


def plot(out: Path, swept: list[str], rows: list[dict], curves: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = [key for key in swept if key != "seed"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    by_label: dict[str, list[np.ndarray]] = {}
    for curve in curves:
        label = " ".join(f"{k}={curve['values'][k]}" for k in others) or "all"
        by_label.setdefault(label, []).append(np.asarray(curve["eval/success"]))
    for label, runs in by_label.items():
        mean = np.mean(runs, axis=0)
        left.plot(curves[0]["update"], mean, label=label)
        if len(runs) > 1:
            std = np.std(runs, axis=0)
            left.fill_between(curves[0]["update"], mean - std, mean + std, alpha=0.2)
    left.set(
        xlabel="update",
        ylabel="held-out success",
        ylim=(0, 1.02),
        title="held-out success (mean ± std over seeds)",
    )
    left.legend(fontsize=7)
    labels = [" ".join(f"{k}={row[k]}" for k in others) or "all" for row in rows]
    right.bar(range(len(rows)), [r["mean"] for r in rows], yerr=[r["std"] for r in rows], capsize=3)
    right.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=7)
    right.set(ylabel="final held-out success", ylim=(0, 1.02), title="final, per setting")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_outputs(out_dir: Path, heading: str, records, curves, rows) -> None:
    """``settings.csv`` (one row per setting), ``curves.jsonl`` and ``summary.md``."""
    with (out_dir / "settings.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    with (out_dir / "curves.jsonl").open("w") as f:
        for curve in curves:
            f.write(json.dumps(curve) + "\n")
    summary = [heading, "", *summary_markdown(rows)]
    (out_dir / "summary.md").write_text("\n".join(summary) + "\n")


def sweep(
    base: dict, items: list[str], out_dir: Path, console: Console | None = None
) -> list[dict]:
    """Run the grid ``items`` over the config ``base``; write and return the summary rows."""
    console = console or Console()
    swept, settings = grid(base, items)
    groups = compile_groups(settings)
    writable_dir(out_dir, "--out")  # after the settings are validated: no folder for a typo
    console.print(
        f"sweep: {len(settings)} settings of {', '.join(swept) or 'nothing'} in "
        f"{len(groups)} compiled group(s) -> {out_dir}"
    )
    start = time.time()
    finals, curves, records = [], [], []
    for number, group in enumerate(groups, 1):
        console.print(f"group {number}/{len(groups)}: {len(group)} settings vmapped")
        result = run_group(group, console)
        for i, setting in enumerate(group):
            success = result["eval/success"][i]
            finals.append((setting, float(success[-1])))
            curves.append(
                {
                    "values": setting.values,
                    "update": result["update"].tolist(),
                    "eval/success": success.tolist(),
                }
            )
            records.append(
                {
                    **setting.values,
                    "final_eval_success": float(success[-1]),
                    "final_train_reward": float(result["train/reward"][i]),
                }
            )
    order = {id(s): i for i, s in enumerate(settings)}
    finals.sort(key=lambda pair: order[id(pair[0])])
    rows = summarise(swept, [s for s, _ in finals], np.asarray([v for _, v in finals]))
    wall = time.time() - start
    heading = (
        f"Sweep of {', '.join(items)}: {len(settings)} settings, {len(groups)} "
        f"compiled group(s), {wall:.0f} s."
    )
    write_outputs(out_dir, heading, records, curves, rows)
    plot(out_dir / "sweep.png", swept, rows, curves)
    table = Table(title=f"sweep ({wall:.0f} s)")
    for column in [k for k in rows[0] if k not in ("mean", "std")] + ["final held-out success"]:
        table.add_column(column)
    for row in rows:
        cells = [str(v) for k, v in row.items() if k not in ("mean", "std")]
        table.add_row(*cells, f"{row['mean']:.3f} ± {row['std']:.3f}")
    console.print(table)
    return rows
