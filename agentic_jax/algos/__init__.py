"""Pure loss and advantage functions for PPO, GRPO and SFT."""

from agentic_jax.algos.advantages import gae, grpo_advantages
from agentic_jax.algos.losses import (
    aggregate,
    clipped_policy_loss,
    clipped_value_loss,
    entropy_bonus,
    kl_penalty,
    masked_entropy,
    masked_log_softmax,
    sft_loss,
    token_log_prob,
    truncated_is_policy_loss,
    truncated_is_weights,
)

__all__ = [
    "aggregate",
    "clipped_policy_loss",
    "clipped_value_loss",
    "entropy_bonus",
    "gae",
    "grpo_advantages",
    "kl_penalty",
    "masked_entropy",
    "masked_log_softmax",
    "sft_loss",
    "token_log_prob",
    "truncated_is_policy_loss",
    "truncated_is_weights",
]
