"""Pure loss and advantage functions, one file per algorithm, and the one registry.

An RL algorithm is an ``Algorithm`` (``base.py``) declared in its own module; ``ALGORITHMS``
below maps its name to it, and nothing else in the package compares algorithm names.

- ``grpo``: group-relative advantages and the GRPO loss (Dr.GRPO and DAPO options);
- ``ppo``: GAE, the clipped value loss and the PPO loss;
- ``sft``: cross-entropy on the agent's tokens (the supervised stages);
- ``corrections``: the clipped surrogate and its off-policy corrections (none / tis /
  decoupled) as one function; ``policy``: the objective the algorithms share and the typed
  minibatch; ``kl``: the KL penalty; ``masked``: masked distributions and aggregation.
"""

from __future__ import annotations

from agentic_jax.algos import grpo, gspo, ppo, rloo
from agentic_jax.algos.base import Algorithm

ALGORITHMS: dict[str, Algorithm] = {
    "grpo": grpo.ALGORITHM,
    "ppo": ppo.ALGORITHM,
    "rloo": rloo.ALGORITHM,
    "gspo": gspo.ALGORITHM,
}


def algorithm(name: str) -> Algorithm:
    """The registered algorithm ``name``; a clear error names the valid ones."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; valid: {', '.join(ALGORITHMS)}") from None


__all__ = ["ALGORITHMS", "Algorithm", "algorithm"]
