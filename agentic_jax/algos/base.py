"""What an RL algorithm is to the trainer: one ``Algorithm`` value, declared in its own module
and named in the registry (``agentic_jax.algos.ALGORITHMS``). Nothing outside the registry
compares an algorithm's name; the trainer, the config checks and the actors read these fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import jax

from agentic_jax.algos.policy import Evaluate, LossAndMetrics, Minibatch

# (trajectory [N, L], last_value [N], hyperparameters, num_groups)
#   -> (advantages [N, L], value targets [N, L] or None)
Advantages = Callable[[Any, jax.Array, Any, int], tuple[jax.Array, jax.Array | None]]
# (params, the policy's forward pass, minibatch, hyperparameters) -> (loss, metrics)
Loss = Callable[[Any, Evaluate, Minibatch, Any], LossAndMetrics]


@dataclass(frozen=True)
class Algorithm:
    """An RL algorithm: its hyperparameters, how it estimates advantages, its loss, and the
    batching it needs."""

    name: str
    # A flax.struct dataclass of traced and static fields (agentic_jax.algos.hyperparams): the
    # config's algo section, the TrainState's, what advantages and loss read.
    hyperparams: type
    advantages: Advantages
    loss: Loss
    # Compares the G samples of each task (GRPO's groups): needs rollout.batching=episodes and
    # rollout.group_size >= 2.
    grouped: bool
    # Learns a value head (value targets, GAE): what a stream's cut episodes bootstrap from.
    critic: bool
    summary: str = ""

    def declares(self, key: str) -> bool:
        """Whether ``algo.<key>`` is one of this algorithm's hyperparameters."""
        return key in {field.name for field in fields(self.hyperparams)}
