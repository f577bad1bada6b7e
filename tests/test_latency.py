"""Tool latency distributions: quantiles over 10,000 draws against their closed forms, the
cap and the timeout, the uniform family's draws unchanged, determinism and jit/vmap."""

import math

import jax
import numpy as np
import pytest

from agentic_jax.tools import latency as lt

pytestmark = pytest.mark.timeout(120)
KEY = jax.random.PRNGKey(0)
BIG = 10_000  # a static bound far above every draw here


def test_uniform_matches_a_plain_uniform_draw_from_the_same_key():
    keys = jax.random.split(KEY, 64)
    spec = lt.Latency(kind=lt.UNIFORM, low=2, high=4)
    ours = jax.vmap(lambda k: lt.draw(k, spec, 8)[0])(keys)
    plain = jax.vmap(lambda k: jax.random.randint(k, (), 2, 5))(keys)
    np.testing.assert_array_equal(ours, plain)
    q = lt.quantiles(KEY, spec, 8)
    assert q["p50"] == 3 and q["max"] == 4 and q["mean"] == pytest.approx(3.0, abs=0.05)


def test_lognormal_quantiles_and_mean():
    """Mean 8, sigma 1: median 8 e^{-1/2} = 4.85, p90 = median e^{1.2816} = 17.5."""
    q = lt.quantiles(KEY, lt.Latency(kind=lt.LOGNORMAL, mean=8.0, shape=1.0), BIG)
    median = 8 * math.exp(-0.5)
    assert q["p50"] == pytest.approx(median, abs=0.6)  # whole steps
    assert q["p90"] == pytest.approx(median * math.exp(1.2816), rel=0.06)
    assert q["mean"] == pytest.approx(8.0, rel=0.05)


def test_pareto_quantiles():
    """Mean 8, alpha 2: x_m = 4, quantile q at x_m (1 - q)^(-1/2): p50 5.66, p90 12.6, p99 40."""
    q = lt.quantiles(KEY, lt.Latency(kind=lt.PARETO, mean=8.0, shape=2.0), BIG)
    assert q["p50"] == pytest.approx(4 * 2**0.5, abs=0.6)
    assert q["p90"] == pytest.approx(4 * 10**0.5, rel=0.06)
    assert q["p99"] == pytest.approx(40.0, rel=0.15)


def test_the_tail_grows_with_the_shape_at_the_same_mean():
    ratios = []
    for sigma in (0.25, 1.0, 2.0):
        q = lt.quantiles(KEY, lt.Latency(kind=lt.LOGNORMAL, mean=16.0, shape=sigma), BIG)
        ratios.append(q["p99"] / q["p50"])
    assert ratios[0] < 2 < ratios[1] < 15 < ratios[2]


def test_cap_timeout_and_the_static_bound():
    heavy = lt.Latency(kind=lt.PARETO, mean=8.0, shape=1.2)
    assert lt.quantiles(KEY, heavy.replace(cap=20), BIG)["max"] == 20
    assert lt.quantiles(KEY, heavy, 16)["max"] == 16
    q = lt.quantiles(KEY, lt.Latency(kind=lt.LOGNORMAL, mean=8.0, shape=1.0, timeout=20), BIG)
    median = 8 * math.exp(-0.5)
    beyond = 0.5 * math.erfc(math.log(20.5 / median) / math.sqrt(2))  # P(round(X) > 20)
    assert q["timed_out"] == pytest.approx(beyond, abs=0.01)
    assert q["max"] == 20  # a timed-out call waits the timeout


def test_same_key_same_wait_and_one_compile_for_every_setting():
    def as_arrays(spec):
        return jax.tree.map(np.asarray, spec)

    once = jax.jit(lambda k, s: lt.draw(k, s, BIG))
    lognormal = as_arrays(lt.Latency(kind=lt.LOGNORMAL, low=0, high=0, mean=8.0, shape=1.0))
    np.testing.assert_array_equal(once(KEY, lognormal)[0], once(KEY, lognormal)[0])
    pareto = as_arrays(lt.Latency(kind=lt.PARETO, low=0, high=0, mean=4.0, shape=2.0))
    once(KEY, pareto)  # the family and its parameters are traced: no second compile
    assert once._cache_size() == 1


def test_an_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match="valid: uniform, lognormal, pareto"):
        lt.kind_index("gamma")
