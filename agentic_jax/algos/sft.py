"""SFT: imitate transcripts (the oracle's, or a behaviour corpus) with cross-entropy on the
agent's own tokens only, as LLM SFT masks the prompt and the tool outputs."""

from __future__ import annotations

from typing import Any

import jax

from agentic_jax.algos.masked import aggregate
from agentic_jax.algos.policy import Evaluate


def loss(params: Any, evaluate: Evaluate, trajectory: Any) -> jax.Array:
    """The SFT loss of ``params``: the masked mean NLL of the trajectory's actions."""
    log_probs = evaluate(params, trajectory).log_probs
    return aggregate(-log_probs, trajectory.loss_mask, "token")
