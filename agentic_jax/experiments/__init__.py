"""Findings as code: every result agentic-jax reports is a registered experiment.

``agentic-jax reproduce NAME`` runs one (``--list`` shows them all, ``--quick`` a seconds-long
version); its result is data (``benchmarks/results/NAME.json``), and RESULTS.md and the
README's findings table are rendered from those files (``agentic_jax.experiments.report``).
A new finding is one declaration in ``agentic_jax/experiments/findings.py``.
"""

from __future__ import annotations

from agentic_jax.experiments.findings import FINDINGS
from agentic_jax.experiments.spec import Arm, Effect, Experiment, Measure

EXPERIMENTS: dict[str, Experiment] = {experiment.name: experiment for experiment in FINDINGS}
assert len(EXPERIMENTS) == len(FINDINGS), "two experiments share a name"


def get(name: str) -> Experiment:
    """The registered experiment ``name``; a clear error names the valid ones."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(
            f"unknown experiment {name!r}; registered: {', '.join(EXPERIMENTS)}"
        ) from None


__all__ = ["EXPERIMENTS", "Arm", "Effect", "Experiment", "Measure", "get"]
