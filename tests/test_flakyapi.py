"""FlakyAPI-v0: the flaky ``api`` and reliable ``backup`` tools, latency, statistics, verifier."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.envs import make
from agentic_jax.envs.flakyapi import FlakyAPI, held_out
from agentic_jax.tools import flaky_api
from agentic_jax.tools.base import ERROR, OK, TIMEOUT
from agentic_jax.tools.latency import LOGNORMAL, PARETO, Latency

pytestmark = pytest.mark.timeout(300)

ENV, PARAMS = make("FlakyAPI-v0")
MAX_LATENCY = ENV.family.max_latency
MAX_BACKUP = ENV.family.max_backup_latency
PLAN_WIDTH = 48  # at least the plans the harness holds (twice the family's plan_width)


def service(**overrides):
    values = jnp.arange(flaky_api.NUM_NAMES * flaky_api.NUM_FIELDS).reshape(
        flaky_api.NUM_NAMES, flaky_api.NUM_FIELDS
    )
    settings = dict(
        fail_prob=0.3, timeout_share=0.5, latency_min=2, latency_max=5, backup_latency=7
    )
    settings.update(overrides)
    return flaky_api.Service(
        values=values.astype(jnp.int32),
        fail_prob=jnp.float32(settings["fail_prob"]),
        timeout_share=jnp.float32(settings["timeout_share"]),
        latency=Latency(
            low=jnp.int32(settings["latency_min"]), high=jnp.int32(settings["latency_max"])
        ),
        backup=Latency(
            low=jnp.int32(settings["backup_latency"]), high=jnp.int32(settings["backup_latency"])
        ),
    )


def encode_args(text: str, width: int = 3):
    ids = tk.encode(text)
    args = np.full(width, tk.PAD, np.int32)
    args[: len(ids)] = ids
    return jnp.asarray(args), jnp.int32(len(ids))


@functools.partial(jax.jit, static_argnames="tool")
def call_many(svc, args, args_len, keys, tool="api"):
    """One tool call per key (vmapped)."""
    if tool == "api":
        fn = lambda k: flaky_api.api(svc, args, args_len, k, MAX_LATENCY)  # noqa: E731
    else:
        fn = lambda k: flaky_api.backup(svc, args, args_len, k, MAX_BACKUP)  # noqa: E731
    return jax.vmap(fn)(keys)


KEYS = jax.random.split(jax.random.PRNGKey(0), 4000)  # one batch shape: one compile
EPISODE_KEYS = KEYS[:256]


def test_api_fails_at_the_configured_rate_and_retries_can_succeed():
    svc = service(fail_prob=0.3, timeout_share=0.5, latency_min=2, latency_max=5)
    args, n = encode_args("stock bob")  # bob is name 1: value 1 * 2 + 1 = 3
    out = call_many(svc, args, n, KEYS)
    status, latency = np.asarray(out.status), np.asarray(out.latency)
    tokens, length = np.asarray(out.tokens), np.asarray(out.length)
    assert abs((status != OK).mean() - 0.3) < 0.03
    assert abs((status == TIMEOUT).mean() - 0.15) < 0.025
    ok = status == OK
    # Successful calls answer the value after a latency spread over [2, 5].
    assert set(latency[ok].tolist()) == {2, 3, 4, 5}
    assert np.all(length[ok] == 1) and np.all(tokens[ok, 0] == tk.token_id("3"))
    # Failures hold one <error> or <timeout> token and never the value; timeouts wait it out.
    assert np.all(length[~ok] == 1)
    assert np.all(tokens[status == ERROR, 0] == tk.ERROR)
    assert np.all(tokens[status == TIMEOUT, 0] == tk.TIMEOUT)
    assert np.all(latency[status == TIMEOUT] == 5)
    assert not np.isin(tokens[~ok], tk.DIGIT_IDS).any()


@pytest.mark.parametrize(
    "fail_prob,timeout_share,expected",
    [(0.0, 0.5, OK), (1.0, 0.0, ERROR), (1.0, 1.0, TIMEOUT), (-0.5, 0.5, OK)],
)
def test_api_extreme_probabilities(fail_prob, timeout_share, expected):
    svc = service(fail_prob=fail_prob, timeout_share=timeout_share)
    out = call_many(svc, *encode_args("price ann"), KEYS)
    assert np.all(np.asarray(out.status) == expected)


def test_backup_never_fails_and_is_slow():
    svc = service(fail_prob=1.0, backup_latency=7)
    out = call_many(svc, *encode_args("price pam"), KEYS, tool="backup")  # pam: 15 * 2 = 30
    assert np.all(np.asarray(out.status) == OK) and np.all(np.asarray(out.latency) == 7)
    assert tk.decode(np.asarray(out.tokens[0])[: int(out.length[0])]) == "3 0"


def test_latencies_are_clipped_to_the_static_bounds():
    svc = service(fail_prob=0.0, latency_min=-3, latency_max=50, backup_latency=99)
    api = call_many(svc, *encode_args("price ann"), KEYS)
    assert int(api.latency.min()) >= 0 and int(api.latency.max()) == MAX_LATENCY
    backup = call_many(svc, *encode_args("price ann"), KEYS, tool="backup")
    assert np.all(np.asarray(backup.latency) == MAX_BACKUP)
    inverted = service(fail_prob=0.0, latency_min=4, latency_max=1)
    inverted = call_many(inverted, *encode_args("price ann"), KEYS)
    assert np.all(np.asarray(inverted.latency) == 4)


@pytest.mark.parametrize("tool", ["api", "backup"])
@pytest.mark.parametrize(
    "text", ["bob price", "price", "bob", "price bob bob", "price red", "stock stock", "3 bob"]
)
def test_malformed_arguments_are_an_error_at_once(tool, text):
    svc = service(fail_prob=0.0)
    out = call_many(svc, *encode_args(text), KEYS, tool=tool)
    assert np.all(np.asarray(out.status) == ERROR)
    assert np.all(np.asarray(out.latency) == 0)
    assert np.all(np.asarray(out.tokens[:, 0]) == tk.ERROR)


def test_empty_arguments_are_an_error():
    args = jnp.full(3, tk.PAD, jnp.int32)
    out = call_many(service(fail_prob=0.0), args, jnp.int32(0), KEYS)
    assert np.all(np.asarray(out.status) == ERROR)


# ---------------------------------------------------------------- through the harness
def plan_tokens(text: str) -> jnp.ndarray:
    ids = tk.encode(text)
    return jnp.asarray(np.pad(ids, (0, PLAN_WIDTH - len(ids)), constant_values=tk.PAD))


@jax.jit
def play(params, plan, keys):
    """Episodes (one per key) whose agent writes ``plan`` ("{name}" is the task's name), or
    the task's own oracle plan where ``plan`` is all padding."""

    def episode(key):
        k_reset, k_steps = jax.random.split(key)
        _, state = ENV.reset(k_reset, params)
        name = flaky_api.NAME_IDS[state.task.world.name]
        field = flaky_api.FIELD_IDS[state.task.world.field]
        own = jnp.where(plan == NAME_SLOT, name, jnp.where(plan == FIELD_SLOT, field, plan))
        task_plan = jnp.pad(state.task.plan, (0, PLAN_WIDTH - state.task.plan.shape[0]))
        chosen = jnp.where(jnp.all(plan == tk.PAD), task_plan, own)
        state = state.replace(task=state.task.replace(plan=chosen))

        def body(state, step_key):
            action = ENV.oracle_action(state)
            _, state, *_ = ENV.step_without_reset(step_key, state, action, params)
            return state, None

        state, _ = jax.lax.scan(body, state, jax.random.split(k_steps, ENV.max_len - 1))
        return state, ENV.episode_info(state)

    return jax.vmap(episode)(keys)


# Placeholders in test plans, replaced by the task's field and name: "price" and "ann" are
# rewritten to the asked-about field and name.
FIELD_SLOT, NAME_SLOT = tk.token_id("price"), tk.token_id("ann")


def transcript_after_call(state, index=0):
    words = tk.decode(np.asarray(state.transcript[index])).split()
    written = np.asarray(state.agent_written[index])
    return words, written


@pytest.mark.parametrize(
    "plan,overrides,waits,body",
    [
        ("<call> api price ann </call>", dict(fail_prob=0.0, latency_min=3, latency_max=3), 3,
         None),
        ("<call> api price ann </call>", dict(fail_prob=1.0, timeout_share=1.0, latency_max=6),
         6, "<timeout>"),
        ("<call> api price ann </call>", dict(fail_prob=1.0, timeout_share=0.0, latency_min=1,
         latency_max=1), 1, "<error>"),
        ("<call> backup price ann </call>", dict(fail_prob=1.0, backup_latency=5), 5, None),
        ("<call> api price ann </call>", dict(fail_prob=0.0, latency_min=0, latency_max=0), 0,
         None),
    ],
)  # fmt: skip
def test_harness_writes_latency_waits_before_the_result(plan, overrides, waits, body):
    params = PARAMS.replace(task=PARAMS.task.replace(**overrides))
    state, info = play(params, plan_tokens(plan), EPISODE_KEYS)
    for index in range(8):
        words, agent = transcript_after_call(state, index)
        close = words.index("</call>")
        # The first of the agent's tokens after the prompt is at position 6 (prompt_width).
        assert agent[6:close].all() and not agent[close]  # the harness closes after 2 args
        assert words[close + 1 : close + 1 + waits] == ["<wait>"] * waits
        assert words[close + 1 + waits] == "<result>"
        assert not agent[close + 1 : close + 2 + waits].any()  # waits and <result> are forced
        result_body = words[close + 2 + waits : words.index("</result>")]
        if body is None:
            answer, answer_len = ENV.family.answer_tokens(
                jax.tree.map(lambda x, i=index: x[i], state.task.world)
            )
            assert result_body == tk.decode(np.asarray(answer)[: int(answer_len)]).split()
        else:
            assert result_body == [body]


def counts(info):
    """(wasted_calls, retries), the same in every episode of the batch."""
    wasted, retries = np.asarray(info["wasted_calls"]), np.asarray(info["retries"])
    assert np.all(wasted == wasted[0]) and np.all(retries == retries[0])
    return int(wasted[0]), int(retries[0])


def test_retries_and_wasted_calls_are_counted():
    three_api = plan_tokens("<call> api price ann </call> " * 3)
    always_fail = PARAMS.task.replace(fail_prob=1.0)
    _, info = play(PARAMS.replace(task=always_fail), three_api, EPISODE_KEYS)
    assert counts(info) == (3, 2)
    assert np.all(np.asarray(info["tool_calls"]) == 3)
    never_fail = PARAMS.task.replace(fail_prob=0.0)
    _, info = play(PARAMS.replace(task=never_fail), three_api, EPISODE_KEYS)
    assert counts(info) == (0, 0)
    # A failure, then a success, then another call: only the call after the failure retries.
    fail_then_backup = plan_tokens(
        "<call> api stock ann </call> <call> backup price ann </call> "
        "<call> backup price ann </call>"
    )
    _, info = play(PARAMS.replace(task=always_fail), fail_then_backup, EPISODE_KEYS)
    assert counts(info) == (1, 1)


def test_retry_oracle_always_succeeds_and_counts_failures_at_the_rate():
    for fail_prob in (1.0, 0.3):
        params = PARAMS.replace(oracle_mode=1, task=PARAMS.task.replace(fail_prob=fail_prob))
        _, info = play(params, plan_tokens(""), EPISODE_KEYS)
        assert np.all(np.asarray(info["success"]) == 1.0)
        assert np.all(np.asarray(info["tool_calls"]) == 3)
        # Two api calls each fail with fail_prob; each failure makes the next call a retry.
        assert abs(float(info["wasted_calls"].mean()) - 2 * fail_prob) < 0.15
        assert abs(float(info["retries"].mean()) - 2 * fail_prob) < 0.15


def test_answer_never_in_the_prompt():
    keys = jax.random.split(jax.random.PRNGKey(4), 500)
    sample = jax.jit(jax.vmap(ENV.family.sample, in_axes=(0, None, None, None)))
    for split in (0, 1):
        tasks = sample(keys, PARAMS.task, split, 0)
        assert not bool(jnp.isin(tasks.prompt, jnp.asarray(tk.DIGIT_IDS)).any())
        assert int(tasks.prompt_len.min()) == ENV.family.prompt_width


def test_held_out_pairs():
    names, fields = np.meshgrid(np.arange(flaky_api.NUM_NAMES), np.arange(flaky_api.NUM_FIELDS))
    held = np.asarray(held_out(jnp.asarray(names), jnp.asarray(fields)))
    assert held.sum() == 7 and held.size == 32


@jax.jit
def world_with_value(value):
    task = ENV.family.sample(jax.random.PRNGKey(0), PARAMS.task, 0, 0)
    world = task.world
    values = world.service.values.at[world.name, world.field].set(value)
    return world.replace(service=world.service.replace(values=values))


@pytest.mark.parametrize(
    "value,answer,correct",
    [
        (47, "4 7", True),
        (7, "7", True),
        (0, "0", True),
        (47, "7 4", False),
        (47, "4", False),
        (7, "0 7", False),
        (7, "7 7", False),
        (10, "1", False),
        (10, "1 0", True),
    ],
)
def test_verifier(value, answer, correct):
    world = world_with_value(value)
    ids = tk.encode(answer)
    tokens = jnp.asarray(np.pad(ids, (0, 2 - len(ids)), constant_values=tk.PAD))
    assert bool(ENV.family.verify(world, tokens, jnp.int32(len(ids)))) is correct


def test_verifier_rejects_an_empty_answer():
    world = world_with_value(0)
    assert not bool(ENV.family.verify(world, jnp.full(2, tk.PAD, jnp.int32), jnp.int32(0)))


def test_useful_call_needs_the_asked_pair():
    world = world_with_value(5)
    field = tk.FLAKY_API_FIELDS[int(world.field)]
    other_field = tk.FLAKY_API_FIELDS[1 - int(world.field)]
    name = tk.ENTITY_NAMES[int(world.name)]
    useful = ENV.family.useful_call
    assert bool(useful(world, 0, *encode_args(f"{field} {name}", 2)))
    assert not bool(useful(world, 1, *encode_args(f"{other_field} {name}", 2)))
    assert not bool(useful(world, 0, *encode_args(f"{name} {field}", 2)))


def test_constructor_rejects_bad_latency_bounds():
    with pytest.raises(ValueError, match=r"max_latency must be in \[1, 16\], got 0"):
        FlakyAPI(max_latency=0)
    with pytest.raises(ValueError, match=r"max_backup_latency must be in \[1, 16\], got 40"):
        make("FlakyAPI-v0", max_backup_latency=40)
    with pytest.raises(TypeError, match="fail_prob='high'"):
        make("FlakyAPI-v0", fail_prob="high")


def test_max_len_fits_the_slowest_retry_oracle():
    small = FlakyAPI(max_latency=3, max_backup_latency=4)
    # Prompt 6, two api turns of 5 + 3 + 4 tokens, a backup turn of 5 + 4 + 4, the answer 4.
    assert small.default_max_len == 6 + 2 * 12 + 13 + 4


def test_a_heavy_tailed_api_times_out_past_its_timeout():
    """A lognormal api of mean 6 and sigma 1.5 with a timeout of 5: calls that would take
    longer answer <timeout> after 5 waits; the others answer their value."""
    heavy = service(fail_prob=0.0).replace(
        latency=Latency(kind=LOGNORMAL, low=0, high=0, mean=6.0, shape=1.5, timeout=5)
    )
    args, n = encode_args("price ann")
    keys = jax.random.split(jax.random.PRNGKey(0), 512)
    out = jax.vmap(lambda k: flaky_api.api(heavy, args, n, k, 16))(keys)
    timed_out = np.asarray(out.status) == TIMEOUT
    assert 0.2 < timed_out.mean() < 0.6
    np.testing.assert_array_equal(np.asarray(out.latency)[timed_out], 5)
    assert np.asarray(out.latency)[~timed_out].max() <= 5


def test_a_heavy_tailed_backup_never_fails():
    """The backup with Pareto waits (mean 4, alpha 1.5): waits vary, clipped to its bound,
    and every call answers."""
    svc = service(fail_prob=1.0)
    svc = svc.replace(backup=Latency(kind=PARETO, low=0, high=0, mean=4.0, shape=1.5))
    out = call_many(svc, *encode_args("price pam"), KEYS, tool="backup")
    waits = np.asarray(out.latency)
    assert np.all(np.asarray(out.status) == OK)
    assert len(set(waits.tolist())) > 3 and waits.max() <= MAX_BACKUP
