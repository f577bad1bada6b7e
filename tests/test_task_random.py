"""The samplers' one-draw helpers: ranges, uniformity, choices among allowed entries, orders."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax.task import (
    below,
    between,
    random_order,
    random_words,
    stable_argsort,
    uniform_choice,
    weighted_choice,
)

pytestmark = pytest.mark.timeout(120)

N = 20_000


def draws(shape=()):
    """``N`` independent draws of words of ``shape``: one ``random_words`` call per key."""
    keys = jax.random.split(jax.random.PRNGKey(0), N)
    return jax.vmap(lambda k: random_words(k, w=shape)["w"])(keys)


def test_random_words_has_the_named_shapes_and_is_deterministic():
    key = jax.random.PRNGKey(3)
    words = random_words(key, a=(), b=(4, 3), c=(2,))
    assert {k: v.shape for k, v in words.items()} == {"a": (), "b": (4, 3), "c": (2,)}
    assert all(v.dtype == jnp.uint32 for v in words.values())
    again = random_words(key, a=(), b=(4, 3), c=(2,))
    assert all(np.array_equal(words[k], again[k]) for k in words)
    # The parts are different words of one draw, not one word repeated.
    assert len(np.unique(np.concatenate([np.ravel(v) for v in words.values()]))) == 15


def test_below_and_between_are_uniform_over_their_range():
    words = draws()
    counts = np.bincount(np.asarray(below(words, 7)), minlength=7)
    assert counts.shape == (7,)
    np.testing.assert_allclose(counts / N, 1 / 7, atol=0.015)
    # A traced bound under jit, as samplers use it.
    values = np.asarray(jax.jit(between)(words, jnp.int32(10), jnp.int32(13)))
    assert set(np.unique(values)) == {10, 11, 12}
    assert below(words, 1).max() == 0


def test_uniform_choice_draws_only_allowed_entries_uniformly():
    allowed = jnp.array([False, True, False, True, True, False])
    chosen = np.asarray(jax.vmap(uniform_choice, in_axes=(0, None))(draws(), allowed))
    counts = np.bincount(chosen, minlength=6)
    assert counts[[0, 2, 5]].sum() == 0
    np.testing.assert_allclose(counts[[1, 3, 4]] / N, 1 / 3, atol=0.015)
    assert int(uniform_choice(jnp.uint32(12345), jnp.zeros(6, bool))) == 0  # none allowed


def test_weighted_choice_follows_the_weights():
    weights = jnp.array([1.0, 0.0, 3.0])
    chosen = np.asarray(jax.vmap(weighted_choice, in_axes=(0, None))(draws(), weights))
    counts = np.bincount(chosen, minlength=3) / N
    np.testing.assert_allclose(counts, [0.25, 0.0, 0.75], atol=0.015)


def test_random_order_is_a_uniform_permutation_with_first_in_front():
    words = draws((5,))
    orders = np.asarray(jax.vmap(random_order)(words))
    assert (np.sort(orders, axis=1) == np.arange(5)).all()
    np.testing.assert_allclose(np.mean(orders[:, 0] == 2), 1 / 5, atol=0.015)
    fronted = np.asarray(jax.vmap(lambda w: random_order(w, first=jnp.int32(3)))(words))
    assert (fronted[:, 0] == 3).all() and (np.sort(fronted, axis=1) == np.arange(5)).all()


def test_stable_argsort_is_numpys_stable_argsort_ties_included():
    for n in (5, 10, 16):
        for seed in range(20):
            high = 4 if seed % 2 else 1000  # many ties, then few
            keys = jax.random.randint(jax.random.PRNGKey(seed), (7, n), 0, high)
            expected = np.argsort(np.asarray(keys), axis=-1, kind="stable")
            np.testing.assert_array_equal(stable_argsort(keys.astype(jnp.uint32)), expected)
