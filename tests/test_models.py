"""The transformer: decode step == full forward, packed segments, prefill, causality, vmap init."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from agentic_jax.models import TransformerPolicy, count_params

pytestmark = pytest.mark.timeout(180)

VOCAB, T, BATCH, D_MODEL, HEADS, LAYERS = 32, 16, 3, 32, 4, 2
MODEL = TransformerPolicy(
    vocab_size=VOCAB, max_len=T, d_model=D_MODEL, n_layers=LAYERS, n_heads=HEADS
)
CACHE_SHAPE = (BATCH, HEADS, T, D_MODEL // HEADS)

_forward = jax.jit(MODEL.apply)
_prefill = jax.jit(lambda p, t, n: MODEL.apply(p, t, n, method=TransformerPolicy.prefill))
_decode = jax.jit(lambda p, t, i, c: MODEL.apply(p, t, i, c, method=TransformerPolicy.decode))


def _init_one(key):
    tokens = jnp.zeros((1, T), jnp.int32)
    return MODEL.init(key, tokens, tokens, tokens)


init = jax.jit(_init_one)  # eager flax init costs seconds on CPU; compile it once


@jax.jit
def _perturb(params, key):
    """Every weight perturbed, so that no head is trivially zero (the value head starts at 0)."""
    flat, unravel = ravel_pytree(params)  # one random draw: threefry compiles slowly per shape
    return unravel(flat + 0.1 * jax.random.normal(key, flat.shape))


def arange_rows(batch=BATCH, length=T):
    return jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))


@pytest.fixture(scope="module")
def params():
    return _perturb(init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))


@pytest.fixture(scope="module")
def tokens():
    return jax.random.randint(jax.random.PRNGKey(2), (BATCH, T), 0, VOCAB, jnp.int32)


def full(params, tokens, positions=None, segments=None):
    positions = arange_rows(*tokens.shape) if positions is None else positions
    segments = jnp.zeros_like(tokens) if segments is None else segments
    return _forward(params, tokens, positions, segments)


def decode_all(params, tokens, cache, start=0):
    """Decode tokens[:, start:] one step at a time (all rows at the same position)."""
    logits, values = [], []
    for t in range(start, tokens.shape[1]):
        position = jnp.full((tokens.shape[0],), t, jnp.int32)
        out_logits, out_values, cache = _decode(params, tokens[:, t], position, cache)
        logits.append(out_logits)
        values.append(out_values)
    return jnp.stack(logits, 1), jnp.stack(values, 1), cache


def assert_caches_close(a, b, upto=None):
    assert len(a) == len(b) == LAYERS
    for (ka, va), (kb, vb) in zip(a, b, strict=True):
        np.testing.assert_allclose(ka[:, :, :upto], kb[:, :, :upto], atol=1e-5)
        np.testing.assert_allclose(va[:, :, :upto], vb[:, :, :upto], atol=1e-5)


def test_shapes_dtypes_and_finiteness(params, tokens):
    logits, values, cache = full(params, tokens)
    assert logits.shape == (BATCH, T, VOCAB) and values.shape == (BATCH, T)
    assert logits.dtype == values.dtype == jnp.float32
    assert isinstance(cache, tuple) and len(cache) == LAYERS
    for kv in cache:
        assert isinstance(kv, tuple) and [x.shape for x in kv] == [CACHE_SHAPE] * 2
    empty = MODEL.init_cache(BATCH)
    assert len(empty) == LAYERS
    for k, v in empty:
        assert k.shape == v.shape == CACHE_SHAPE and k.dtype == jnp.float32
        assert not bool(jnp.any(k)) and not bool(jnp.any(v))
    step_logits, step_values, step_cache = _decode(
        params, tokens[:, 0], jnp.zeros((BATCH,), jnp.int32), empty
    )
    assert step_logits.shape == (BATCH, VOCAB) and step_values.shape == (BATCH,)
    assert jax.tree.map(jnp.shape, step_cache) == jax.tree.map(jnp.shape, empty)
    for x in (logits, values, step_logits, step_values):
        assert bool(jnp.all(jnp.isfinite(x)))


def test_decode_steps_match_the_full_forward(params, tokens):
    logits, values, cache = full(params, tokens)
    step_logits, step_values, step_cache = decode_all(params, tokens, MODEL.init_cache(BATCH))
    np.testing.assert_allclose(step_logits, logits, atol=1e-4)
    np.testing.assert_allclose(step_values, values, atol=1e-4)
    assert float(jnp.abs(values).max()) > 0  # the check compared something
    # Decoding every position fills the cache with exactly the full forward's keys/values.
    assert_caches_close(step_cache, cache)


def test_prefill_then_decode_matches(params, tokens):
    logits, values, _ = full(params, tokens)
    k = 6
    cache = _prefill(params, tokens, jnp.full((BATCH,), k, jnp.int32))
    assert jax.tree.map(jnp.shape, cache) == jax.tree.map(jnp.shape, MODEL.init_cache(BATCH))
    _, _, decoded_cache = decode_all(params, tokens[:, :k], MODEL.init_cache(BATCH))
    assert_caches_close(cache, decoded_cache, upto=k)  # cache index == position
    step_logits, step_values, _ = decode_all(params, tokens, cache, start=k)
    np.testing.assert_allclose(step_logits, logits[:, k:], atol=1e-4)
    np.testing.assert_allclose(step_values, values[:, k:], atol=1e-4)


def test_rows_at_different_positions(params, tokens):
    """The rollout case: each row has its own prefix length and decodes at its own position."""
    logits, values, _ = full(params, tokens)
    lengths = jnp.array([3, 7, 11], jnp.int32)
    # Garbage after each prefix must not matter: the prefix is all the prefill sees.
    noisy = jnp.where(arange_rows() < lengths[:, None], tokens, (tokens * 7 + 3) % VOCAB)
    cache = _prefill(params, noisy, lengths)
    rows = jnp.arange(BATCH)
    for step in range(T - int(lengths.max())):
        position = lengths + step
        step_logits, step_values, cache = _decode(params, tokens[rows, position], position, cache)
        np.testing.assert_allclose(step_logits, logits[rows, position], atol=1e-4)
        np.testing.assert_allclose(step_values, values[rows, position], atol=1e-4)


def test_packed_segments_equal_separate_sequences(params, tokens):
    # Row 0 packs three episodes: tokens[0, :7] at positions 0..6 (segment 0), tokens[1, :5]
    # at 0..4 (segment 1), tokens[2, :4] at 0..3 (segment 2). Rows 1, 2 hold one episode each.
    packed = jnp.concatenate([tokens[0, :7], tokens[1, :5], tokens[2, :4]])
    positions = jnp.concatenate([jnp.arange(7), jnp.arange(5), jnp.arange(4)])
    segments = jnp.repeat(jnp.arange(3), jnp.array([7, 5, 4]), total_repeat_length=T)
    packed_tokens = tokens.at[0].set(packed)
    packed_positions = arange_rows().at[0].set(positions)
    packed_segments = jnp.zeros((BATCH, T), jnp.int32).at[0].set(segments)
    logits, values, cache = full(params, packed_tokens, packed_positions, packed_segments)
    alone, alone_values, alone_cache = full(params, tokens)
    for row, (start, stop) in enumerate([(0, 7), (7, 12), (12, 16)]):
        n = stop - start
        np.testing.assert_allclose(logits[0, start:stop], alone[row, :n], atol=1e-4)
        np.testing.assert_allclose(values[0, start:stop], alone_values[row, :n], atol=1e-4)
        for (k, v), (k_alone, v_alone) in zip(cache, alone_cache, strict=True):
            np.testing.assert_allclose(k[0, :, start:stop], k_alone[row, :, :n], atol=1e-5)
            np.testing.assert_allclose(v[0, :, start:stop], v_alone[row, :, :n], atol=1e-5)
    np.testing.assert_allclose(logits[1:], alone[1:], atol=1e-6)  # other rows untouched


def test_padding_keys_are_ignored_and_outputs_finite(params, tokens):
    # Tokens after index 8 are padding (segment -1) holding arbitrary ids.
    segments = jnp.zeros((BATCH, T), jnp.int32).at[:, 8:].set(-1)
    garbage = tokens.at[:, 8:].set((tokens[:, 8:] * 7 + 3) % VOCAB)
    logits, values, _ = full(params, garbage, segments=segments)
    reference, reference_values, _ = full(params, tokens)
    np.testing.assert_allclose(logits[:, :8], reference[:, :8], atol=1e-4)
    np.testing.assert_allclose(values[:, :8], reference_values[:, :8], atol=1e-4)
    # Padding queries see no key at all; they must still be finite (no NaN from softmax).
    assert bool(jnp.all(jnp.isfinite(logits))) and bool(jnp.all(jnp.isfinite(values)))
    # A row that is entirely padding, and the gradient through it.
    pad = jnp.full_like(tokens, -1)
    assert all(
        bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(full(params, tokens, None, pad))
    )
    grads = jax.grad(lambda p: full(p, tokens, segments=pad)[0].sum())(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_causality(params, tokens):
    logits, values, _ = full(params, tokens)
    changed = tokens.at[:, 10].set((tokens[:, 10] + 1) % VOCAB)
    changed_logits, changed_values, _ = full(params, changed)
    np.testing.assert_allclose(changed_logits[:, :10], logits[:, :10], atol=1e-6)
    np.testing.assert_allclose(changed_values[:, :10], values[:, :10], atol=1e-6)
    assert not np.allclose(changed_logits[:, 10:], logits[:, 10:])


def test_init_is_deterministic_and_vmappable_over_seeds():
    seeds = 4
    vinit = jax.jit(jax.vmap(_init_one))
    keys = jax.random.split(jax.random.PRNGKey(3), seeds)
    batched = vinit(keys)
    jax.tree.map(np.testing.assert_array_equal, batched, vinit(keys))
    single = init(keys[2])
    jax.tree.map(lambda b, s: np.testing.assert_allclose(b[2], s, rtol=1e-6), batched, single)
    emb = batched["params"]["token_embed"]["embedding"]
    assert not np.allclose(emb[0], emb[1])
    # Same key -> same outputs; different seeds -> different outputs.
    tokens = jax.random.randint(jax.random.PRNGKey(4), (BATCH, T), 0, VOCAB, jnp.int32)
    positions, segments = arange_rows(), jnp.zeros((BATCH, T), jnp.int32)
    vforward = jax.jit(jax.vmap(lambda p: MODEL.apply(p, tokens, positions, segments)))
    logits, _, _ = vforward(batched)
    assert logits.shape == (seeds, BATCH, T, VOCAB) and bool(jnp.all(jnp.isfinite(logits)))
    np.testing.assert_array_equal(logits, vforward(vinit(keys))[0])
    np.testing.assert_allclose(logits[2], full(single, tokens)[0], atol=1e-6)
    assert not np.allclose(logits[0], logits[1])
    # Seeds' parameters and caches through a jitted, vmapped decode step.
    first, start = tokens[:, 0], jnp.zeros((BATCH,), jnp.int32)
    vdecode = jax.jit(
        jax.vmap(lambda p, c: MODEL.apply(p, first, start, c, method=TransformerPolicy.decode))
    )
    caches = jax.tree.map(lambda x: jnp.broadcast_to(x, (seeds, *x.shape)), MODEL.init_cache(BATCH))
    step_logits, step_values, new_caches = vdecode(batched, caches)
    assert step_logits.shape == (seeds, BATCH, VOCAB) and step_values.shape == (seeds, BATCH)
    assert new_caches[0][0].shape == (seeds, *CACHE_SHAPE)
    np.testing.assert_allclose(step_logits[2], logits[2][:, 0], atol=1e-4)


def test_count_params():
    params = init(jax.random.PRNGKey(0))
    d, f = D_MODEL, 4 * D_MODEL
    norm = 2 * d
    block = norm + d * 3 * d + 3 * d + d * d + d + norm + d * f + f + f * d + d
    expected = VOCAB * d + T * d + LAYERS * block + norm + d * VOCAB + VOCAB + d + 1
    assert count_params(params) == expected


def test_init_scales_and_no_orthogonal_init():
    params = init(jax.random.PRNGKey(5))["params"]
    assert float(params["policy_head"]["kernel"].std()) == pytest.approx(0.01, rel=0.1)
    assert not bool(jnp.any(params["value_head"]["kernel"]))
    # Block weights are LeCun normal: std 1 / sqrt(fan_in), not an orthogonal matrix.
    qkv = params["block_0"]["qkv"]["kernel"]
    assert float(qkv.std()) == pytest.approx(D_MODEL**-0.5, rel=0.1)
    assert not np.allclose(qkv.T @ qkv, np.eye(qkv.shape[1]), atol=0.1)
    mlp_out = params["block_1"]["mlp_out"]["kernel"]  # fan_in = 4 * D_MODEL
    assert float(mlp_out.std()) == pytest.approx((4 * D_MODEL) ** -0.5, rel=0.1)


def test_fixed_init_std_option_and_its_bad_value():
    tokens = jnp.zeros((1, T), jnp.int32)
    gpt2_style = TransformerPolicy(vocab_size=VOCAB, max_len=T, d_model=D_MODEL, init_std=0.02)
    params = gpt2_style.init(jax.random.PRNGKey(5), tokens, tokens, tokens)["params"]
    assert float(params["block_0"]["qkv"]["kernel"].std()) == pytest.approx(0.02, rel=0.1)
    bad = TransformerPolicy(vocab_size=VOCAB, max_len=T, init_std=-1.0)
    with pytest.raises(ValueError, match="init_std must be >= 0"):
        bad.init(jax.random.PRNGKey(0), tokens, tokens, tokens)


def test_heads_must_divide_width():
    bad = TransformerPolicy(vocab_size=VOCAB, max_len=T, d_model=30, n_heads=4)
    tokens = jnp.zeros((1, T), jnp.int32)
    with pytest.raises(ValueError, match="n_heads=4 must divide d_model=30"):
        bad.init(jax.random.PRNGKey(0), tokens, tokens, tokens)
