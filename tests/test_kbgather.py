"""KBGather-v0: the generator (distinct queried entities, the split rule), the verifier (order
and length matter) and what an attention window hides from a single agent."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.envs import make
from agentic_jax.envs.kbgather import GatherParams, KBGather
from agentic_jax.envs.kblookup import held_out
from agentic_jax.rollout import oracle_step, rollout_episodes
from agentic_jax.tools.kb_search import NAME_IDS

pytestmark = pytest.mark.timeout(300)

FAMILY = KBGather(max_entities=8, max_attributes=4, max_queried=4)


@functools.partial(jax.jit, static_argnames=("count",))
def sample(params, split, key, count=500):
    keys = jax.random.split(key, count)
    return jax.vmap(lambda k: FAMILY.sample(k, params, split, 0))(keys)


@pytest.mark.parametrize("num_entities,num_queried", [(8, 3), (4, 4), (2, 1), (5, 2)])
def test_queried_entities_are_distinct_in_use_and_in_the_prompt(num_entities, num_queried):
    params = GatherParams(num_entities=num_entities, num_attributes=4, num_queried=num_queried)
    for split in (0, 1):
        tasks = sample(params, split, jax.random.PRNGKey(split))
        world = tasks.world
        queried = np.asarray(world.queried)[:, :num_queried]
        assert (queried < num_entities).all()
        assert all(len(set(row)) == num_queried for row in queried)
        splits = np.asarray(jax.vmap(FAMILY.split_of)(world))
        assert (splits == split).all()
        for i in range(3):
            names = np.asarray(world.kb.names[i])[queried[i]]
            attribute = tk.ATTRIBUTES[int(world.attribute[i])]
            expected = f"<task> {attribute} of {tk.decode(names)} ? </task>"
            assert tk.decode(tasks.prompt[i]) == expected


def test_split_follows_the_first_queried_pair():
    tasks = sample(GatherParams(), 1, jax.random.PRNGKey(5))
    world = tasks.world
    first = np.asarray(world.kb.names)[np.arange(500), np.asarray(world.queried)[:, 0]]
    name_index = np.argmax(np.asarray(NAME_IDS)[None, :] == first[:, None], axis=1)
    assert np.asarray(held_out(jnp.asarray(name_index), world.attribute)).all()


def test_verify_needs_every_value_in_order():
    worlds = sample(GatherParams(num_queried=3), 0, jax.random.PRNGKey(2), count=32).world
    answers = np.asarray(jax.vmap(FAMILY.answers)(worlds))
    first = int(np.argmax(answers[:, 0] != answers[:, 2]))  # a task whose order shows
    world = jax.tree.map(lambda x: x[first], worlds)
    right = answers[first]
    assert right[0] != right[2] and right[3] == tk.PAD

    def verify(tokens, length):
        answer = jnp.asarray(np.pad(tokens, (0, 4 - len(tokens)), constant_values=tk.PAD))
        return bool(FAMILY.verify(world, answer, jnp.int32(length)))

    assert verify(right[:3], 3)
    assert not verify(right[:2], 2)  # one value missing
    assert not verify(np.concatenate([right[:3], right[:1]]), 4)  # one too many
    wrong = right[:3].copy()
    wrong[1] = [v for v in tk.ids(tk.VALUES) if v != wrong[1]][0]
    assert not verify(wrong, 3)
    assert not verify(right[[2, 1, 0]], 3)  # the question's order matters


def test_oracle_solves_and_its_transcript_holds_a_result_per_entity():
    env, params = make("KBGather-v0", num_queried=4, num_entities=6)
    rollout = jax.jit(
        lambda key: rollout_episodes(env, params.replace(split=1), oracle_step(env), None, key, 64)
    )(jax.random.PRNGKey(0))
    assert bool(rollout.env_state.success.all())
    assert float(rollout.stats["tool_calls"]) == 4.0
    words = tk.decode(np.asarray(rollout.env_state.transcript[0])).split()
    assert words.count("<result>") == 4
    # The answer's first value sits beyond a 32-token window from the answer: a single agent
    # with such a window no longer sees the result it came from when it answers.
    answer_at = words.index("<answer>")
    first_result = words.index("<result>")
    assert answer_at - first_result > 32


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="max_queried must be in"):
        KBGather(max_entities=4, max_queried=5)
    with pytest.raises(ValueError, match="num_queried"):
        make("KBGather-v0", num_queried=6, num_entities=4)
