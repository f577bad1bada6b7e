"""agentic-jax: agentic RL in pure JAX."""
