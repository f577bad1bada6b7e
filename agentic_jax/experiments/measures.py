"""Measures several findings read (``agentic_jax.experiments.findings`` and its topic
modules)."""

from __future__ import annotations

from agentic_jax.experiments.spec import Measure

SUCCESS_BASE = Measure("eval/success", "pretrain", "held-out success, base")
SUCCESS = Measure("eval/success", "final", "held-out success, after RL")
