"""pass@k of a base and of the RL policy trained from it, on the same held-out tasks.

    python benchmarks/pass_at_k.py                      # the default config, 3 seeds
    python benchmarks/pass_at_k.py CONFIG --samples 256 --tasks 64 --seeds 3

Trains CONFIG (a pretrain stage, then RL) with ``num_seeds`` vmapped seeds, keeping the
checkpoint at the end of its last SFT stage (the base) and the final one (after RL). For
each seed and each of the two policies it samples every one of ``--tasks`` held-out tasks
``--samples`` times at the run's temperature and computes pass@k for k = 1, 2, 4, ...
``--samples`` with the unbiased estimator of Chen et al. 2021. Writes a table (mean and the
lowest and highest seed) and a plot with bands to ``benchmarks/pass_at_k_<config>.png``,
and appends both under runs/bench/. Yue et al. 2025 found that the base wins at large
k on LLM reasoning: the table says whether the curves cross here.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from results import record, save_figure, section

from agentic_jax.cli import resolve_config
from agentic_jax.train import config as config_lib
from agentic_jax.train import loop, saved

HERE = Path(__file__).parent


def base_update(config: config_lib.Config) -> int:
    """The update at which the last SFT stage ends (the base RL starts from)."""
    ends = np.cumsum([stage.updates for stage in config.stages])
    sft = [end for stage, end in zip(config.stages, ends, strict=True) if stage.kind == "sft"]
    if not sft or config.stages[-1].kind != "rl":
        raise ValueError("pass_at_k.py needs a config whose stages are SFT, then RL")
    return int(sft[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="default")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--runs", default="runs/bench")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    name = Path(args.config).stem  # a config name, or a file's

    probe = config_lib.load(resolve_config(args.config))
    base = base_update(probe)
    overrides = [f"num_seeds={args.seeds}", f"checkpoint_interval={base}", "keep_checkpoints=8"]
    config = config_lib.load(resolve_config(args.config), overrides)
    run_dir = Path(args.runs) / f"pass_at_k_{name}"
    rows = loop.train(config, run_dir, overwrite=True)
    final = rows[-1]["update"]

    curves = {}  # policy -> [seeds, ks]
    for label, step in (("base", base), ("RL", final)):
        per_seed = [
            saved.pass_at_k_of_run(run_dir, args.samples, args.tasks, run_seed=s, step=step)[0]
            for s in range(args.seeds)
        ]
        ks = sorted(per_seed[0])
        curves[label] = np.array([[scores[k] for k in ks] for scores in per_seed])

    lines = table(ks, curves, base, final)
    png = plot(ks, curves, run_dir / f"pass_at_k_{name}.png")
    shutil.copy(png, HERE / png.name)
    title = f"pass@k, base against RL ({name})"
    body = [f"Plot: `benchmarks/{png.name}`. {args.seeds} seeds (vmapped), {args.tasks} "
            f"held-out tasks, {args.samples} samples each.", "", *lines]  # fmt: skip
    record(section(title, "pass_at_k.py", argv, body), args.no_record)
    return 0


def table(ks: list[int], curves: dict[str, np.ndarray], base: int, final: int) -> list[str]:
    def cell(values: np.ndarray) -> str:
        return f"{values.mean():.3f} ({values.min():.3f}-{values.max():.3f})"

    lines = [f"| k | base (update {base}) | RL (update {final}) | RL - base |", "|---|---|---|---|"]
    for i, k in enumerate(ks):
        gap = curves["RL"][:, i].mean() - curves["base"][:, i].mean()
        lines.append(f"| {k} | {cell(curves['base'][:, i])} | {cell(curves['RL'][:, i])} "
                     f"| {gap:+.3f} |")  # fmt: skip
    gaps = curves["RL"].mean(axis=0) - curves["base"].mean(axis=0)
    base_ahead = [k for k, gap in zip(ks, gaps, strict=True) if gap < 0]
    rl_ahead = [k for k, gap in zip(ks, gaps, strict=True) if gap > 0]
    if not base_ahead:
        verdict = "The curves do not cross: RL is ahead or level at every k."
    elif not rl_ahead:
        verdict = "The base is ahead or level at every k."
    else:
        verdict = (f"The curves cross: RL is ahead at k = {', '.join(map(str, rl_ahead))}; "
                   f"the base at k = {', '.join(map(str, base_ahead))}.")  # fmt: skip
    return [*lines, "", verdict]


def plot(ks: list[int], curves: dict[str, np.ndarray], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for label, values in curves.items():
        (line,) = ax.plot(ks, values.mean(axis=0), marker=".", label=label)
        ax.fill_between(ks, values.min(axis=0), values.max(axis=0), color=line.get_color(),
                        alpha=0.2)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per task)")
    ax.set_ylabel("pass@k, held-out tasks")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out)


if __name__ == "__main__":
    raise SystemExit(main())
