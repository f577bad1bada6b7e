"""What an RL algorithm is to the trainer: one ``Algorithm`` value, declared in its own module
and named in the registry (``agentic_jax.algos.ALGORITHMS``). Nothing outside the registry
compares an algorithm's name; the trainer, the config checks and the actors read these fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax

from agentic_jax.algos.policy import Coefficients, Evaluate, LossAndMetrics, LossSettings, Minibatch

# (trajectory [N, L], last_value [N], hyper (traced gamma, gae_lambda ...), num_groups, algo
# config) -> (advantages [N, L], value targets [N, L] or None)
Advantages = Callable[[Any, jax.Array, Any, int, Any], tuple[jax.Array, jax.Array | None]]
Loss = Callable[[Any, Evaluate, Minibatch, Coefficients, LossSettings], LossAndMetrics]


@dataclass(frozen=True)
class Algorithm:
    """An RL algorithm: how it estimates advantages, its loss, and the batching it needs."""

    name: str
    advantages: Advantages
    loss: Loss
    # Compares the G samples of each task (GRPO's groups): needs rollout.batching=episodes and
    # rollout.group_size >= 2.
    grouped: bool
    # Learns a value head (value targets, GAE): what a stream's cut episodes bootstrap from.
    critic: bool
    # Reads algo.mode_advantage=per_mode (the mode decision's advantage apart from its tokens').
    per_mode: bool = False
    summary: str = ""
