"""Memory-v0: memory tools, the verifier, multi-turn harness episodes, sliding-window attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from agentic_jax import tokens as tk
from agentic_jax.envs import make
from agentic_jax.harness import Phase
from agentic_jax.models import TransformerPolicy
from agentic_jax.tools import memory
from agentic_jax.tools.base import ERROR, OK

pytestmark = pytest.mark.timeout(300)

SLOTS, KEY_WIDTH, ARGS = 3, 2, 3


def args_of(text: str):
    ids = tk.encode(text)
    args = np.full(ARGS, tk.PAD, np.int32)
    args[: len(ids)] = ids
    return jnp.asarray(args), jnp.int32(len(ids))


_write = jax.jit(memory.write)
_read = jax.jit(memory.read)


def write(mem, text):
    out, mem = _write(mem, *args_of(text))
    return tk.decode(np.asarray(out.tokens)[: int(out.length)]), int(out.status), mem


def read(mem, text):
    out = _read(mem, *args_of(text))
    return tk.decode(np.asarray(out.tokens)[: int(out.length)]), int(out.status)


# ------------------------------------------------------------------ tools
def test_write_then_read():
    mem = memory.empty(SLOTS, KEY_WIDTH)
    assert write(mem, "bob hat red")[:2] == ("ok", OK)
    _, _, mem = write(mem, "bob hat red")
    assert read(mem, "bob hat") == ("red", OK)
    assert read(mem, "bob coat") == ("<error>", ERROR)  # never written
    assert read(mem, "bob") == ("<error>", ERROR)  # a different (shorter) key
    _, _, mem = write(mem, "bob green")  # one-token key "bob"
    assert read(mem, "bob") == ("green", OK)
    assert read(mem, "bob hat") == ("red", OK)


def test_write_overwrites_and_fills_up():
    mem = memory.empty(SLOTS, KEY_WIDTH)
    for text in ["ann hat red", "bob hat blue", "ann hat gold"]:
        _, _, mem = write(mem, text)
    assert int(mem.used.sum()) == 2  # the second write of "ann hat" overwrote its slot
    assert read(mem, "ann hat") == ("gold", OK)
    _, _, mem = write(mem, "cat car pink")
    assert int(mem.used.sum()) == SLOTS
    result, status, full = write(mem, "dan car teal")  # no free slot for a new key
    assert (result, status) == ("<error>", ERROR)
    assert jax.tree.map(np.array_equal, full, mem) == jax.tree.map(lambda _: True, mem)
    assert read(full, "dan car") == ("<error>", ERROR)
    _, status, mem = write(mem, "cat car plum")  # an existing key still overwrites when full
    assert status == OK and read(mem, "cat car") == ("plum", OK)


@pytest.mark.parametrize("text", ["", "red"])
def test_write_needs_a_key_and_a_value(text):
    mem = memory.empty(SLOTS, KEY_WIDTH)
    result, status, after = write(mem, text)
    assert (result, status) == ("<error>", ERROR) and not bool(after.used.any())


def test_read_argument_count():
    mem = memory.empty(SLOTS, KEY_WIDTH)
    _, _, mem = write(mem, "bob hat red")
    assert read(mem, "") == ("<error>", ERROR)
    assert read(mem, "bob hat red") == ("<error>", ERROR)  # longer than key_width


# ------------------------------------------------------------------ the environment
ENV, PARAMS = make("Memory-v0", num_facts=1, num_fillers=1)  # 3 turns: fact, filler, question
step = jax.jit(ENV.step_without_reset)
reset = jax.jit(ENV.reset)


def play(actions, key=0, params=PARAMS):
    """Feed ``actions`` (token strings) on the agent's turns; returns per-step records."""
    obs, state = reset(jax.random.PRNGKey(key), params)
    actions = list(actions)
    records = []
    while int(state.phase) != Phase.DONE and (actions or not bool(obs.agent_turn)):
        action = tk.token_id(actions.pop(0)) if bool(obs.agent_turn) else tk.PAD
        obs, state, reward, terminated, truncated, info = step(
            jax.random.PRNGKey(0), state, action, params
        )
        records.append((int(obs.token), bool(info["agent_step"]), float(reward), bool(terminated)))
    return records, state


def fact_words(state):
    return [tk.VOCAB[int(t)] for t in state.task.world.facts[int(state.task.world.asked)]]


def test_multi_turn_episode_verifies_only_the_last_answer():
    _, state = play([])
    name, attribute, value = fact_words(state)
    assert tk.decode(state.task.prompt) == f"<task> {name} {attribute} {value} </task>"
    # Answering the value in the first turn is not verified and does not end the episode.
    records, state = play(["<answer>", value, "<answer>", "ok", "<answer>", value])
    assert int(state.phase) == Phase.DONE and bool(state.success) and int(state.turn) == 2
    rewards = [r for _, _, r, _ in records]
    assert sum(rewards) == 1.0 and records[-1][2] == 1.0 and records[-1][3]
    assert [t for *_, t in records].count(True) == 1  # terminated once, at the last answer
    text = tk.decode(state.transcript)
    turns = text.split("<task>")[1:]
    assert len(turns) == 3
    assert turns[0].strip() == f"{name} {attribute} {value} </task> <answer> {value} </answer>"
    assert turns[1].strip().endswith("</task> <answer> ok </answer>")
    assert turns[2].strip() == f"{attribute} of {name} ? </task> <answer> {value} </answer>"
    # Every user-message token is forced, never the agent's.
    positions = [i for i, w in enumerate(text.split()) if w == "<task>"]
    assert not bool(state.agent_written[np.asarray(positions)].any())


def test_next_turn_is_queued_as_forced_prompt_tokens():
    obs, state = reset(jax.random.PRNGKey(0), PARAMS)
    while not bool(obs.agent_turn):
        obs, state, *_ = step(jax.random.PRNGKey(0), state, 0, PARAMS)
    for word in ["<answer>", "ok"]:  # </answer> is forced (max_answer 1)
        obs, state, reward, terminated, *_ = step(
            jax.random.PRNGKey(0), state, tk.token_id(word), PARAMS
        )
    obs, state, reward, terminated, _, info = step(jax.random.PRNGKey(0), state, 0, PARAMS)
    assert int(obs.token) == tk.ANSWER_CLOSE and not bool(info["agent_step"])
    assert float(reward) == 0.0 and not bool(terminated)
    assert int(state.phase) == Phase.PROMPT and int(state.turn) == 1 and int(state.answer_len) == 0
    assert not bool(obs.agent_turn)
    message, length = ENV.family.next_turn(state.task.world, 1)
    written = []
    while not bool(obs.agent_turn):
        obs, state, *_ = step(jax.random.PRNGKey(0), state, tk.token_id("red"), PARAMS)
        written.append(int(obs.token))
    assert written == list(np.asarray(message)[: int(length)])


def test_wrong_last_answer_fails():
    _, state = play([])
    value = fact_words(state)[2]
    wrong = next(v for v in tk.VALUES if v != value)
    records, state = play(["<answer>", "ok", "<answer>", "ok", "<answer>", wrong])
    assert int(state.phase) == Phase.DONE and not bool(state.success)
    assert sum(r for _, _, r, _ in records) == 0.0


def test_tools_keep_memory_across_turns():
    _, state = play([])
    name, attribute, value = fact_words(state)
    plan = ["<call>", "read", name, attribute, "</call>"]  # before writing: an error
    plan += ["<call>", "write", name, attribute, value, "<answer>", "ok"]  # </call> forced
    plan += ["<answer>", "ok"]  # filler turn
    plan += ["<call>", "read", name, attribute, "</call>", "<answer>", value]
    records, state = play(plan)
    text = tk.decode(state.transcript)
    assert f"<call> read {name} {attribute} </call> <result> <error> </result>" in text
    assert f"<call> write {name} {attribute} {value} </call> <result> ok </result>" in text
    assert text.endswith(
        f"<call> read {name} {attribute} </call> <result> {value} </result> "
        f"<answer> {value} </answer>"
    )
    assert bool(state.success) and int(state.tool_calls) == 3 and int(state.tool_errors) == 1
    assert int(state.task.world.memory.used.sum()) == 1
    # The oracle's plan is exactly these tokens minus the failed read, closings included.
    oracle = tk.decode(np.asarray(state.task.plan)[: int(state.task.plan_len)])
    assert oracle == " ".join(plan[5:10] + ["</call>", "<answer>", "ok", "</answer>"]) + (
        f" <answer> ok </answer> <call> read {name} {attribute} </call> <answer> {value} </answer>"
    )


def test_useful_call_is_the_write_of_the_asked_fact():
    _, state = play([])
    world = state.task.world
    fact = world.facts[world.asked]
    useful = ENV.family.useful_call
    assert bool(useful(world, 0, fact, 3))
    assert not bool(useful(world, 1, fact, 3))  # a read
    assert not bool(useful(world, 0, fact.at[2].set(tk.token_id("ok")), 3))


@jax.jit
def _sample_many(keys, params, split):
    """Worlds, the question messages and the recomputed splits of many sampled tasks."""
    worlds = jax.vmap(lambda k: ENV.family.sample(k, params.task, split, 0).world)(keys)
    last = worlds.num_facts + worlds.num_fillers  # the question's turn
    question = worlds.messages[jnp.arange(keys.shape[0]), last]
    return worlds, question, jax.vmap(ENV.family.split_of)(worlds)


def test_question_holds_no_value_and_keys_are_distinct():
    _, params = make("Memory-v0", num_facts=4, num_fillers=8)
    n = 300
    keys = jax.random.split(jax.random.PRNGKey(4), n)
    for split in (0, 1):
        world, question, splits = _sample_many(keys, params, jnp.int32(split))
        assert not bool(jnp.isin(question, jnp.asarray(tk.ids(tk.VALUES))).any())
        assert bool(jnp.all(question[:, 2] == tk.token_id("of")))
        # The asked value is told in the fact turns only (as often as facts carry it).
        value = world.facts[jnp.arange(n), world.asked, 2]
        in_messages = (world.messages == value[:, None, None]).sum(axis=(1, 2))
        carried = (world.facts[:, :, 2] == value[:, None]).sum(axis=1)
        assert bool(jnp.all(in_messages == carried))
        keys_told = np.asarray(world.facts[:, :, 0] * 1000 + world.facts[:, :, 1])
        assert all(len(set(row.tolist())) == 4 for row in keys_told)
        assert bool(jnp.all(splits == split))


def test_verify():
    _, state = play([])
    world = state.task.world
    value = int(world.facts[world.asked, 2])
    verify = ENV.family.verify
    assert bool(verify(world, jnp.array([value]), 1))
    assert not bool(verify(world, jnp.array([tk.token_id("ok")]), 1))
    assert not bool(verify(world, jnp.array([value]), 0))


def test_bad_static_arguments():
    with pytest.raises(ValueError, match="max_facts must be in"):
        make("Memory-v0", max_facts=0)
    with pytest.raises(ValueError, match="max_fillers must be in"):
        make("Memory-v0", max_fillers=-1)
    with pytest.raises(ValueError, match="memory_slots must be in"):
        make("Memory-v0", max_facts=4, memory_slots=3)


# ------------------------------------------------------------------ sliding-window attention
VOCAB, T, WINDOW, LAYERS = 16, 12, 3, 2
WINDOWED = TransformerPolicy(
    vocab_size=VOCAB, max_len=T, d_model=16, n_layers=LAYERS, n_heads=2, attention_window=WINDOW
)


@jax.jit
def _windowed_params(key):
    tokens = jnp.zeros((1, T), jnp.int32)
    params = WINDOWED.init(key, tokens, tokens, tokens)
    flat, unravel = ravel_pytree(params)
    return unravel(flat + 0.1 * jax.random.normal(key, flat.shape))


_forward = jax.jit(WINDOWED.apply)
_decode = jax.jit(lambda p, t, i, c: WINDOWED.apply(p, t, i, c, method=TransformerPolicy.decode))


def _full(params, tokens, positions=None, segments=None):
    rows = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
    positions = rows if positions is None else positions
    segments = jnp.zeros_like(tokens) if segments is None else segments
    return _forward(params, tokens, positions, segments)


def test_windowed_decode_matches_full_forward_and_forgets_old_tokens():
    params = _windowed_params(jax.random.PRNGKey(0))
    tokens = jax.random.randint(jax.random.PRNGKey(1), (2, T), 0, VOCAB, jnp.int32)
    logits, values, _ = _full(params, tokens)
    cache = WINDOWED.init_cache(2)
    for t in range(T):
        step_logits, step_values, cache = _decode(
            params, tokens[:, t], jnp.full((2,), t, jnp.int32), cache
        )
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-4)
        np.testing.assert_allclose(step_values, values[:, t], atol=1e-4)
    # Token 0 reaches position p only through L layers of window w: p <= L * (w - 1).
    reach = LAYERS * (WINDOW - 1)
    changed, _, _ = _full(params, tokens.at[:, 0].set((tokens[:, 0] + 1) % VOCAB))
    delta = jnp.abs(changed - logits).max(axis=(0, 2))
    assert bool(jnp.all(delta[reach + 1 :] == 0.0))
    assert float(delta[reach]) > 1e-6  # inside the reach it does matter


def test_windowed_packed_segments_equal_separate_sequences():
    params = _windowed_params(jax.random.PRNGKey(0))
    tokens = jax.random.randint(jax.random.PRNGKey(2), (2, T), 0, VOCAB, jnp.int32)
    alone, _, _ = _full(params, tokens)
    packed = jnp.concatenate([tokens[0, :7], tokens[1, :5]])[None]
    positions = jnp.concatenate([jnp.arange(7), jnp.arange(5)])[None]
    segments = jnp.concatenate([jnp.zeros(7, jnp.int32), jnp.ones(5, jnp.int32)])[None]
    logits, _, _ = _full(params, packed, positions, segments)
    np.testing.assert_allclose(logits[0, :7], alone[0, :7], atol=1e-4)
    np.testing.assert_allclose(logits[0, 7:], alone[1, :5], atol=1e-4)


def test_negative_window_is_rejected():
    model = TransformerPolicy(vocab_size=VOCAB, max_len=T, attention_window=-1)
    with pytest.raises(ValueError, match="attention_window must be >= 0"):
        model.init(jax.random.PRNGKey(0), *(jnp.zeros((1, T), jnp.int32),) * 3)
