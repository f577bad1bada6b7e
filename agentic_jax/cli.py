"""The ``agentic-jax`` command line: train, sweep, eval, render, plot, envs, envcheck,
reproduce."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from agentic_jax.compile_cache import enable_compile_cache
from agentic_jax.plot import DEFAULT_METRICS
from agentic_jax.train.paths import (  # noqa: F401 (resolve_config: the command line's)
    CONFIG_DIR,
    DEFAULT_CONFIG,
    resolve_config,
    writable_dir,
    writable_file,
)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse prints the one-line error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _split_config_and_overrides(items: list[str]) -> tuple[str | None, list[str]]:
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, items


def cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agentic_jax.train import config as config_lib
    from agentic_jax.train import loop

    console = Console()
    if args.resume:
        if args.items and "=" not in args.items[0]:
            raise SystemExit(
                f"error: --resume takes its config from {args.resume}/config.yaml; "
                f"drop {args.items[0]!r} (only key=value overrides may follow)"
            )
        try:
            loop.resume(args.resume, args.items, console)
        except config_lib.ConfigError as error:
            raise SystemExit(f"error: {args.resume}/config.yaml: {error}") from None
        console.print(f"done: {args.resume}/metrics.jsonl")
        return 0
    name, overrides = _split_config_and_overrides(args.items)
    path = resolve_config(name)
    try:
        config = config_lib.load(path, overrides)
    except config_lib.ConfigError as error:
        raise SystemExit(f"error: {path}: {error}") from None
    run_dir = Path(args.run_dir or Path("runs") / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    console.print(f"training {path.stem} on {config.env.id} -> {run_dir}")
    command = " ".join(["agentic-jax", *sys.argv[1:]])
    loop.train(config, run_dir, console, overwrite=args.overwrite, command=command)
    console.print(f"done: {run_dir}/metrics.jsonl, checkpoints in {run_dir}/checkpoints")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from agentic_jax.train import config as config_lib
    from agentic_jax.train import sweep

    name, items = _split_config_and_overrides(args.items)
    path = resolve_config(name)
    out = Path(args.out or Path("runs") / f"sweep-{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        sweep.sweep(config_lib.read_yaml(path), items, out)
    except config_lib.ConfigError as error:
        raise SystemExit(f"error: {path}: {error}") from None
    print(f"done: {out}/summary.md, {out}/settings.csv, {out}/sweep.png")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from agentic_jax.train import saved

    if args.pass_at_k:
        scores, counts = saved.pass_at_k_of_run(args.run_dir, args.pass_at_k, args.tasks)
        print(
            f"held-out tasks: {len(counts)}, {args.pass_at_k} samples each (temperature "
            "from the run's rollout.temperature); unbiased estimator of Chen et al. 2021"
        )
        for k, score in scores.items():
            print(f"pass@{k:<4d} {score:.4f}")
        return 0
    metrics = saved.evaluate_run(args.run_dir, args.episodes)
    for key in sorted(metrics):
        print(f"{key:28s} {metrics[key]:.4f}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agentic_jax import render
    from agentic_jax.train import saved

    if args.html:  # before the sampling, which takes a while
        writable_file(args.html, "--html")
    sampled = saved.sample_transcripts(args.run_dir, args.count, seed=args.seed)
    if args.html:
        page = render.html_page(sampled, f"agentic-jax: {args.run_dir}")
        Path(args.html).write_text(page)
        print(f"wrote {args.html}")
        return 0
    render.print_transcripts(Console(no_color=args.plain, highlight=False), sampled)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from agentic_jax.plot import plot_runs

    writable_file(args.out, "--out")
    out = plot_runs(args.run_dirs, args.out, tuple(args.metrics))
    print(f"wrote {out}")
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    from agentic_jax.catalogue import DESCRIPTIONS  # not the environments: no JAX import

    for env_id, description in DESCRIPTIONS.items():
        print(f"{env_id:16s} {description}")
    return 0


def cmd_envcheck(args: argparse.Namespace) -> int:
    from agentic_jax import envcheck

    out_dir = writable_dir(args.out, "--out")
    envcheck.check_and_report(args.env_id, out_dir, args.episodes, args.speed_envs)
    print(f"JSON reports in {out_dir}/")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from agentic_jax.experiments import reproduce as findings

    paths = findings.Paths(Path(args.root))
    if args.list:
        findings.list_experiments(paths)
    elif args.render:
        findings.render(paths)
        print(f"rendered {paths.results_md} and the findings table of {paths.readme}")
    elif args.stale:
        findings.stale_command(args.check, args.record, paths)
    elif args.name:
        findings.reproduce(args.name, args.seeds, args.quick, args.record, paths)
    else:
        raise SystemExit("error: name an experiment (see --list), or --list, --stale, --render")
    return 0


REPRODUCE_FLAGS = {
    "--list": "every experiment, its CPU minutes and whether it is recorded",
    "--quick": "a seconds-long version: two updates per stage, a small batch",
    "--record": "write the result into benchmarks/results/ and render RESULTS.md",
    "--stale": "check every recorded finding's fingerprint; rerun the stale ones",
    "--check": "with --stale: list the stale findings, do not rerun them",
    "--render": "render RESULTS.md and the README's table from the result files",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentic-jax",
        description="Agentic RL in pure JAX: tool-use environments, a token-level "
        "transformer policy, PPO and GRPO in one jitted loop.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    configs = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    train = commands.add_parser(
        "train",
        help="train a policy from a config",
        description="Train a policy from a config. Every key, its default and its valid values "
        "are in agentic_jax/train/config.py (README: Configs); a typo gets the nearest key. "
        "Ctrl-C stops between chunks with a checkpoint; --resume continues.",
    )
    train.add_argument(
        "items",
        nargs="*",
        metavar="[CONFIG] [key=value ...]",
        help=f"a config file or a name in configs/ (default: {DEFAULT_CONFIG}; shipped: "
        f"{configs}), then overrides such as algo.lr=1e-3 updates=200 env.overrides.hops=2",
    )
    train.add_argument("--run-dir", help="where to write the run (default: runs/NAME-TIME)")
    train.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a stopped run from its newest checkpoint"
    )
    train.add_argument(
        "--overwrite", action="store_true", help="replace a run already in --run-dir"
    )
    train.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="processes in the run (jax.distributed; default 1)",
    )
    train.add_argument("--process-id", type=int, default=0, help="this process (0 writes logs)")
    train.add_argument(
        "--coordinator",
        default="localhost:12321",
        help="HOST:PORT of process 0 (default localhost:12321)",
    )
    train.set_defaults(func=cmd_train)

    sweep = commands.add_parser(
        "sweep", help="train a grid of settings (traced keys and seeds vmapped, compiled once)"
    )
    sweep.add_argument(
        "items",
        nargs="*",
        metavar="[CONFIG] [key=v1,v2,... | key=START:STOP | key=value ...]",
        help="a config, then swept keys (e.g. algo.lr=1e-4,3e-4,1e-3 seed=0:8) and overrides",
    )
    sweep.add_argument("--out", help="where to write the results (default: runs/sweep-NAME-TIME)")
    sweep.set_defaults(func=cmd_sweep)

    evaluate = commands.add_parser("eval", help="evaluate a saved policy on held-out tasks")
    evaluate.add_argument("run_dir", help="a run directory written by `agentic-jax train`")
    evaluate.add_argument(
        "--episodes",
        type=positive_int,
        default=None,
        help="held-out episodes to play (default: the run's eval_episodes)",
    )
    evaluate.add_argument(
        "--pass-at-k",
        type=positive_int,
        metavar="N",
        default=None,
        help="instead: pass@k for k = 1, 2, 4 ... N, from N samples of each held-out task",
    )
    evaluate.add_argument(
        "--tasks", type=positive_int, default=64, help="held-out tasks for --pass-at-k (64)"
    )
    evaluate.set_defaults(func=cmd_eval)

    render = commands.add_parser("render", help="print held-out transcripts of a saved policy")
    render.add_argument("run_dir", help="a run directory written by `agentic-jax train`")
    render.add_argument(
        "--count", type=positive_int, default=3, help="held-out episodes to show (default: 3)"
    )
    render.add_argument("--seed", type=int, default=0, help="which tasks (default: 0)")
    render.add_argument("--plain", action="store_true", help="no colours")
    render.add_argument("--html", metavar="FILE", help="write an HTML page of transcripts")
    render.set_defaults(func=cmd_render)

    plot = commands.add_parser("plot", help="draw learning curves of runs to a PNG")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    plot.add_argument("--out", default="curves.png", help="the PNG to write")
    plot.add_argument(
        "--metrics",
        nargs="+",
        default=list(DEFAULT_METRICS),
        help=f"metrics.jsonl keys to draw, one panel each (default: {' '.join(DEFAULT_METRICS)})",
    )
    plot.set_defaults(func=cmd_plot)

    list_envs = commands.add_parser("envs", help="list the environments")
    list_envs.set_defaults(func=cmd_envs)

    check = commands.add_parser(
        "envcheck", help="measure an environment's quality at every difficulty level"
    )
    check.add_argument("env_id", metavar="ID", help="an environment id, or all")
    check.add_argument(
        "--episodes",
        type=positive_int,
        default=256,
        help="episodes per measurement (default: 256, as the README's table)",
    )
    check.add_argument(
        "--speed-envs",
        type=positive_int,
        default=4096,
        help="parallel episodes for steps/s (default: 4096)",
    )
    check.add_argument("--out", default="runs/envcheck", help="folder for the JSON reports")
    check.set_defaults(func=cmd_envcheck)
    repro = commands.add_parser(
        "reproduce",
        help="run a registered finding (experiments as code) and record its result",
        description="Run a registered experiment (a finding: its arms, seeds and measures are "
        "declared in agentic_jax/experiments/findings.py). Results go to runs/reproduce/; "
        "--record keeps them as benchmarks/results/NAME.json and renders "
        "benchmarks/RESULTS.md and the README's findings table from those files.",
    )
    repro.add_argument("name", nargs="?", help="an experiment (see --list)")
    repro.add_argument("--seeds", type=positive_int, help="seeds, vmapped (default: declared)")
    repro.add_argument("--root", default=".", help="the checkout (default: the current folder)")
    for flag, meaning in REPRODUCE_FLAGS.items():
        repro.add_argument(flag, action="store_true", help=meaning)
    repro.set_defaults(func=cmd_reproduce)
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with ``key=value`` overrides accepted anywhere after the command
    (``agentic-jax train CONFIG --run-dir D seed=3``), not only before the options."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    overrides = [item for item in extra if "=" in item and not item.startswith("-")]
    if extra and (overrides != extra or not hasattr(args, "items")):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if overrides:
        args.items = [*args.items, *overrides]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if getattr(args, "processes", 1) > 1:  # before anything touches a device
        if not (args.run_dir or args.resume):
            raise SystemExit(
                "error: --processes needs --run-dir (or --resume): one directory "
                "that every process shares"
            )
        from agentic_jax.train.processes import start_processes

        start_processes(args.coordinator, args.processes, args.process_id)
    enable_compile_cache()
    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside training
        print("interrupted; the newest checkpoint, if any, is kept", file=sys.stderr)
        return 130
    except RuntimeError as error:
        from agentic_jax.train.recorder import DivergenceError, RunStopped

        if isinstance(error, RunStopped):
            print(error, file=sys.stderr)
            return error.exit_code
        if not isinstance(error, DivergenceError):
            raise
        print(f"error: {error}", file=sys.stderr)  # a NaN stopped training
        return 3


def _quiet_closed_loop(excepthook):
    """An ``excepthook`` that drops TensorStore's "Event loop is closed" errors: after a
    failed restore its read callbacks, from C++ threads, reach an asyncio loop orbax closed
    and print their traceback through ``sys.excepthook``, before or after our one line."""

    def hook(kind, error, trace):
        if kind is RuntimeError and str(error) == "Event loop is closed":
            return
        excepthook(kind, error, trace)

    return hook


def console_main() -> None:
    """The ``agentic-jax`` command: ``main``, then a plain exit. After a failure the process
    ends at once (``os._exit``, output flushed): a failed checkpoint restore or save can leave
    orbax/TensorStore work in flight, whose callbacks at interpreter shutdown print
    "Event loop is closed" tracebacks or wait minutes on a closed executor. Nothing is left
    to clean up by then: run directories and logs are closed by their context managers."""
    sys.excepthook = _quiet_closed_loop(sys.excepthook)
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if code:
        os._exit(code)
    sys.exit(0)


if __name__ == "__main__":
    console_main()
