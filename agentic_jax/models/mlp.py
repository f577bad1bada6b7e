"""An MLP actor-critic for vector observations (gymnax classic control), as PureJaxRL's.

Separate actor and critic towers of ``layers`` tanh layers of ``hidden`` units. Weights are
drawn from a scaled normal rather than the orthogonal initialiser PureJaxRL uses: batched
QR inside ``jit(vmap(...))`` has deadlocked on a 2-core CPU with jaxlib 0.10.2.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def _dense(features: int, scale: float) -> nn.Dense:
    return nn.Dense(
        features,
        kernel_init=nn.initializers.variance_scaling(scale**2, "fan_in", "truncated_normal"),
        bias_init=nn.initializers.zeros,
    )


class ActorCritic(nn.Module):
    num_actions: int
    hidden: int = 64
    layers: int = 2

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """obs [..., D] -> (logits [..., A], value [...])."""
        actor, critic = obs, obs
        for _ in range(self.layers):
            actor = jnp.tanh(_dense(self.hidden, jnp.sqrt(2.0))(actor))
            critic = jnp.tanh(_dense(self.hidden, jnp.sqrt(2.0))(critic))
        logits = _dense(self.num_actions, 0.01)(actor)
        value = _dense(1, 1.0)(critic)[..., 0]
        return logits, value
