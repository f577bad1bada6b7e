"""Mixed-v0: include validation, the type draw and its weights, the type token, each type's
own grammar and tools, and oracle and random play with a multi-turn type (Memory).

test_envs.py plays the default mixture (oracle on both splits, random play, determinism,
disjoint splits). Here one small mixture, Arithmetic and Memory (two types with different
tools, budgets and turn counts, and a tool that updates its world), is compiled once: every
test reads the final states of ``play``, whose policy (oracle or random) and parameters
(weights, split) are traced.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.envs import make
from agentic_jax.envs.mixed import DEFAULT_INCLUDE, FAMILIES, Mixed
from agentic_jax.harness import Phase
from agentic_jax.rollout import oracle_step, random_step, rollout_episodes
from agentic_jax.tools.base import ERROR, OK

pytestmark = pytest.mark.timeout(300)

SMALL = "Arithmetic-v0,Memory-v0"
ENV, PARAMS = make("Mixed-v0", include=SMALL)
MIXED = ENV.family
MATH, MEMORY = 0, 1  # type indices, in include order
EPISODES = 600


@functools.partial(jax.jit, static_argnames=("env",))
def play(env, params, use_oracle, key):
    """Episodes of the oracle or of a random legal policy (a traced choice: one compile)."""

    def step(key, obs, state, carry):
        planned = oracle_step(env)(key, obs, state, carry)[0]
        action = jnp.where(use_oracle, planned, random_step(key, obs, state, carry)[0])
        zeros = jnp.zeros(action.shape, jnp.float32)
        return action, zeros, zeros, carry

    rollout = rollout_episodes(env, params, step, None, key, EPISODES)
    return rollout.trajectory, rollout.stats, rollout.env_state


def with_weights(split=0, **weights):
    return make("Mixed-v0", include=SMALL, split=split, **weights)[1]


def test_include_must_name_known_environments():
    with pytest.raises(ValueError, match="unknown environment id.*Chess-v0; valid: KBLookup-v0"):
        Mixed("KBLookup-v0,Chess-v0")
    with pytest.raises(ValueError, match="names no environment; valid ids: KBLookup-v0"):
        Mixed(" , ")
    with pytest.raises(ValueError, match="twice"):
        Mixed("WebNav-v0, WebNav-v0")
    with pytest.raises(ValueError, match="unknown environment id.*Mixed-v0"):
        Mixed("Mixed-v0")  # no mixture of mixtures
    with pytest.raises(ValueError, match="unknown environment id.*kblookup"):
        make("Mixed-v0", include="kblookup")
    with pytest.raises(TypeError, match="include=3.*expected str"):
        make("Mixed-v0", include=3)


def test_shapes_are_the_largest_of_the_included():
    env, _ = make("Mixed-v0")
    mixed = env.family
    assert mixed.ids == tuple(DEFAULT_INCLUDE.split(",")) and "Memory-v0" not in mixed.ids
    subs = [FAMILIES[env_id][0]() for env_id in mixed.ids]
    assert mixed.prompt_width == max(f.prompt_width for f in subs) + 1
    assert env.max_len == mixed.default_max_len == max(f.default_max_len for f in subs) + 1
    assert [t.name for t in mixed.tools] == ["search", "calc", "api", "backup", "open", "run"]
    assert len({t.result_width for t in mixed.tools}) == 1  # one shape for the tool switch
    assert {t.name: t.max_latency for t in mixed.tools}["api"] == 8
    assert mixed.num_turns == 1
    np.testing.assert_array_equal(mixed.arg_mask, np.any([f.arg_mask for f in subs], axis=0))
    # Including Memory brings its turns and its long transcripts.
    memory = FAMILIES["Memory-v0"][0]()
    assert MIXED.ids == ("Arithmetic-v0", "Memory-v0")
    assert MIXED.num_turns == memory.num_turns
    assert ENV.max_len == memory.default_max_len + 1


@pytest.mark.slow  # long: moved out of the first stage's 10 minutes
def test_oracle_solves_every_type_on_both_splits():
    for split in (0, 1):
        _, stats, final = play(ENV, with_weights(split), True, jax.random.PRNGKey(split))
        assert float(stats["success"]) == 1.0 and float(stats["invalid"]) == 0.0
        assert float(stats["hacks"]) == 0.0
        memory = np.asarray(final.task.world.kind) == MEMORY
        assert 0 < memory.sum() < EPISODES
        assert (np.asarray(final.turn)[memory] > 0).all()  # Memory's later turns were played
        assert (np.asarray(final.turn)[~memory] == 0).all()
        # Memory's write tool updated the Memory world inside the mixture's world.
        assert np.asarray(final.task.world.worlds[MEMORY].memory.used)[memory].any(axis=1).all()
        splits = jax.vmap(MIXED.split_of)(final.task.world)
        assert bool(jnp.all(splits == split))


def test_random_policy_rarely_succeeds():
    _, stats, final = play(ENV, PARAMS, False, jax.random.PRNGKey(2))
    assert float(stats["success"]) < 0.25 and float(stats["invalid"]) == 0.0
    assert float(stats["tool_calls"]) > 0


def test_types_follow_the_weights_and_carry_their_token():
    # 1 : 3; KBLookup is not included, so its weight is ignored.
    params = with_weights(arithmetic_weight=1.0, memory_weight=3.0, kblookup_weight=50.0)
    _, _, final = play(ENV, params, True, jax.random.PRNGKey(3))
    kind = np.asarray(final.task.world.kind)
    np.testing.assert_allclose(np.bincount(kind, minlength=2) / EPISODES, [0.25, 0.75], atol=0.06)

    # The transcript opens with <task> TYPE, then the type's own prompt.
    transcript = np.asarray(final.transcript)
    assert (transcript[:, 0] == tk.TASK_OPEN).all()
    assert (transcript[:, 1] == np.asarray(MIXED.type_tokens)[kind]).all()
    assert tk.decode(MIXED.type_tokens) == "math mem"
    # An Arithmetic prompt is "<task> math A OP B = ? </task>", from its own world.
    world = jax.tree.map(np.asarray, final.task.world.worlds[MATH])
    for row in np.flatnonzero(kind == MATH):
        a, op, b = (" ".join(str(int(x[row]))) for x in (world.a, world.op, world.b))
        task = tk.decode(transcript[row, : int(final.task.prompt_len[row])])
        assert task == f"<task> math {a} {'+-*'[int(op)]} {b} = ? </task>"

    # Weight 0: never drawn. Equal or all-zero weights: uniform.
    for weights, expected in (
        ({"memory_weight": 0.0}, [1.0, 0.0]),
        ({"arithmetic_weight": 0.0}, [0.0, 1.0]),
        ({}, [0.5, 0.5]),
        ({"arithmetic_weight": 0.0, "memory_weight": 0.0}, [0.5, 0.5]),
    ):
        _, stats, final = play(ENV, with_weights(**weights), True, jax.random.PRNGKey(4))
        frequency = np.bincount(np.asarray(final.task.world.kind), minlength=2) / EPISODES
        np.testing.assert_allclose(frequency, expected, atol=0.06)
        assert float(stats["success"]) == 1.0


def test_each_task_keeps_its_own_grammar():
    """Legal tools, argument and answer tokens and auto-closing budgets are the type's own."""
    _, _, final = play(ENV, PARAMS, True, jax.random.PRNGKey(5))
    state = jax.tree.map(lambda x: x[:64], final)
    kind = np.asarray(state.task.world.kind)
    assert set(kind.tolist()) == {MATH, MEMORY}
    drained = state.replace(queue_pos=state.queue_len)  # no forced token left
    legal = jax.jit(jax.vmap(ENV.legal_mask, in_axes=(0, None)))

    def masks(phase, **fields):
        phases = jnp.full(kind.shape, phase)
        return np.asarray(legal(drained.replace(phase=phases, **fields), PARAMS))

    max_args = jnp.asarray([f.max_args for f in MIXED.families])[kind]
    max_answer = jnp.asarray([f.max_answer for f in MIXED.families])[kind]
    tool_masks = masks(Phase.CALL_NAME)
    at_budget = masks(Phase.CALL_ARGS, args_len=max_args)
    answer_full = masks(Phase.ANSWER, answer_len=max_answer)
    one_arg = masks(Phase.CALL_ARGS, args_len=jnp.ones(kind.shape, jnp.int32))
    one_answer = masks(Phase.ANSWER, answer_len=jnp.zeros(kind.shape, jnp.int32))
    for row in range(kind.shape[0]):
        family = MIXED.families[kind[row]]
        assert tk.decode(np.flatnonzero(tool_masks[row])) == " ".join(t.name for t in family.tools)
        assert tk.decode(np.flatnonzero(at_budget[row])) == "</call>"  # closed at its budget
        assert tk.decode(np.flatnonzero(answer_full[row])) == "</answer>"
        np.testing.assert_array_equal(one_arg[row], family.arg_mask | tk.id_mask(["</call>"]))
        np.testing.assert_array_equal(one_answer[row], family.answer_mask)


def test_tools_run_the_current_types_tool_or_error():
    _, _, final = play(ENV, PARAMS, True, jax.random.PRNGKey(6))
    world = jax.tree.map(lambda x: x[:64], final.task.world)
    kind = np.asarray(world.kind)
    tools = {t.name: t for t in MIXED.tools}
    assert list(tools) == ["calc", "write", "read"]

    def call(name, words):
        args = np.zeros(MIXED.max_args, np.int32)
        args[: len(words.split())] = tk.encode(words)
        run = jax.jit(jax.vmap(tools[name].fn, in_axes=(0, None, None, None)))
        return run(world, jnp.asarray(args), len(words.split()), jax.random.PRNGKey(0))

    out = call("calc", "1 2 + 3 0")
    assert out.world is None  # calc changes no world
    tokens, length, status = (np.asarray(x) for x in (out.tokens, out.length, out.status))
    assert (status[kind == MATH] == OK).all() and (status[kind == MEMORY] == ERROR).all()
    for row in range(kind.shape[0]):
        assert tk.decode(tokens[row, : length[row]]) == ("4 2" if kind[row] == MATH else "<error>")

    # write: stored in the Memory world of a Memory task; an error (nothing stored) elsewhere.
    out = call("write", "bob hat red")
    assert (np.asarray(out.status) == np.where(kind == MEMORY, OK, ERROR)).all()
    before = world.worlds[MEMORY].memory
    after = out.world.worlds[MEMORY].memory
    stored = np.asarray(after.values == tk.token_id("red")) & np.asarray(after.used)
    assert (stored.any(axis=1) == (kind == MEMORY)).all()
    assert (np.asarray(after.used).sum(1) >= np.asarray(before.used).sum(1)).all()
    for old, new in zip(
        jax.tree.leaves(world.worlds[MATH]), jax.tree.leaves(out.world.worlds[MATH]), strict=True
    ):
        np.testing.assert_array_equal(old, new)  # the other types' worlds are untouched
    np.testing.assert_array_equal(out.world.kind, world.kind)
