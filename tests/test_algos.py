"""Losses and advantages against values worked out by hand."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from agentic_jax import stats
from agentic_jax.algos import corrections, grpo, kl, masked, ppo, sft
from agentic_jax.algos.policy import (
    Minibatch,
    PolicyOutputs,
    SurrogateHyperparams,
    policy_objective,
)

pytestmark = pytest.mark.timeout(120)
ON_POLICY = SurrogateHyperparams(off_policy="none")  # as the trainer sets it without staleness


@struct.dataclass
class SimpleTrajectory:
    actions: jax.Array
    loss_mask: jax.Array


@struct.dataclass
class GroupTrajectory:
    actions: jax.Array
    loss_mask: jax.Array
    rewards: jax.Array
    group: jax.Array
    segments: jax.Array


# ---------------------------------------------------------------------------- advantages
def test_per_mode_advantages_by_hand():
    """One group of four (Dr.GRPO's centring, no std): two think (first agent token 7) and
    earn 0.9 and 0.0, two answer at once (token 9) and earn 1.0 each. Shared: every token
    takes r - 0.725. Per mode: the first agent token keeps it; the later tokens take r minus
    their mode's mean: +0.45 and -0.45 for the thinkers, 0 for the direct answers."""
    rewards = jnp.array([0.9, 0.0, 1.0, 1.0])
    mask = jnp.array([[0, 1, 1, 1], [0, 1, 1, 1], [0, 1, 1, 0], [0, 1, 1, 0]], bool)
    actions = jnp.array([[0, 7, 3, 4], [0, 7, 5, 4], [0, 9, 4, 0], [0, 9, 4, 0]])
    traj = GroupTrajectory(
        actions, mask, jnp.zeros((4, 4)).at[:, 3].set(rewards), jnp.zeros(4, jnp.int32),
        jnp.zeros((4, 4), jnp.int32),
    )  # fmt: skip
    shared = grpo.token_advantages(traj, 1, normalize_std=False)
    np.testing.assert_allclose(
        shared, np.broadcast_to((rewards - 0.725)[:, None], (4, 4)), atol=1e-6
    )
    per_mode = np.asarray(grpo.token_advantages(traj, 1, normalize_std=False, per_mode=True))
    np.testing.assert_allclose(per_mode[:, 1], rewards - 0.725, atol=1e-6)  # the decisions
    np.testing.assert_allclose(per_mode[:, 2], [0.45, -0.45, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(per_mode[:, 3], [0.45, -0.45, 0.0, 0.0], atol=1e-6)


def test_gae_by_hand_with_episode_ends():
    # gamma 0.9, lambda 0.8 (gamma * lambda = 0.72); two envs, time-major [T=3, N=2].
    # env 0: the episode ends at t=1 and a new one runs at t=2 (bootstraps from last_value).
    # env 1: the episode ends at the final step, so last_value (100) must be ignored.
    rewards = jnp.array([[1.0, 0.0], [2.0, 1.0], [0.5, 1.0]])
    values = jnp.array([[0.5, 0.5], [1.0, 0.5], [0.2, 0.5]])
    dones = jnp.array([[False, False], [True, False], [False, True]])
    last_value = jnp.array([0.4, 100.0])
    advantages, returns = ppo.gae(rewards, values, dones, last_value, 0.9, 0.8)
    # env 0: a2 = 0.5 + 0.9*0.4 - 0.2 = 0.66;  a1 = 2 - 1 = 1 (done: no bootstrap, no carry)
    #        a0 = (1 + 0.9*1 - 0.5) + 0.72*1 = 2.12
    # env 1: a2 = 1 - 0.5 = 0.5;  a1 = (1 + 0.45 - 0.5) + 0.72*0.5 = 1.31
    #        a0 = (0 + 0.45 - 0.5) + 0.72*1.31 = 0.8932
    expected = np.array([[2.12, 0.8932], [1.0, 1.31], [0.66, 0.5]])
    np.testing.assert_allclose(advantages, expected, rtol=1e-5)
    np.testing.assert_allclose(returns, expected + np.asarray(values), rtol=1e-5)
    assert advantages.dtype == jnp.float32


def test_grpo_advantages_with_and_without_std():
    rewards = jnp.array([[1.0, 0.0, 0.0], [3.0, 1.0, 2.0]])
    centred = np.array([[2 / 3, -1 / 3, -1 / 3], [1.0, -1.0, 0.0]])
    group = jnp.array([[0, 0, 0], [1, 1, 1]])

    def advantages(rewards, normalize_std=True):  # [B, G] groups as the flat episode axis
        flat = grpo.grpo_advantages(rewards.reshape(-1), group.reshape(-1), 2, normalize_std)
        return flat.reshape(rewards.shape)

    plain = advantages(rewards, normalize_std=False)
    np.testing.assert_allclose(plain, centred, atol=1e-6)
    # Population std (ddof=0): sqrt(2/9) and sqrt(2/3) (the sample std of row 1 would be 1).
    std = np.array([[math.sqrt(2 / 9)], [math.sqrt(2 / 3)]])
    np.testing.assert_allclose(
        advantages(rewards, normalize_std=True), centred / (std + 1e-6), rtol=1e-5
    )
    # A group with equal rewards teaches nothing, and is not NaN.
    solved = grpo.grpo_advantages(jnp.full(4, 2.0), jnp.zeros(4, jnp.int32), 1)
    np.testing.assert_array_equal(solved, np.zeros(4))
    # Groups are named, not ordered: interleaved rows give the same advantages.
    shuffled = jnp.array([3.0, 1.0, 1.0, 0.0, 0.0, 2.0])
    ids = jnp.array([1, 0, 1, 0, 0, 1])
    expected = advantages(rewards, normalize_std=False).reshape(-1)[jnp.array([3, 0, 4, 1, 2, 5])]
    np.testing.assert_allclose(grpo.grpo_advantages(shuffled, ids, 2, False), expected, atol=1e-6)


# ---------------------------------------------------------------------------- policy loss
def _four_clip_cases():
    """Ratios 1.5 and 0.5, each with a positive and a negative advantage."""
    log_probs = jnp.log(jnp.array([[1.5, 1.5, 0.5, 0.5]]))
    old = jnp.zeros((1, 4))
    advantages = jnp.array([[1.0, -1.0, 1.0, -1.0]])
    return log_probs, old, advantages


def test_clipped_policy_loss_clips_each_side():
    log_probs, old, advantages = _four_clip_cases()
    mask = jnp.ones((1, 4))
    loss, stats = corrections.clipped_policy_loss(log_probs, old, advantages, mask, 0.2, 0.3)
    # min(r*A, clip(r, 0.8, 1.3)*A): 1.3 (clipped high), -1.5, 0.5, -0.8 (clipped low)
    per_token = -np.array([1.3, -1.5, 0.5, -0.8])
    np.testing.assert_allclose(loss, per_token.mean(), rtol=1e-6)
    for i in range(4):  # each token alone (one-hot mask), so no two errors can cancel
        alone = jnp.zeros((1, 4)).at[0, i].set(1.0)
        loss_i, _ = corrections.clipped_policy_loss(log_probs, old, advantages, alone, 0.2, 0.3)
        np.testing.assert_allclose(loss_i, per_token[i], rtol=1e-6)
    np.testing.assert_allclose(stats["clip_frac"], 0.5)
    kl = np.mean(2 * [0.5 - np.log(1.5)] + 2 * [-0.5 - np.log(0.5)])
    np.testing.assert_allclose(stats["approx_kl"], kl, rtol=1e-5)

    # Clipped tokens pass no gradient; the others get d(-r*A)/dlogp = -r*A / 4.
    def loss_of(lp):
        return corrections.clipped_policy_loss(lp, old, advantages, mask, 0.2, 0.3)[0]

    grads = jax.grad(loss_of)(log_probs)
    np.testing.assert_allclose(grads, [[0.0, 1.5 / 4, -0.5 / 4, 0.0]], atol=1e-6)


def test_clipped_policy_loss_uses_mask_and_mode():
    log_probs, old, advantages = _four_clip_cases()
    mask = jnp.array([[1.0, 0.0, 1.0, 1.0]])  # drop the second token
    # Per-token losses on kept tokens: -1.3, -0.5, 0.8 -> sum -1.0; clipped: tokens 0 and 3.
    loss, stats = corrections.clipped_policy_loss(log_probs, old, advantages, mask, 0.2, 0.3)
    np.testing.assert_allclose(loss, -1.0 / 3, rtol=1e-6)
    np.testing.assert_allclose(stats["clip_frac"], 2 / 3, rtol=1e-6)
    kl = (0.5 - math.log(1.5) + 2 * (-0.5 - math.log(0.5))) / 3  # (r - 1) - log r
    np.testing.assert_allclose(stats["approx_kl"], kl, rtol=1e-5)
    constant, _ = corrections.clipped_policy_loss(
        log_probs, old, advantages, mask, 0.2, 0.3, mode="constant", max_len=5
    )
    np.testing.assert_allclose(constant, -1.0 / 5, rtol=1e-6)
    # At ratio 1 nothing is clipped and the loss is -mean(A).
    zero = jnp.zeros((1, 4))
    loss, stats = corrections.clipped_policy_loss(
        zero, zero, advantages, jnp.ones((1, 4)), 0.2, 0.2
    )
    assert float(loss) == pytest.approx(0.0, abs=1e-7)
    assert float(stats["clip_frac"]) == 0.0
    assert float(stats["approx_kl"]) == pytest.approx(0.0, abs=1e-7)


# ---------------------------------------------------------------------------- aggregation
@pytest.mark.parametrize("mask_dtype", [bool, jnp.float32])
def test_aggregation_modes_on_a_ragged_mask(mask_dtype):
    values = jnp.array([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0], [9.0, 9.0, 9.0]])
    mask = jnp.array([[1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=mask_dtype)
    # Masked tokens: 1, 2, 3 (sequence mean 2) and 4 (sequence mean 4); the 9s never count.
    assert float(masked.aggregate(values, mask, "token")) == pytest.approx(10 / 4)
    assert float(masked.aggregate(values, mask, "sequence")) == pytest.approx((2.0 + 4.0) / 2)
    assert float(masked.aggregate(values, mask, "constant", max_len=5)) == pytest.approx(10 / 15)
    empty = jnp.zeros_like(mask)
    for mode in ("token", "sequence"):
        assert float(masked.aggregate(values, empty, mode)) == 0.0


@struct.dataclass
class PolicyTrajectory:
    actions: jax.Array
    log_probs: jax.Array
    loss_mask: jax.Array


def test_mode_decision_apart_weighs_each_first_token_as_an_episode():
    """At ratio 1 each token's surrogate is -A. Row 0 (A = 1) has agent tokens at 1, 2, 3;
    row 1 (A = -2) at 0, 1. Joint (token mean): (-3 + 4) / 5. Apart: the first tokens (row
    0's at 1, row 1's at 0) average (-1 + 2) / 2 = 0.5, the rest (-1 - 1 + 2) / 3 = 0."""
    mask = jnp.array([[0, 1, 1, 1], [1, 1, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(
        masked.first_in_row(mask), [[False, True, False, False], [True, False, False, False]]
    )
    zeros = jnp.zeros((2, 4))
    trajectory = PolicyTrajectory(jnp.zeros((2, 4), jnp.int32), zeros, mask)
    batch = Minibatch(trajectory, jnp.array([[1.0] * 4, [-2.0] * 4]))
    outputs = PolicyOutputs(zeros, zeros, zeros)
    joint, _ = policy_objective(outputs, batch, ON_POLICY)
    apart, _ = policy_objective(outputs, batch, ON_POLICY.replace(mode_decision="apart"))
    assert float(joint) == pytest.approx(1 / 5)
    assert float(apart) == pytest.approx(0.5)


def test_bad_option_strings_raise():
    values, mask = jnp.ones((2, 3)), jnp.ones((2, 3))
    with pytest.raises(ValueError, match="needs max_len"):
        masked.aggregate(values, mask, "constant")
    with pytest.raises(ValueError, match=r"'mean'.*valid: token, sequence, constant"):
        masked.aggregate(values, mask, "mean")
    with pytest.raises(ValueError, match=r"'mean'.*valid: token, sequence, constant"):
        corrections.clipped_policy_loss(values, values, values, mask, 0.2, 0.2, mode="mean")
    with pytest.raises(ValueError, match=r"'k4'.*valid: k1, k2, k3"):
        kl.kl_penalty(values, values, "k4")


# ---------------------------------------------------------------------------- KL
def test_kl_estimators_at_a_known_point():
    logp, ref = jnp.log(jnp.array(0.5)), jnp.log(jnp.array(0.25))
    assert float(kl.kl_estimate(logp, ref, "k1")) == pytest.approx(math.log(2))
    assert float(kl.kl_estimate(logp, ref, "k2")) == pytest.approx(0.5 * math.log(2) ** 2)
    assert float(kl.kl_estimate(logp, ref, "k3")) == pytest.approx(0.5 + math.log(2) - 1)

    x = jax.random.normal(jax.random.PRNGKey(0), (100,))
    assert bool(jnp.all(kl.kl_estimate(x, -x, "k3") >= 0))
    for estimator in ("k1", "k2", "k3"):
        np.testing.assert_allclose(kl.kl_estimate(x, x, estimator), 0.0, atol=1e-6)


def test_k1_and_k3_are_unbiased_in_expectation():
    pi, ref = jnp.array([0.5, 0.25, 0.25]), jnp.array([0.25, 0.25, 0.5])
    exact = 0.5 * math.log(2) + 0.25 * math.log(0.5)  # sum pi log(pi / ref) = 0.25 log 2
    for estimator in ("k1", "k3"):
        estimate = jnp.sum(pi * kl.kl_estimate(jnp.log(pi), jnp.log(ref), estimator))
        assert float(estimate) == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("estimator", kl.KL_ESTIMATORS)
def test_kl_penalty_has_the_gradient_of_kl_pi_to_ref(estimator):
    """On a small categorical pi = softmax(theta), the penalty's expected gradient over tokens
    sampled from pi (the expectation taken exactly, the sampling weights held fixed) equals
    the gradient of the exact KL(pi || ref); its value is the estimator's."""
    theta = jnp.array([0.3, -1.2, 0.8, 0.1])
    ref = jax.nn.log_softmax(jnp.array([-0.5, 0.4, 0.2, -0.9]))

    def exact_kl(theta):
        logp = jax.nn.log_softmax(theta)
        return jnp.sum(jnp.exp(logp) * (logp - ref))

    def expected_penalty(theta):
        logp = jax.nn.log_softmax(theta)
        weights = jax.lax.stop_gradient(jnp.exp(logp))  # the samples' distribution
        return jnp.sum(weights * kl.kl_penalty(logp, ref, estimator))

    np.testing.assert_allclose(
        jax.grad(expected_penalty)(theta), jax.grad(exact_kl)(theta), rtol=1e-5, atol=1e-7
    )
    logp = jax.nn.log_softmax(theta)
    np.testing.assert_allclose(
        kl.kl_penalty(logp, ref, estimator), kl.kl_estimate(logp, ref, estimator), rtol=1e-6
    )


def test_an_estimator_differentiated_directly_misses_that_gradient():
    """Why the penalty is not the estimator itself: k1 as a loss has zero expected gradient,
    k3's is that of KL(ref || pi)."""
    theta = jnp.array([0.3, -1.2, 0.8, 0.1])
    ref = jax.nn.log_softmax(jnp.array([-0.5, 0.4, 0.2, -0.9]))

    def expected(estimator):
        def loss(theta):
            logp = jax.nn.log_softmax(theta)
            weights = jax.lax.stop_gradient(jnp.exp(logp))
            return jnp.sum(weights * kl.kl_estimate(logp, ref, estimator))

        return jax.grad(loss)(theta)

    def reverse_kl(theta):
        return jnp.sum(jnp.exp(ref) * (ref - jax.nn.log_softmax(theta)))

    np.testing.assert_allclose(expected("k1"), 0.0, atol=1e-7)
    np.testing.assert_allclose(expected("k3"), jax.grad(reverse_kl)(theta), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------- distributions
def test_masked_log_softmax_and_token_log_prob():
    logits = jnp.array([[3.0, -1.0, 0.5, 2.0]])
    mask = jnp.array([[True, False, True, True]])
    log_probs = masked.masked_log_softmax(logits, mask)
    assert float(jnp.exp(log_probs[0, 1])) == 0.0
    assert bool(jnp.all(jnp.isfinite(log_probs)))
    np.testing.assert_allclose(jnp.exp(log_probs).sum(), 1.0, rtol=1e-6)
    chosen = masked.token_log_prob(logits, mask, jnp.array([2]))
    expected = 0.5 - math.log(math.exp(3.0) + math.exp(0.5) + math.exp(2.0))
    assert float(chosen[0]) == pytest.approx(expected, rel=1e-5)
    # An all-False mask row counts as all legal (no NaN).
    empty = masked.masked_log_softmax(logits, jnp.zeros((1, 4), bool))
    np.testing.assert_allclose(empty, jax.nn.log_softmax(logits), rtol=1e-6)


def test_masked_entropy():
    mask = jnp.array([[True, False, True, True], [False, False, False, False]])
    # Uniform over the legal tokens: log 3; an all-False row is all legal: log 4.
    np.testing.assert_allclose(
        masked.masked_entropy(jnp.zeros((2, 4)), mask), [math.log(3), math.log(4)], rtol=1e-5
    )
    # Non-uniform: the big logit on the illegal token must not matter.
    logits = jnp.array([[0.0, 50.0, math.log(2.0), math.log(5.0)]])
    p = np.array([1.0, 2.0, 5.0]) / 8.0
    assert float(masked.masked_entropy(logits, mask[:1])[0]) == pytest.approx(
        -np.sum(p * np.log(p)), rel=1e-5
    )


def test_entropy_bonus_floor():
    entropy = jnp.array([[0.1, 0.5, 2.0, 9.0]])
    mask = jnp.array([[True, True, True, False]])
    # No floor: the token mean over the mask, (0.1 + 0.5 + 2.0) / 3.
    assert float(masked.entropy_bonus(entropy, mask, 0.0)) == pytest.approx(2.6 / 3, rel=1e-6)
    # Floor 0.3: min(H, 0.3) per token, (0.1 + 0.3 + 0.3) / 3.
    assert float(masked.entropy_bonus(entropy, mask, 0.3)) == pytest.approx(0.7 / 3, rel=1e-6)
    # Only tokens below the floor get a gradient.
    grad = jax.grad(lambda h: masked.entropy_bonus(h, mask, 0.3))(entropy)
    np.testing.assert_allclose(grad, [[1 / 3, 0.0, 0.0, 0.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="floor"):
        masked.entropy_bonus(entropy, mask, -1.0)


def test_gradients_are_finite_with_masks():
    logits = jax.random.normal(jax.random.PRNGKey(1), (3, 5))
    mask = jnp.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 1, 0]], bool)
    tokens = jnp.array([1, 4, 3])  # the first is an illegal token

    def objective(x):
        return masked.masked_entropy(x, mask).sum() + masked.token_log_prob(x, mask, tokens).sum()

    value, grads = jax.value_and_grad(objective)(logits)
    assert bool(jnp.isfinite(value))
    assert bool(jnp.all(jnp.isfinite(grads)))
    # A single legal token: entropy 0 and log-prob 0, whatever the logits.
    assert float(masked.masked_entropy(logits, mask)[2]) == pytest.approx(0.0, abs=1e-6)
    assert float(masked.token_log_prob(logits, mask, tokens)[2]) == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------------------- SFT and value
def test_sft_loss_ignores_masked_positions():
    logits = jnp.zeros((1, 3, 4))
    legal = jnp.ones((1, 3, 4), bool).at[0, 0, 2:].set(False)  # 2 legal tokens at step 0
    targets = jnp.array([[0, 1, 3]])
    mask = jnp.array([[True, False, True]])
    expected = (math.log(2) + math.log(4)) / 2
    trajectory = SimpleTrajectory(actions=targets, loss_mask=mask)

    def evaluate(logits, trajectory):  # the "parameters" are the logits themselves
        log_probs = masked.token_log_prob(logits, legal, trajectory.actions)
        return PolicyOutputs(log_probs=log_probs, entropy=log_probs, values=log_probs)

    assert float(sft.loss(logits, evaluate, trajectory)) == pytest.approx(expected)
    changed = logits.at[0, 1].set(jnp.array([9.0, -9.0, 0.0, 0.0]))  # a masked position
    assert float(sft.loss(changed, evaluate, trajectory)) == pytest.approx(expected)
    grads = jax.grad(sft.loss)(changed, evaluate, trajectory)
    np.testing.assert_array_equal(grads[0, 1], np.zeros(4))


def test_value_loss_clipped_and_unclipped():
    values = jnp.array([[2.0, 0.0, 2.0, 50.0]])
    old = jnp.array([[1.0, 0.0, 1.0, 0.0]])
    returns = jnp.array([[3.0, 1.0, 1.0, 0.0]])
    mask = jnp.array([[1.0, 1.0, 1.0, 0.0]])  # the last (huge-error) token is masked out
    # Unclipped: 0.5 * mean(1, 1, 1) = 0.5
    for no_clip in (None, 0.0, -1.0):
        loss = ppo.clipped_value_loss(values, old, returns, mask, no_clip)
        assert float(loss) == pytest.approx(0.5)
    # eps 0.5: clipped values 1.5, 0, 1.5 -> squared errors 2.25, 1, 0.25;
    # elementwise max with (1, 1, 1) -> 2.25, 1, 1.
    expected = 0.5 * (2.25 + 1.0 + 1.0) / 3
    assert float(ppo.clipped_value_loss(values, old, returns, mask, 0.5)) == pytest.approx(expected)
    traced = jax.jit(ppo.clipped_value_loss)(values, old, returns, mask, jnp.float32(0.5))
    assert float(traced) == pytest.approx(expected)


# ---------------------------------------------------------------------------- transforms
def test_losses_jit_and_vmap():
    log_probs = jax.random.normal(jax.random.PRNGKey(0), (4, 2, 5))
    advantages = jax.random.normal(jax.random.PRNGKey(1), (4, 2, 5))
    mask = jnp.ones((4, 2, 5), bool).at[:, 1, 3:].set(False)

    def loss(lp, adv, m):
        zeros = jnp.zeros_like(lp)
        return corrections.clipped_policy_loss(lp, zeros, adv, m, 0.2, 0.28, mode="sequence")[0]

    batched = jax.jit(jax.vmap(loss))(log_probs, advantages, mask)
    single = [loss(log_probs[i], advantages[i], mask[i]) for i in range(4)]
    np.testing.assert_allclose(batched, single, rtol=1e-5)

    token_mean = jax.jit(functools.partial(masked.aggregate, mode="token"))
    assert float(token_mean(jnp.ones((2, 3)), jnp.ones((2, 3)))) == pytest.approx(1.0)

    rewards = jnp.array([[1.0, 0.0], [0.0, 0.0]])
    group = jnp.zeros(2, jnp.int32)
    grouped = jax.jit(jax.vmap(grpo.grpo_advantages, in_axes=(0, None, None)), static_argnums=2)(
        rewards, group, 1
    )
    np.testing.assert_allclose(grouped[:, 0], [0.5 / (0.5 + 1e-6), 0.0], rtol=1e-5)


def test_gae_jit_and_vmap():
    gae = jax.jit(ppo.gae)  # gamma and lambda may be traced
    adv, ret = gae(
        jnp.ones((3, 2)), jnp.zeros((3, 2)), jnp.zeros((3, 2), bool), jnp.zeros(2), 1.0, 1.0
    )
    np.testing.assert_allclose(adv, [[3.0, 3.0], [2.0, 2.0], [1.0, 1.0]])
    np.testing.assert_allclose(ret, adv)
    # vmap over a leading seed axis gives the same as each call alone.
    rewards = jax.random.normal(jax.random.PRNGKey(2), (2, 4, 3))
    values = jax.random.normal(jax.random.PRNGKey(3), (2, 4, 3))
    dones = jax.random.bernoulli(jax.random.PRNGKey(4), 0.3, (2, 4, 3))
    last = jnp.ones((2, 3))
    batched, _ = jax.vmap(ppo.gae, in_axes=(0, 0, 0, 0, None, None))(
        rewards, values, dones, last, 0.99, 0.95
    )
    for i in range(2):
        single, _ = ppo.gae(rewards[i], values[i], dones[i], last[i], 0.99, 0.95)
        np.testing.assert_allclose(batched[i], single, rtol=1e-5)


def test_informative_groups_on_a_hand_made_batch():
    """Groups 0 (1, 0), 1 (1, 1), 2 (0, 0) and 3 (0.5, 0.2): two of four differ. Group 4 has
    no episode and is not counted."""
    rewards = jnp.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.5, 0.2])
    group = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert float(stats.informative_groups(rewards, group, 5)) == 0.5
    assert float(stats.informative_groups(jnp.ones(4), jnp.array([0, 0, 1, 1]), 2)) == 0.0


def test_pass_at_k_against_hand_computed_values():
    from math import comb

    from agentic_jax.algos.pass_at_k import pass_at_k, pass_at_ks

    # n = 5, c = 2: pass@1 = 2/5, pass@2 = 1 - C(3, 2) / C(5, 2) = 1 - 3/10.
    assert pass_at_k(5, [2], 1) == pytest.approx(0.4)
    assert pass_at_k(5, [2], 2) == pytest.approx(0.7)
    assert pass_at_k(5, [2], 4) == 1.0  # 3 wrong samples cannot fill 4 draws
    # Averaged over tasks, and equal to the binomial form at a large n.
    assert pass_at_k(4, [0, 4], 2) == pytest.approx(0.5)
    exact = 1 - comb(256 - 3, 64) / comb(256, 64)
    assert pass_at_k(256, [3], 64) == pytest.approx(exact, rel=1e-9)
    assert list(pass_at_ks(8, [1])) == [1, 2, 4, 8]
    with pytest.raises(ValueError, match="1 <= k <= samples per task"):
        pass_at_k(4, [1], 5)


def test_the_decision_entropy_bonus_reads_only_each_first_agent_token():
    """Entropy 0.1 on the first agent tokens, 2.0 elsewhere, floor 0.5, coefficient 1: over all
    tokens the bonus is the mean of min(H, 0.5), (2 x 0.1 + 3 x 0.5) / 5; over the decisions
    only, 0.1. At ratio 1 with zero advantages the loss is minus the bonus."""
    mask = jnp.array([[0, 1, 1, 1], [1, 1, 0, 0]], dtype=bool)
    entropy = jnp.where(masked.first_in_row(mask), 0.1, 2.0)
    zeros = jnp.zeros((2, 4))
    trajectory = PolicyTrajectory(jnp.zeros((2, 4), jnp.int32), zeros, mask)
    batch = Minibatch(trajectory, zeros)
    outputs = PolicyOutputs(zeros, entropy, zeros)
    floor = ON_POLICY.replace(entropy_coef=1.0, entropy_floor=0.5)
    every, _ = policy_objective(outputs, batch, floor)
    decision, _ = policy_objective(outputs, batch, floor.replace(entropy_tokens="decision"))
    assert float(every) == pytest.approx(-(2 * 0.1 + 3 * 0.5) / 5)
    assert float(decision) == pytest.approx(-0.1)
    with pytest.raises(ValueError, match=r"'first'.*valid: all, decision"):
        policy_objective(outputs, batch, floor.replace(entropy_tokens="first"))
