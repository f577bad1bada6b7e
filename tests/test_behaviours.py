"""Behaviour corpora: the mixture's weights hold over many draws, each behaviour changes the
plan as documented, and the default (all on the oracle) changes nothing."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.behaviours import BEHAVIOURS, inside
from agentic_jax.envs import make, static_overrides
from agentic_jax.rollout import oracle_step, rollout_episodes

pytestmark = pytest.mark.timeout(300)


@functools.cache
def compiled(env_id, static):
    """One environment per shape, its batched reset and oracle rollout compiled once; the
    traced parameters (the mixture among them) are arguments."""
    env, _ = make(env_id, **dict(static))
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    rollout = jax.jit(lambda params, key: rollout_episodes(env, params, oracle_step(env), None,
                                                           key, 64))  # fmt: skip
    return reset, rollout


def split(env_id, overrides):
    overrides = {"behaviours": True} | overrides
    static = tuple(sorted((k, v) for k, v in overrides.items() if k in static_overrides(env_id)))
    return compiled(env_id, static), make(env_id, **overrides)[1]


def starts(env_id, count, **overrides):
    (reset, _), params = split(env_id, overrides)
    return reset(jax.random.split(jax.random.PRNGKey(0), count), params)[1]


def oracle_rollout(env_id, **overrides):
    (_, rollout), params = split(env_id, overrides)
    return rollout(params, jax.random.PRNGKey(3))


def only(name):
    return {name: 1.0}


def call_and_answer_spans(plan):
    """Boolean masks of the tool-name, argument and answer positions of plans ``[N, K]``."""
    in_call = inside(plan, tk.CALL_OPEN, tk.CALL_CLOSE) & (plan != tk.CALL_CLOSE)
    tool_name = in_call & jnp.roll(plan == tk.CALL_OPEN, 1, axis=-1)
    answer = inside(plan, tk.ANSWER_OPEN, tk.ANSWER_CLOSE) & (plan != tk.ANSWER_CLOSE)
    return np.asarray(tool_name), np.asarray(in_call & ~tool_name), np.asarray(answer)


def think_lengths(plan):
    return np.asarray((inside(plan, tk.THINK_OPEN, tk.THINK_CLOSE) & (plan != tk.THINK_CLOSE)
                       & (plan != tk.PAD)).sum(axis=1))  # fmt: skip


def test_the_mixture_weights_hold_in_10000_draws():
    """Each behaviour's share of 10,000 episodes, told apart by its plan (KBLookup: a search
    then an answer; a guess has no call; a wrong answer keeps the call)."""
    weights = {"oracle": 0.4, "wrong_answer": 0.3, "guess": 0.2, "no_thinking": 0.1}
    state = starts("KBLookup-v0", count=10_000, behaviour_probs=weights)
    oracle = starts("KBLookup-v0", count=10_000)
    same = np.asarray((state.task.plan == oracle.task.plan).all(axis=1))
    has_call = np.asarray((state.task.plan == tk.CALL_OPEN).any(axis=1))
    # A random answer can equal the right one (1 in 8 values): count those as the oracle's.
    guesses = ~has_call
    np.testing.assert_allclose(guesses.mean(), 0.2, atol=0.015)
    changed = ~same & has_call  # wrong answers (KBLookup has no thinking to drop)
    np.testing.assert_allclose(changed.mean(), 0.3 * (1 - 1 / 8), atol=0.02)
    np.testing.assert_allclose((same & has_call).mean(), 0.4 + 0.1 + 0.3 / 8, atol=0.02)


def test_the_default_leaves_every_plan_as_it_was():
    a = starts("KBLookup-v0", count=64)
    b = starts("KBLookup-v0", count=64, behaviour_probs=only("oracle"))
    assert np.array_equal(a.task.plan, b.task.plan)


def test_a_harness_without_behaviours_plays_the_oracle_alike_and_refuses_a_mixture():
    """Built without ``behaviours`` (the default), the corruption is not compiled: the same
    oracle transcripts, and a mixture it would ignore is refused."""
    with_them = oracle_rollout("KBLookup-v0")
    env, params = make("KBLookup-v0")
    assert not env.behaviours
    without = rollout_episodes(env, params, oracle_step(env), None, jax.random.PRNGKey(3), 64)
    assert np.array_equal(with_them.env_state.transcript, without.env_state.transcript)
    assert make("KBLookup-v0", behaviour_probs={"guess": 1.0})[0].behaviours
    with pytest.raises(ValueError, match="built without them"):
        make("KBLookup-v0", behaviours=False, behaviour_probs={"guess": 1.0})
    with pytest.raises(ValueError, match="built without them"):
        env.reset(jax.random.PRNGKey(0), params.replace(behaviour_probs=(0.0, 1.0) + (0.0,) * 9))


def test_each_behaviour_changes_what_it_says():
    oracle = starts("Tally-v0", count=256).task
    thinks = np.asarray((oracle.plan == tk.THINK_OPEN).any(axis=1))
    assert thinks.any()
    plain = starts("Tally-v0", behaviour_probs=only("no_thinking"), count=256).task
    assert not np.asarray(plain.plan == tk.THINK_OPEN).any()
    answer = np.asarray(inside(oracle.plan, tk.ANSWER_OPEN, tk.ANSWER_CLOSE)
                        & (oracle.plan != tk.ANSWER_CLOSE))  # fmt: skip
    wrong = starts("Tally-v0", behaviour_probs=only("wrong_answer"), count=256).task
    assert np.array_equal(np.asarray(wrong.plan)[~answer], np.asarray(oracle.plan)[~answer])
    assert (np.asarray(wrong.plan)[answer] != np.asarray(oracle.plan)[answer]).mean() > 0.5


def test_thinking_cut_short_and_over_long():
    """``short_thinking`` keeps the first half of each segment; ``long_thinking`` writes each
    thinking token twice (Tally thinks in one segment, within its budget here)."""
    oracle = think_lengths(starts("Tally-v0", think_budget=16, count=256).task.plan)
    assert oracle.max() >= 3
    np.testing.assert_array_equal(
        think_lengths(
            starts(
                "Tally-v0", think_budget=16, behaviour_probs=only("short_thinking"), count=256
            ).task.plan
        ),
        oracle // 2,
    )
    long = starts(
        "Tally-v0", think_budget=16, behaviour_probs=only("long_thinking"), count=256
    ).task
    np.testing.assert_array_equal(think_lengths(long.plan), 2 * oracle)
    # With no room in the budget, over-long thinking is the oracle's thinking.
    tight = think_lengths(
        starts(
            "Tally-v0", think_budget=2, behaviour_probs=only("long_thinking"), count=256
        ).task.plan
    )
    np.testing.assert_array_equal(tight, np.where(2 * oracle <= 2, 2 * oracle, oracle))


def test_the_noisy_oracle_slips_at_its_rate():
    """``behaviour_noise`` 0 is the oracle; at 0.3 about 30% of call and answer tokens are
    drawn anew (minus the draws that land on the right token), the rest kept."""
    oracle = starts("Arithmetic-v0", count=2_000).task.plan
    assert np.array_equal(
        starts(
            "Arithmetic-v0", behaviour_probs=only("noisy"), behaviour_noise=0.0, count=2_000
        ).task.plan,
        oracle,
    )
    noisy = starts(
        "Arithmetic-v0", behaviour_probs=only("noisy"), behaviour_noise=0.3, count=2_000
    ).task.plan
    _, arguments, answer = call_and_answer_spans(oracle)
    changed = np.asarray(noisy != oracle)
    assert 0.2 < changed[arguments].mean() < 0.3
    # A slip in the call or the answer makes the whole answer random: with no call slip, the
    # answer (3 tokens) is kept when none of its tokens slipped, 0.7 ** 3 = 0.343.
    call_slipped = (changed & arguments).any(axis=1)
    answer_kept = (~changed | ~answer).all(axis=1)
    assert 0.27 < answer_kept[~call_slipped].mean() < 0.42
    assert answer_kept[call_slipped].mean() < 0.1


def test_wrong_tool_and_give_up_on_flakyapi():
    """FlakyAPI's retry oracle calls api, api, backup: ``wrong_tool`` draws the names among
    the two tools (and answers at random after a changed one); ``give_up`` stops after the
    first call."""
    oracle = starts("FlakyAPI-v0", oracle_mode=1, count=512).task.plan
    swapped = starts(
        "FlakyAPI-v0", oracle_mode=1, behaviour_probs=only("wrong_tool"), count=512
    ).task.plan
    tool_name, _, answer = call_and_answer_spans(oracle)
    assert np.isin(np.asarray(swapped)[tool_name], tk.ids(("api", "backup"))).all()
    changed = np.asarray(swapped != oracle)
    assert 0.3 < changed[tool_name].mean() < 0.7
    any_swap = (changed & tool_name).any(axis=1)
    assert not (changed & ~tool_name)[~any_swap].any()
    gave_up = starts(
        "FlakyAPI-v0", oracle_mode=1, behaviour_probs=only("give_up"), count=512
    ).task.plan
    assert np.all(np.asarray(gave_up == tk.CALL_OPEN).sum(axis=1) == 1)


def test_revise_runs_a_near_miss_first_then_the_plan():
    """CodeSynth's oracle runs the program and answers it; ``revise`` first runs a copy with
    one program token changed (a near miss), then the oracle's plan, unchanged."""
    oracle = np.asarray(starts("CodeSynth-v0", count=256).task.plan)
    revised = np.asarray(starts("CodeSynth-v0", behaviour_probs=only("revise"),
                                count=256).task.plan)  # fmt: skip
    assert (revised == tk.CALL_OPEN).sum(axis=1).tolist() == [2] * 256
    for old, new in zip(oracle, revised, strict=True):
        span = int(np.argmax(old == tk.CALL_CLOSE)) + 1  # the oracle's plan opens with its call
        assert np.array_equal(new[span:], old[: len(old) - span])
        assert (new[:span] != old[:span]).sum() <= 1  # one argument token (or the same drawn)
    assert np.mean([(n[:s] != o[:s]).sum() == 1 for o, n, s in
                    zip(oracle, revised, (np.argmax(oracle == tk.CALL_CLOSE, axis=1) + 1),
                        strict=True)]) > 0.8  # fmt: skip
    rollout = oracle_rollout("CodeSynth-v0", behaviour_probs=only("revise"))
    assert float(rollout.stats["success"]) == 1.0
    assert float(rollout.stats["tool_calls"]) == 2.0


ALWAYS_RIGHT = ("oracle", "no_thinking", "short_thinking", "long_thinking", "shortcut", "revise")


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@pytest.mark.parametrize("env_id", ["KBLookup-v0", "Tally-v0"])
def test_every_behaviour_plays_legally(behaviour, env_id):
    """The oracle policy following a corrupted plan never writes an illegal token; only the
    plans that keep the answer's source always succeed (Tally counts in its thinking, so
    cutting it short loses nothing the plan needs); a guess never calls a tool; the
    shortcut (KBLookup's leak variant) always hacks."""
    if behaviour == "shortcut" and env_id == "Tally-v0":
        pytest.skip("Tally has no leak")
    leak = {"leak": True} if env_id == "KBLookup-v0" else {}
    rollout = oracle_rollout(env_id, behaviour_probs=only(behaviour), **leak)
    assert float(rollout.stats["invalid"]) == 0.0
    success = float(rollout.stats["success"])
    right = behaviour in ALWAYS_RIGHT or (behaviour == "wrong_tool")  # one tool: nothing to swap
    if behaviour == "noisy":  # slips at 0.1 per call or answer token
        assert 0.5 < success < 1.0 or (env_id == "Tally-v0" and 0.5 < success <= 1.0)
    else:
        assert success == 1.0 if right else success < 0.5
    if behaviour == "guess":
        assert float(rollout.stats["tool_calls"]) == 0.0
    assert float(rollout.stats["hacks"]) == (1.0 if behaviour == "shortcut" else 0.0)


def test_bad_mixtures_are_refused():
    with pytest.raises(ValueError, match="behaviour_probs=.* sum to 0"):
        make("KBLookup-v0", behaviour_probs={"oracle": 0.0})
    with pytest.raises(ValueError, match="behaviour_probs=-1.0 is outside"):
        make("KBLookup-v0", behaviour_probs={"oracle": -1.0, "guess": 1.0})
    with pytest.raises(TypeError, match=f"must be a list of {len(BEHAVIOURS)} numbers"):
        make("KBLookup-v0", behaviour_probs=(1.0, 0.0))
    with pytest.raises(
        ValueError, match="unknown behaviour.* gues in behaviour_probs; valid: oracle, "
    ):
        make("KBLookup-v0", behaviour_probs={"gues": 1.0})
    with pytest.raises(ValueError, match="behaviour_noise=1.5 is outside"):
        make("KBLookup-v0", behaviour_noise=1.5)
    with pytest.raises(ValueError, match="weight to 'shortcut', but this environment has no"):
        make("FlakyAPI-v0", behaviour_probs={"oracle": 0.9, "shortcut": 0.1})
