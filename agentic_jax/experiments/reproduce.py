"""``agentic-jax reproduce``: run, record, check and render the registered findings.

- ``reproduce NAME``: run it (8 seeds by default), print its section; ``--record`` writes
  ``benchmarks/results/NAME.json`` (with the code fingerprint, from the quick version) and its
  plot, and renders RESULTS.md and the README's findings table again.
- ``reproduce NAME --quick``: the seconds-long version (two updates per stage, small batch).
- ``reproduce --list``: every experiment, its expected CPU minutes and its recorded state.
- ``reproduce --stale``: run every recorded experiment's quick version, list those whose
  fingerprint moved, then rerun them (``--check``: list only; ``--record`` marks and records).
- ``reproduce --render``: RESULTS.md and the README's table from the result files.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from agentic_jax.experiments import EXPERIMENTS, get, report
from agentic_jax.experiments.fingerprint import compare, machine
from agentic_jax.experiments.run import git_commit, run_experiment
from agentic_jax.experiments.spec import Experiment


class Paths:
    """Where a checkout keeps its findings (relative to ``root``, the current folder)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.results = self.root / "benchmarks" / "results"
        self.results_md = self.root / "benchmarks" / "RESULTS.md"
        self.readme = self.root / "README.md"
        self.runs = self.root / "runs" / "reproduce"

    def result(self, name: str) -> Path:
        return self.results / f"{name}.json"

    @property
    def stale(self) -> Path:
        return self.results / "stale.json"


def fingerprint(experiment: Experiment, paths: Paths, console: Console) -> dict:
    """Today's fingerprint of ``experiment``: its quick version's rows, and this machine."""
    quick = run_experiment(experiment, quick=True, runs_dir=paths.runs / "quick", console=console)
    return {"machine": machine(), "arms": {arm: d["rows"] for arm, d in quick["arms"].items()}}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def render(paths: Paths) -> None:
    """RESULTS.md, the README's findings table and every finding's plot, from the files."""
    results, stale = report.load_results(paths.results)
    experiments = list(EXPERIMENTS.values())
    paths.results_md.write_text(report.results_markdown(experiments, results, stale))
    if paths.readme.is_file():
        table = report.findings_table(experiments, results, stale)
        paths.readme.write_text(report.with_findings_table(paths.readme.read_text(), table))
    for name, result in results.items():
        if name in EXPERIMENTS:
            report.plot(EXPERIMENTS[name], result, paths.results / f"{name}.png")


def reproduce(name: str, seeds: int | None, quick: bool, record: bool, paths: Paths) -> dict:
    if quick and record:
        raise ValueError("--quick runs are checks, not findings: drop --record")
    experiment, console = get(name), Console()
    result = run_experiment(experiment, seeds, quick, paths.runs, console)
    print(report.section(experiment, result, {}))
    if record:
        result["fingerprint"] = fingerprint(experiment, paths, console)
        write_json(paths.result(name), result)
        stale = json.loads(paths.stale.read_text()) if paths.stale.is_file() else {}
        if stale.pop(name, None) is not None:
            write_json(paths.stale, stale)
        render(paths)
        print(f"recorded {paths.result(name)}; rendered {paths.results_md}")
    else:
        write_json(paths.runs / name / "result.json", result)
        print(f"wrote {paths.runs / name / 'result.json'} (add --record to keep it as a finding)")
    return result


def check_stale(paths: Paths, names: list[str] | None = None) -> dict[str, list[str]]:
    """Every experiment's quick version, and each recorded one's against its recorded
    fingerprint: the stale ones, with their first differences."""
    results, _ = report.load_results(paths.results)
    console, stale = Console(quiet=True), {}
    for name in names or list(EXPERIMENTS):
        today = fingerprint(get(name), paths, console)  # the quick version runs either way
        if name not in results:
            print(f"{name}: quick version ran; not recorded yet")
            continue
        found, tolerance = compare(today, results[name]["fingerprint"])
        print(f"{name}: {'stale' if found else 'current'} (tolerance rel {tolerance.rel})")
        if found:
            stale[name] = found[:5]
    return stale


def stale_command(check_only: bool, record: bool, paths: Paths) -> dict[str, list[str]]:
    stale = check_stale(paths)
    print("stale findings: " + (", ".join(stale) if stale else "none"))
    for name, lines in stale.items():
        print(f"  {name}: " + "; ".join(lines[:3]))
    if record:
        marks = json.loads(paths.stale.read_text()) if paths.stale.is_file() else {}
        commit = git_commit()
        marks = {n: marks.get(n, {"since": commit}) for n in stale}
        write_json(paths.stale, marks)
        render(paths)
    if not check_only:
        for name in stale:
            reproduce(name, None, False, record, paths)
    return stale


def list_experiments(paths: Paths) -> None:
    """Every experiment: its CPU minutes (as recorded, or the declared estimate), its seeds,
    and where its recorded result comes from."""
    results, stale = report.load_results(paths.results)
    width = max(map(len, EXPERIMENTS)) + 1
    print(f"{'name':{width}s} {'CPU min':>12s} {'seeds':>5s}  recorded")
    for name, experiment in EXPERIMENTS.items():
        result = results.get(name)
        if result is None:
            minutes, state = f"~{experiment.cpu_minutes:.0f} (est.)", "no"
        else:
            minutes = f"{result['wall_s'] / 60:.1f}"
            state = f"{result['commit']} {result['date'][:10]}"
        if name in stale:
            state += f" (stale since {stale[name]['since']})"
        print(f"{name:{width}s} {minutes:>12s} {experiment.seeds:5d}  {state}")
        print(f"  {experiment.question}")
