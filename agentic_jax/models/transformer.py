"""A decoder-only transformer policy with a KV cache, a policy head and a value head.

Two ways to run the same parameters:

- ``__call__(tokens, positions, segments)``: the full-sequence forward used by updates. Rows
  may pack several episodes: a query attends to keys of its own segment at positions up to
  its own; a negative segment marks padding.
- ``decode(token, position, cache)``: one token per row for rollouts. The cache is a tuple
  over layers of ``(keys, values)``, each ``[B, heads, max_len, head_dim]``, indexed by
  transcript position; a layer's keys and values stay separate arrays so the scan carry
  never restacks them. Heads come before positions because that is the layout the decode
  step's attention reads; with positions first, XLA wrote a transposed copy of the whole
  cache at every step, half a rollout's time (``benchmarks/train_throughput.py``).
- ``prefill(tokens, length)``: the cache of a transcript prefix in one full forward.
- ``init_cache(batch_size)``: an all-zero cache.

Cache layout (``Cache``)::

    cache = ((k_0, v_0), (k_1, v_1), ..., (k_{L-1}, v_{L-1}))   # one pair per layer
    k_l, v_l: float32 [B, n_heads, max_len, d_model // n_heads]
    k_l[b, :, p] = key of the token at transcript position p of row b (p < that row's length)

Slots at or beyond a row's current position hold zeros or stale values; ``decode`` writes
slot ``position`` (in place, one slot per row) and attends only to slots ``<= position``,
so they are never read.

Sliding-window attention: with ``attention_window`` w > 0 a query at position p attends only
to keys at positions in ``(p - w, p]`` (itself and the w - 1 before it), in ``__call__`` and
``decode`` alike; 0 is full causal attention. A stack of L layers still reaches back up to
``L * (w - 1)`` positions through intermediate tokens.

``__call__`` and ``decode`` give the same logits and values (``tests/test_models.py``).
Initialisation: block weights LeCun normal (std ``1 / sqrt(fan_in)``; ``init_std`` > 0 sets a
fixed std instead, e.g. GPT-2's 0.02), embeddings normal(0.02),
the policy head normal(0.01) (a near-uniform first policy) and the value head zero. GPT-2's
fixed std 0.02 is far below ``1 / sqrt(64)`` at this width; with it, SFT on KBLookup sits
at its reading plateau (answer a random value of the search result: 0.40) far longer than
with LeCun. No orthogonal initialisation: it runs a batched QR that has deadlocked inside
``jit(vmap(init))`` on a 2-core CPU.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

MASKED = -1e9
Cache = tuple[tuple[jax.Array, jax.Array], ...]


def _dense(features: int, stddev: float = 0.0, name: str | None = None) -> nn.Dense:
    """A dense layer initialised with std ``1 / sqrt(fan_in)`` (LeCun), or ``stddev`` if > 0."""
    init = nn.initializers.normal(stddev) if stddev > 0 else nn.initializers.lecun_normal()
    return nn.Dense(features, kernel_init=init, name=name)


def _attend(q, k, v, mask):
    """Scaled dot-product attention; q [..., H, D], k and v [..., K, H, D], mask [..., K]."""
    scores = jnp.einsum("...hd,...khd->...hk", q, k) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
    scores = jnp.where(mask[..., None, :], scores, MASKED)
    return jnp.einsum("...hk,...khd->...hd", jax.nn.softmax(scores, axis=-1), v)


class Block(nn.Module):
    """Pre-LayerNorm block: x + attn(LN(x)), then x + MLP(LN(x)) with a GELU MLP."""

    d_model: int
    n_heads: int
    mlp_ratio: int
    attention_window: int = 0  # 0: full causal attention; w > 0: keys in (p - w, p]
    init_std: float = 0.0  # 0: LeCun normal; > 0: normal(init_std)

    def setup(self):
        self.attn_norm = nn.LayerNorm()
        self.qkv = _dense(3 * self.d_model, self.init_std)
        self.attn_out = _dense(self.d_model, self.init_std)
        self.mlp_norm = nn.LayerNorm()
        self.mlp_in = _dense(self.mlp_ratio * self.d_model, self.init_std)
        self.mlp_out = _dense(self.d_model, self.init_std)

    def _qkv(self, x):
        q, k, v = jnp.split(self.qkv(self.attn_norm(x)), 3, axis=-1)
        heads = (self.n_heads, self.d_model // self.n_heads)
        return (t.reshape(*t.shape[:-1], *heads) for t in (q, k, v))

    def _finish(self, x, attended):
        x = x + self.attn_out(attended.reshape(*attended.shape[:-2], self.d_model))
        return x + self.mlp_out(nn.gelu(self.mlp_in(self.mlp_norm(x))))

    def __call__(self, x, mask):
        """x [B, S, D], mask [B, S, S] (query, key) -> (x, (keys, values) in the cache layout)."""
        q, k, v = self._qkv(x)
        # Per query: attend over all keys of the row.
        attended = _attend(q, k[:, None], v[:, None], mask)
        return self._finish(x, attended), (k.swapaxes(1, 2), v.swapaxes(1, 2))

    def decode(self, x, position, keys, values):
        """x [B, D] at ``position`` [B]; writes its key/value into the cache, then attends."""
        q, k, v = self._qkv(x)  # [B, H, Dh]
        rows = jnp.arange(x.shape[0])
        keys = keys.at[rows, :, position].set(k)  # in place: one slot per row
        values = values.at[rows, :, position].set(v)
        slots = jnp.arange(keys.shape[2])[None, :]
        visible = slots <= position[:, None]
        if self.attention_window > 0:
            visible &= slots > position[:, None] - self.attention_window
        scores = jnp.einsum("bhd,bhtd->bht", q, keys) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
        scores = jnp.where(visible[:, None, :], scores, MASKED)
        attended = jnp.einsum("bht,bhtd->bhd", jax.nn.softmax(scores, axis=-1), values)
        return self._finish(x, attended), keys, values


class TransformerPolicy(nn.Module):
    vocab_size: int
    max_len: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    mlp_ratio: int = 4
    attention_window: int = 0  # 0: full causal attention; w > 0: a query sees (p - w, p]
    init_std: float = 0.0  # block weights: 0 = LeCun normal, > 0 = normal(init_std)

    def setup(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")
        if self.attention_window < 0:
            raise ValueError(
                f"attention_window must be >= 0 (0 = full attention), got {self.attention_window}"
            )
        if self.init_std < 0:
            raise ValueError(f"init_std must be >= 0 (0 = LeCun normal), got {self.init_std}")
        embed_init = nn.initializers.normal(0.02)
        self.token_embed = nn.Embed(self.vocab_size, self.d_model, embedding_init=embed_init)
        self.position_embed = nn.Embed(self.max_len, self.d_model, embedding_init=embed_init)
        self.blocks = [
            Block(
                self.d_model,
                self.n_heads,
                self.mlp_ratio,
                self.attention_window,
                self.init_std,
                name=f"block_{i}",
            )
            for i in range(self.n_layers)
        ]
        self.final_norm = nn.LayerNorm()
        self.policy_head = _dense(self.vocab_size, stddev=0.01)
        self.value_head = nn.Dense(1, kernel_init=nn.initializers.zeros)

    def _embed(self, tokens, positions):
        positions = jnp.clip(positions, 0, self.max_len - 1)
        return self.token_embed(tokens) + self.position_embed(positions)

    def _heads(self, x):
        x = self.final_norm(x)
        return self.policy_head(x), self.value_head(x)[..., 0]

    def __call__(self, tokens, positions, segments):
        """Full forward: [B, S] int32 inputs -> (logits [B, S, V], values [B, S], per-layer k/v)."""
        same_segment = segments[:, :, None] == segments[:, None, :]
        causal = positions[:, None, :] <= positions[:, :, None]
        if self.attention_window > 0:
            causal &= positions[:, None, :] > positions[:, :, None] - self.attention_window
        mask = same_segment & causal & (segments[:, None, :] >= 0)
        x = self._embed(tokens, positions)
        cache = []
        for block in self.blocks:
            x, kv = block(x, mask)
            cache.append(kv)
        logits, values = self._heads(x)
        return logits, values, tuple(cache)

    def prefill(self, tokens, length) -> Cache:
        """The cache of a transcript prefix: tokens [B, max_len], ``length`` [B] valid.

        Runs the full forward with positions ``arange(max_len)`` and segment 0 for the first
        ``length`` tokens, -1 (padding) after, so cache index == position. Slots at or past
        ``length`` hold the padding tokens' keys/values; ``decode`` overwrites or ignores them.
        """
        index = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
        segments = jnp.where(index < length[:, None], 0, -1)
        _, _, cache = self(tokens, index, segments)
        return cache

    def decode(self, token, position, cache: Cache):
        """One step: token, position [B] int32 -> (logits [B, V], values [B], updated cache).

        Writes this token's key/value into every layer's cache at slot ``position`` (per
        row), then attends over slots ``<= position``. Matches ``__call__`` at that position.
        """
        x = self._embed(token, position)
        new_cache = []
        for block, (keys, values) in zip(self.blocks, cache, strict=True):
            x, keys, values = block.decode(x, position, keys, values)
            new_cache.append((keys, values))
        logits, value = self._heads(x)
        return logits, value, tuple(new_cache)

    def init_cache(self, batch_size: int) -> Cache:
        """An all-zero cache for ``batch_size`` rows (needs no params: ``model.init_cache(B)``)."""
        shape = (batch_size, self.n_heads, self.max_len, self.d_model // self.n_heads)
        return tuple(
            (jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32))
            for _ in range(self.n_layers)
        )


def count_params(params) -> int:
    """Total number of scalars in a parameter pytree (e.g. ``model.init(...)``)."""
    return sum(int(x.size) for x in jax.tree.leaves(params))
