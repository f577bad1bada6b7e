"""The transformer: decode step == full forward, packed segments, prefill, causality, vmap init."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax.models import TransformerPolicy, count_params

pytestmark = pytest.mark.timeout(180)

VOCAB, T, BATCH = 32, 16, 3
MODEL = TransformerPolicy(vocab_size=VOCAB, max_len=T, d_model=32, n_layers=2, n_heads=4)


def arange_rows(batch=BATCH, length=T):
    return jnp.broadcast_to(jnp.arange(length), (batch, length)).astype(jnp.int32)


@pytest.fixture(scope="module")
def params():
    tokens = jnp.zeros((1, T), jnp.int32)
    params = MODEL.init(jax.random.PRNGKey(0), tokens, tokens, tokens)
    # Perturb every weight so that no head is trivially zero (the value head starts at 0).
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    leaves = [x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(tree, leaves)


@pytest.fixture(scope="module")
def tokens():
    return jax.random.randint(jax.random.PRNGKey(2), (BATCH, T), 0, VOCAB)


def full(params, tokens, positions=None, segments=None):
    positions = arange_rows(*tokens.shape) if positions is None else positions
    segments = jnp.zeros_like(tokens) if segments is None else segments
    return MODEL.apply(params, tokens, positions, segments)


def decode_all(params, tokens, cache, start=0):
    step = jax.jit(lambda p, t, i, c: MODEL.apply(p, t, i, c, method=TransformerPolicy.decode))
    logits, values = [], []
    for t in range(start, tokens.shape[1]):
        position = jnp.full((tokens.shape[0],), t, jnp.int32)
        out_logits, out_values, cache = step(params, tokens[:, t], position, cache)
        logits.append(out_logits)
        values.append(out_values)
    return jnp.stack(logits, 1), jnp.stack(values, 1)


def test_decode_steps_match_the_full_forward(params, tokens):
    logits, values, _ = full(params, tokens)
    assert logits.shape == (BATCH, T, VOCAB) and values.shape == (BATCH, T)
    step_logits, step_values = decode_all(params, tokens, MODEL.init_cache(BATCH))
    np.testing.assert_allclose(step_logits, logits, atol=1e-4)
    np.testing.assert_allclose(step_values, values, atol=1e-4)
    assert float(jnp.abs(values).max()) > 0  # the check compared something


def test_prefill_then_decode_matches(params, tokens):
    logits, _, _ = full(params, tokens)
    k = 6
    cache = MODEL.apply(params, tokens, jnp.full((BATCH,), k), method=TransformerPolicy.prefill)
    step_logits, _ = decode_all(params, tokens, cache, start=k)
    np.testing.assert_allclose(step_logits, logits[:, k:], atol=1e-4)


def test_packed_segments_equal_separate_sequences(params, tokens):
    # Row: segment 0 = tokens[0, :10] at positions 0..9, segment 1 = tokens[1, :6] at 0..5.
    packed = jnp.concatenate([tokens[0, :10], tokens[1, :6]])[None]
    positions = jnp.concatenate([jnp.arange(10), jnp.arange(6)])[None]
    segments = jnp.concatenate([jnp.zeros(10), jnp.ones(6)]).astype(jnp.int32)[None]
    packed_logits, packed_values, _ = full(params, packed, positions, segments)
    alone, alone_values, _ = full(params, tokens[:2])
    np.testing.assert_allclose(packed_logits[0, :10], alone[0, :10], atol=1e-4)
    np.testing.assert_allclose(packed_logits[0, 10:], alone[1, :6], atol=1e-4)
    np.testing.assert_allclose(packed_values[0, 10:], alone_values[1, :6], atol=1e-4)


def test_padding_keys_are_ignored_and_outputs_finite(params, tokens):
    segments = jnp.zeros((BATCH, T), jnp.int32).at[:, 8:].set(-1)
    logits, values, _ = full(params, tokens, segments=segments)
    reference, _, _ = full(params, tokens[:, :8], arange_rows(BATCH, 8))
    np.testing.assert_allclose(logits[:, :8], reference, atol=1e-4)
    assert bool(jnp.all(jnp.isfinite(logits))) and bool(jnp.all(jnp.isfinite(values)))


def test_causality(params, tokens):
    logits, _, _ = full(params, tokens)
    changed = tokens.at[:, 10].set((tokens[:, 10] + 1) % VOCAB)
    changed_logits, _, _ = full(params, changed)
    np.testing.assert_allclose(changed_logits[:, :10], logits[:, :10], atol=1e-6)
    assert not np.allclose(changed_logits[:, 10:], logits[:, 10:])


def test_init_is_deterministic_and_vmappable_over_seeds():
    tokens = jnp.zeros((1, T), jnp.int32)
    init = jax.jit(jax.vmap(lambda k: MODEL.init(k, tokens, tokens, tokens)))
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    batched = init(keys)
    again = init(keys)
    jax.tree.map(np.testing.assert_array_equal, batched, again)
    single = MODEL.init(keys[2], tokens, tokens, tokens)
    jax.tree.map(lambda b, s: np.testing.assert_allclose(b[2], s, rtol=1e-6), batched, single)
    emb = batched["params"]["token_embed"]["embedding"]
    assert not np.allclose(emb[0], emb[1])
    assert count_params(single) > 0
    # Seeds' parameters through a jitted, vmapped forward.
    logits, _, _ = jax.jit(jax.vmap(lambda p: MODEL.apply(p, tokens, tokens, tokens)))(batched)
    assert logits.shape == (4, 1, T, VOCAB) and bool(jnp.all(jnp.isfinite(logits)))


def test_heads_must_divide_width():
    bad = TransformerPolicy(vocab_size=VOCAB, max_len=T, d_model=30, n_heads=4)
    tokens = jnp.zeros((1, T), jnp.int32)
    with pytest.raises(ValueError, match="n_heads=4 must divide d_model=30"):
        bad.init(jax.random.PRNGKey(0), tokens, tokens, tokens)
