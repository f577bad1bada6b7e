"""SFT: imitate transcripts (the oracle's, or a behaviour corpus) with cross-entropy on the
agent's own tokens only, as LLM SFT masks the prompt and the tool outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from agentic_jax.algos.masked import aggregate
from agentic_jax.algos.policy import PolicyOutputs


def loss(params: Any, evaluate: Callable[[Any, Any], PolicyOutputs], trajectory: Any) -> jax.Array:
    """The SFT loss of ``params``: the masked mean NLL of the trajectory's actions."""
    log_probs = evaluate(params, trajectory).log_probs
    return aggregate(-log_probs, trajectory.loss_mask, "token")
