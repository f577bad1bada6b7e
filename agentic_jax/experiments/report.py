"""RESULTS.md, the README's findings table and each finding's plot, rendered from result files
alone (``benchmarks/results/NAME.json``): nothing here is typed by hand, and
``tests/test_findings.py`` holds the committed files equal to what this renders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from agentic_jax.experiments.spec import Experiment

# Student's t at 97.5% for 1..30 degrees of freedom (a 95% two-sided interval of a mean).
T_975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
README_START = "<!-- findings table: rendered by `agentic-jax reproduce --render` -->"
README_END = "<!-- end of findings table -->"


def mean_interval(values: list[float]) -> tuple[float, float, float, float, float]:
    """(mean, lowest, highest, 95% interval's low, high) of per-seed values (Student's t)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, mean, mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = (T_975[n - 2] if n - 1 <= len(T_975) else 1.96) * sd / math.sqrt(n)
    return mean, min(values), max(values), mean - half, mean + half


def cell(values: list[float]) -> str:
    mean, low, high, ci_low, ci_high = mean_interval(values)
    return f"{mean:.3f} ({low:.3f}-{high:.3f}; 95% CI {ci_low:.3f}-{ci_high:.3f})"


def stale_line(name: str, stale: dict) -> str:
    if name not in stale:
        return ""
    return (
        f"**Stale since {stale[name]['since']}**: today's code gives another fingerprint; "
        f"rerun with `agentic-jax reproduce {name} --record`.\n\n"
    )


def split_lines(experiment: Experiment, result: dict) -> list[str]:
    """Where an arm's seeds split (some show the effect, some do not), the mean describes no
    seed: each seed's value of every measure, marked with whether it shows the effect."""
    lines = []
    for arm in (arm.name for arm in experiment.arms):
        flags = result["effect_shown"].get(arm, [])
        if 0 < sum(flags) < len(flags):
            measures = result["measures"][arm]
            seeds = [
                ("shows" if flag else "does not")
                + ": "
                + ", ".join(f"{measures[m.key][i]:.2f}" for m in experiment.measures)
                for i, flag in enumerate(flags)
            ]
            lines += [
                "",
                f"The seeds split on {arm}: {sum(flags)} of {len(flags)} show the "
                f"effect. Per seed ({', '.join(m.title for m in experiment.measures)}): "
                + "; ".join(seeds)
                + ".",
            ]
    return lines


def section(experiment: Experiment, result: dict, stale: dict) -> str:
    """One finding: its question and anchor, how it was produced, a table, the seed share."""
    machine = result["machine"]
    header = ["arm", *(m.title for m in experiment.measures), "seeds showing the effect"]
    lines = [
        f"## {experiment.name}",
        "",
        stale_line(experiment.name, stale) + experiment.question,
        "",
        f"Literature: {experiment.anchor}",
        "",
        f"Command: `{result['command']}` ({result['seeds']} seeds, vmapped; "
        f"{result['wall_s'] / 60:.1f} min). Commit {result['commit']}, {result['date'][:10]},"
        f" {machine['cpu']} ({machine['cores']} cores, {machine['device']}), jax "
        f"{machine['versions']['jax']}.",
        "",
        f"Effect ({experiment.stage} stage): {experiment.effect.claim}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for arm in (arm.name for arm in experiment.arms if arm.name in result["measures"]):
        measures, flags = result["measures"][arm], result["effect_shown"].get(arm)
        share = f"{sum(flags)}/{len(flags)}" if flags is not None else "-"
        cells = [cell(measures[m.key]) for m in experiment.measures]
        lines.append("| " + " | ".join([arm, *cells, share]) + " |")
    lines += split_lines(experiment, result)
    lines += [
        "",
        "Mean over seeds (lowest-highest seed; 95% interval of the mean).",
        "",
        f"![{experiment.name}](results/{experiment.name}.png)",
        "",
    ]
    if experiment.notes:
        lines += [experiment.notes, ""]
    return "\n".join(lines)


def results_markdown(experiments: list[Experiment], results: dict[str, dict], stale: dict) -> str:
    missing = [e.name for e in experiments if e.name not in results]
    parts = [
        "# Findings",
        "",
        "Rendered by `agentic-jax reproduce --render` from `benchmarks/results/*.json`; do not "
        "edit. Each section is one registered experiment (`agentic-jax reproduce --list`), run "
        "on the commit it names with the command it shows.",
        "",
    ]
    if missing:
        parts += ["Registered but not yet run on this code: " + ", ".join(missing) + ".", ""]
    for experiment in experiments:
        if experiment.name in results:
            parts.append(section(experiment, results[experiment.name], stale))
    return "\n".join(parts).rstrip() + "\n"


def arm_summary(result: dict, arm: str, measure) -> str:
    """``ARM mean (lowest-highest), k/n seeds show the effect`` for the README's table."""
    mean, low, high, _, _ = mean_interval(result["measures"][arm][measure.key])
    flags = result["effect_shown"][arm]
    return f"{arm} {mean:.3f} ({low:.3f}-{high:.3f}), effect on {sum(flags)}/{len(flags)} seeds"


def findings_table(experiments: list[Experiment], results: dict[str, dict], stale: dict) -> str:
    """The README's table: question | anchor | our result | stage | command | CPU minutes."""
    lines = [
        README_START,
        "",
        "| question | literature | our result | stage | command | CPU min |",
        "|---|---|---|---|---|---|",
    ]
    for experiment in experiments:
        result = results.get(experiment.name)
        if result is None:
            continue
        headline = experiment.headline or experiment.measures[-1]
        arms = [a.name for a in experiment.arms if a.name in result["effect_shown"]]
        ours = "; ".join(arm_summary(result, arm, headline) for arm in arms)
        mark = " **(stale)**" if experiment.name in stale else ""
        lines.append(
            f"| {experiment.question} | {experiment.anchor} | {headline.title}: {ours}{mark} | "
            f"{experiment.stage} | `{result['command']}` | {result['wall_s'] / 60:.0f} |"
        )
    return "\n".join([*lines, "", README_END])


def with_findings_table(readme: str, table: str) -> str:
    """The README with its findings table replaced (between the two markers)."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(
            f"README.md has no findings table markers ({README_START!r} ... {README_END!r})"
        )
    return readme[:start] + table + readme[end + len(README_END) :]


def load_results(folder: Path) -> tuple[dict[str, dict], dict]:
    """Every ``NAME.json`` in ``folder`` by name, and ``stale.json`` (or {})."""
    results = {
        path.stem: json.loads(path.read_text())
        for path in sorted(folder.glob("*.json"))
        if path.name != "stale.json"
    }
    stale_path = folder / "stale.json"
    stale = json.loads(stale_path.read_text()) if stale_path.is_file() else {}
    return results, stale


def plot(experiment: Experiment, result: dict, out: Path) -> Path:
    """One panel per plotted metric: each arm's mean over seeds and its lowest-highest band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = experiment.plot_metrics
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        for arm in (a.name for a in experiment.arms if a.name in result["arms"]):
            data = result["arms"][arm]
            rows = [r for r in data["rows"] if r.get(f"{metric}_per_seed") or metric in r]
            x = [r["update"] for r in rows]
            seeds = [r.get(f"{metric}_per_seed") or [r[metric]] for r in rows]
            mean = [sum(s) / len(s) for s in seeds]
            (line,) = axis.plot(x, mean, label=arm)
            axis.fill_between(
                x,
                [min(s) for s in seeds],
                [max(s) for s in seeds],
                color=line.get_color(),
                alpha=0.2,
            )
        axis.set_title(metric)
        axis.set_xlabel("update")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{experiment.name}: {result['seeds']} seeds (mean, lowest-highest)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
