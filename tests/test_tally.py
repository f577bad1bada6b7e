"""Tally-v0: running sums in <think>, hidden digits behind `read`, interleaved or monologue."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.envs import make
from agentic_jax.envs.tally import held_out, running_sums
from agentic_jax.rollout import oracle_step, random_step, rollout_episodes
from agentic_jax.task import without_segments

pytestmark = pytest.mark.timeout(300)

HIDDEN, HIDDEN_PARAMS = make("Tally-v0", hidden=True, min_items=1, max_items=4)
T = tk.TOKEN_ID


@functools.partial(jax.jit, static_argnames=("env", "oracle"))
def play(env, params, key, oracle=True):
    policy = oracle_step(env) if oracle else random_step
    rollout = rollout_episodes(env, params, policy, None, key, 128)
    return rollout.trajectory, rollout.stats, rollout.env_state


def test_running_sums_by_hand():
    assert running_sums(jnp.array([0, 3, 7, 4])).tolist() == [4, 1, 4, 4]


def test_shown_oracle_thinks_one_running_sum_per_addition():
    env, params = make("Tally-v0", width=8, min_items=8, max_items=8)
    _, stats, final = play(env, params, jax.random.PRNGKey(0))
    assert float(stats["success"]) == 1.0
    assert float(stats["think_tokens"]) == 7.0  # n - 1 additions
    row = np.asarray(final.transcript[0])
    digits = np.asarray(final.task.world.digits[0])
    think = row[np.argmax(row == tk.THINK_OPEN) + 1 : np.argmax(row == tk.THINK_CLOSE)]
    assert tk.decode(think) == " ".join(str(s) for s in np.cumsum(digits[::-1])[1:] % 10)


def test_hidden_oracle_reads_every_item_and_thinks_after_each_result():
    params = HIDDEN_PARAMS.replace(task=HIDDEN_PARAMS.task.replace(min_items=4))
    _, stats, final = play(HIDDEN, params, jax.random.PRNGKey(1))
    assert float(stats["success"]) == 1.0 and float(stats["invalid"]) == 0.0
    assert float(stats["tool_calls"]) == 4.0 and float(stats["think_tokens"]) == 3.0
    text = tk.decode(final.transcript[0])
    assert text.count("<think>") == 3 and text.index("<think>") > text.index("</result>")
    for name in np.asarray(final.task.world.names[0]):  # the digits are never shown
        assert tk.VOCAB[int(name)] in text.split("</task>")[0]


def test_monologue_forbids_thinking_after_the_first_call():
    params = HIDDEN_PARAMS.replace(think_between_calls=False)
    _, stats, final = play(HIDDEN, params, jax.random.PRNGKey(2))
    assert float(stats["success"]) == 1.0  # the oracle answers directly instead
    assert float(stats["think_tokens"]) == 0.0
    _, stats, final = play(HIDDEN, params, jax.random.PRNGKey(3), oracle=False)
    rows = np.asarray(final.transcript)
    for row in rows:  # a random legal policy may think, but never after a call
        if tk.THINK_OPEN in row and tk.CALL_OPEN in row:
            assert np.argmax(row == tk.THINK_OPEN) < np.argmax(row == tk.CALL_OPEN)
    assert float(stats["invalid"]) == 0.0
    assert any(tk.THINK_OPEN in row for row in rows)  # thinking first is still legal


def test_without_segments_after_keeps_the_thinking_before_the_first_call():
    plan = [tk.THINK_OPEN, T["1"], tk.THINK_CLOSE, tk.CALL_OPEN, T["read"], T["bob"],
            tk.CALL_CLOSE, tk.THINK_OPEN, T["2"], tk.THINK_CLOSE, tk.ANSWER_OPEN, T["2"],
            tk.ANSWER_CLOSE]  # fmt: skip
    kept, length = without_segments(
        jnp.array(plan), jnp.int32(len(plan)), tk.THINK_OPEN, tk.THINK_CLOSE, after=tk.CALL_OPEN
    )
    expected = plan[:7] + plan[10:]
    assert int(length) == len(expected)
    assert kept.tolist()[: len(expected)] == expected


def test_effort_fitting_counts_thinking_in_every_segment():
    """Interleaved thinking is 1 token in each of n - 1 segments: high (3) fits 4 items."""
    env, params = make("Tally-v0", hidden=True, min_items=4, max_items=4, effort=True,
                       effort_budgets=[0, 1, 2, 3])  # fmt: skip
    for level, thinking in ((3, 3.0), (2, 0.0), (0, 0.0)):
        p = params.replace(effort_probs=tuple(float(i == level) for i in range(4)))
        _, stats, _ = play(env, p, jax.random.PRNGKey(level))
        assert float(stats["success"]) == 1.0
        assert float(stats["think_tokens"]) == thinking


def test_read_tool_edge_cases():
    _, state = HIDDEN.reset(jax.random.PRNGKey(4), HIDDEN_PARAMS)
    world = state.task.world
    n = int(world.num_items)
    item, empty = int(world.names[-1]), int(world.names[0])
    read = HIDDEN.family.tools[0].fn
    out = read(world, jnp.array([item]), jnp.int32(1), None)
    assert int(out.tokens[0]) == int(tk.DIGIT_IDS[int(world.digits[-1])]) and int(out.status) == 0
    if n < 4:  # a name of an empty slot is not an item
        assert int(read(world, jnp.array([empty]), jnp.int32(1), None).tokens[0]) == tk.ERROR
    absent = next(i for i in tk.ids(tk.ENTITY_NAMES) if i not in np.asarray(world.names))
    assert int(read(world, jnp.array([absent]), jnp.int32(1), None).tokens[0]) == tk.ERROR
    assert int(read(world, jnp.array([item]), jnp.int32(0), None).tokens[0]) == tk.ERROR


def test_splits_are_disjoint_and_the_answer_is_not_the_split():
    env, params = make("Tally-v0", width=8)
    keys = jax.random.split(jax.random.PRNGKey(5), 2000)
    sample = jax.jit(jax.vmap(lambda k, s: env.family.sample(k, params.task, s, 0).world,
                              in_axes=(0, None)))  # fmt: skip
    answers = {}
    for split in (0, 1):
        world = sample(keys, split)
        assert bool(jnp.all(held_out(world.digits, world.num_items) == (split == 1)))
        answers[split] = np.bincount(
            np.asarray(running_sums_batch(world.digits, world.num_items)), minlength=10
        )
    assert np.all(answers[1] > 0) and np.all(answers[0] > 0)  # every answer in both splits


def running_sums_batch(digits, num_items):
    return jax.vmap(lambda d, n: running_sums(d)[n - 1])(digits, num_items)


def test_bad_width_is_a_clear_error():
    with pytest.raises(ValueError, match="width must be in"):
        make("Tally-v0", width=9)
