"""Policies: a decoder-only transformer with a KV cache, and an MLP for vector observations."""

from agentic_jax.models.mlp import ActorCritic
from agentic_jax.models.transformer import TransformerPolicy, count_params

__all__ = ["ActorCritic", "TransformerPolicy", "count_params"]
