"""Losses and advantages against values worked out by hand."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import algos

pytestmark = pytest.mark.timeout(120)


def test_gae_by_hand_with_an_episode_end():
    # gamma 0.9, lambda 0.8; the episode ends at t=1, a new one runs at t=2.
    rewards = jnp.array([[1.0], [2.0], [0.5]])
    values = jnp.array([[0.5], [1.0], [0.2]])
    dones = jnp.array([[False], [True], [False]])
    last_value = jnp.array([0.4])
    advantages, returns = algos.gae(rewards, values, dones, last_value, 0.9, 0.8)
    delta2 = 0.5 + 0.9 * 0.4 - 0.2  # 0.66
    a2 = delta2
    delta1 = 2.0 - 1.0  # done: no bootstrap
    a1 = delta1
    delta0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    a0 = delta0 + 0.9 * 0.8 * a1  # 2.12
    np.testing.assert_allclose(advantages[:, 0], [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(returns[:, 0], [a0 + 0.5, a1 + 1.0, a2 + 0.2], rtol=1e-6)


def test_grpo_advantages_with_and_without_std():
    rewards = jnp.array([[1.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    plain = algos.grpo_advantages(rewards, normalize_std=False)
    np.testing.assert_allclose(plain, [[2 / 3, -1 / 3, -1 / 3], [0, 0, 0]], atol=1e-6)
    std = math.sqrt(2 / 9)  # population std of (1, 0, 0)
    normalised = algos.grpo_advantages(rewards, normalize_std=True)
    np.testing.assert_allclose(
        normalised[0], np.array([2 / 3, -1 / 3, -1 / 3]) / (std + 1e-6), rtol=1e-5
    )
    np.testing.assert_allclose(normalised[1], 0.0, atol=1e-6)  # a solved group teaches nothing


def test_clipped_policy_loss_clips_each_side():
    # Four tokens: ratio 1.5 and 0.5, each with a positive and a negative advantage.
    log_ratio = jnp.log(jnp.array([[1.5, 1.5, 0.5, 0.5]]))
    old = jnp.zeros((1, 4))
    advantages = jnp.array([[1.0, -1.0, 1.0, -1.0]])
    mask = jnp.ones((1, 4))
    loss, stats = algos.clipped_policy_loss(log_ratio, old, advantages, mask, 0.2, 0.3)
    # min(r*A, clip(r, 0.8, 1.3)*A): 1.3 (clipped), -1.5, 0.5, -0.8 (clipped)
    expected = -np.mean([1.3, -1.5, 0.5, -0.8])
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(stats["clip_frac"], 0.5)
    kl = np.mean([0.5 - np.log(1.5), 0.5 - np.log(1.5), -0.5 - np.log(0.5), -0.5 - np.log(0.5)])
    np.testing.assert_allclose(stats["approx_kl"], kl, rtol=1e-5)


def test_aggregation_modes_on_a_ragged_mask():
    values = jnp.array([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0], [9.0, 9.0, 9.0]])
    mask = jnp.array([[1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=bool)
    assert float(algos.aggregate(values, mask, "token")) == pytest.approx(10 / 4)
    assert float(algos.aggregate(values, mask, "sequence")) == pytest.approx((2.0 + 4.0) / 2)
    assert float(algos.aggregate(values, mask, "constant", max_len=5)) == pytest.approx(10 / 15)
    with pytest.raises(ValueError, match="needs max_len"):
        algos.aggregate(values, mask, "constant")
    with pytest.raises(ValueError, match="valid: token, sequence, constant"):
        algos.aggregate(values, mask, "mean")


def test_kl_estimators_at_a_known_point():
    logp, ref = jnp.log(jnp.array(0.5)), jnp.log(jnp.array(0.25))
    r = 0.25 / 0.5  # pi_ref / pi
    assert float(algos.kl_penalty(logp, ref, "k1")) == pytest.approx(math.log(2))
    assert float(algos.kl_penalty(logp, ref, "k2")) == pytest.approx(0.5 * math.log(2) ** 2)
    assert float(algos.kl_penalty(logp, ref, "k3")) == pytest.approx(r - math.log(r) - 1)
    x = jax.random.normal(jax.random.PRNGKey(0), (100,))
    assert bool(jnp.all(algos.kl_penalty(x, -x, "k3") >= 0))
    for estimator in ("k1", "k2", "k3"):
        np.testing.assert_allclose(algos.kl_penalty(x, x, estimator), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="valid: k1, k2, k3"):
        algos.kl_penalty(x, x, "k4")


def test_masked_distribution_entropy_and_log_probs():
    logits = jnp.array([[3.0, -1.0, 0.5, 2.0]])
    uniform = jnp.zeros((1, 4))
    mask = jnp.array([[True, False, True, True]])
    assert float(algos.masked_entropy(uniform, mask)[0]) == pytest.approx(math.log(3), rel=1e-5)
    log_probs = algos.masked_log_softmax(logits, mask)
    assert float(jnp.exp(log_probs[0, 1])) == 0.0
    np.testing.assert_allclose(jnp.exp(log_probs).sum(), 1.0, rtol=1e-6)
    assert bool(jnp.all(jnp.isfinite(log_probs)))
    # An all-False mask row counts as all legal (no NaN).
    empty = algos.masked_log_softmax(logits, jnp.zeros((1, 4), bool))
    np.testing.assert_allclose(empty, jax.nn.log_softmax(logits), rtol=1e-6)
    chosen = algos.token_log_prob(logits, mask, jnp.array([2]))
    expected = 0.5 - math.log(math.exp(3.0) + math.exp(0.5) + math.exp(2.0))
    assert float(chosen[0]) == pytest.approx(expected, rel=1e-5)


def test_sft_loss_ignores_masked_positions():
    logits = jnp.zeros((1, 3, 4))
    legal = jnp.ones((1, 3, 4), bool).at[0, 0, 2:].set(False)  # 2 legal tokens at step 0
    targets = jnp.array([[0, 1, 3]])
    mask = jnp.array([[True, False, True]])
    expected = (math.log(2) + math.log(4)) / 2
    assert float(algos.sft_loss(logits, legal, targets, mask)) == pytest.approx(expected)
    changed = logits.at[0, 1].set(jnp.array([9.0, -9.0, 0.0, 0.0]))  # a masked position
    assert float(algos.sft_loss(changed, legal, targets, mask)) == pytest.approx(expected)


def test_value_loss_clipped_and_unclipped():
    values = jnp.array([[2.0, 0.0]])
    old = jnp.array([[1.0, 0.0]])
    returns = jnp.array([[3.0, 1.0]])
    mask = jnp.ones((1, 2))
    # Unclipped: 0.5 * mean((2-3)^2, (0-1)^2) = 0.5
    assert float(algos.clipped_value_loss(values, old, returns, mask, None)) == pytest.approx(0.5)
    # Clipped at 0.5: v_clip = 1.5 -> (1.5-3)^2 = 2.25 > 1; second token unchanged: 1.
    assert float(algos.clipped_value_loss(values, old, returns, mask, 0.5)) == pytest.approx(
        0.5 * (2.25 + 1.0) / 2
    )


def test_losses_jit_and_vmap():
    log_probs = jax.random.normal(jax.random.PRNGKey(0), (4, 2, 5))
    advantages = jnp.ones((4, 2, 5))
    mask = jnp.ones((4, 2, 5), bool)

    def loss(lp, adv, m):
        return algos.clipped_policy_loss(lp, jnp.zeros_like(lp), adv, m, 0.2, 0.2)[0]

    batched = jax.jit(jax.vmap(loss))(log_probs, advantages, mask)
    single = [loss(log_probs[i], advantages[i], mask[i]) for i in range(4)]
    np.testing.assert_allclose(batched, single, rtol=1e-5)
    gae = jax.jit(algos.gae, static_argnums=(4, 5))
    adv, _ = gae(
        jnp.ones((3, 2)), jnp.zeros((3, 2)), jnp.zeros((3, 2), bool), jnp.zeros(2), 1.0, 1.0
    )
    np.testing.assert_allclose(adv[:, 0], [3.0, 2.0, 1.0])
