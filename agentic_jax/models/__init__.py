"""Policies: a decoder-only transformer with a KV cache."""

from agentic_jax.models.transformer import TransformerPolicy, count_params

__all__ = ["TransformerPolicy", "count_params"]
