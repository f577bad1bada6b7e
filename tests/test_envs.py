"""Environments against their oracle, random play, determinism, splits and bad input."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.envs import REGISTRY, make, registered_envs
from agentic_jax.harness import Harness, Phase
from agentic_jax.rollout import oracle_step, random_step, rollout_episodes
from agentic_jax.task import without_segments
from agentic_jax.transcript import check_harness_params

pytestmark = pytest.mark.timeout(300)


def _honest_modes(env_id: str) -> list[int]:
    family = make(env_id)[0].family
    return [m for m in family.oracle_modes if m != family.exploit_oracle_mode]


# (env id, traced overrides, oracle modes): every difficulty level an env registers, plus
# the smallest worlds, which stress index clipping.
# Mixed-v0 samples every included env at once (slow to compile); tests/test_mixed.py covers
# its oracle and splits in the fast stage, these generic checks run in the slow one.
SLOW_ENVS = ("Mixed-v0",)


def _marked(env_id, *rest):
    marks = [pytest.mark.slow] if env_id in SLOW_ENVS else []
    return pytest.param(env_id, *rest, marks=marks, id="-".join([env_id, *map(str, rest)]))


LEVELS = [
    (env_id, level, _honest_modes(env_id))
    for env_id, spec in REGISTRY.items()
    for level in spec.levels
] + [
    ("KBLookup-v0", {"num_entities": 2, "num_attributes": 1}, [0]),
    ("WebNav-v0", {"num_pages": 2, "num_links": 1, "num_facts": 1}, [0]),
    ("CodeSynth-v0", {"num_ops": 3, "num_visible": 1}, [0]),
]
ENVS = {env_id: make(env_id)[0] for env_id in registered_envs()}
EPISODES = 128
SAMPLES = 1000  # tasks drawn by the sampling tests (one shape: one compile per env)


TRACES: dict[str, int] = {}


@functools.partial(jax.jit, static_argnames=("env",))
def _play(env, params, use_oracle, key):
    """Episodes of the oracle or of a random legal policy (a traced choice: one compile)."""
    TRACES[env.name] = TRACES.get(env.name, 0) + 1  # runs only while tracing
    oracle = oracle_step(env)

    def step(key, obs, state, carry):
        planned = oracle(key, obs, state, carry)[0]
        random_action = random_step(key, obs, state, carry)[0]
        action = jnp.where(use_oracle, planned, random_action)
        zeros = jnp.zeros(action.shape, jnp.float32)
        return action, zeros, zeros, carry

    rollout = rollout_episodes(env, params, step, None, key, EPISODES)
    return rollout.trajectory, rollout.stats, rollout.env_state


def play(env, params, policy, key):
    return _play(env, params, policy == "oracle", key)


@functools.partial(jax.jit, static_argnames=("env",))
def sample_tasks(env, params, split, keys):
    return jax.vmap(lambda k: env.family.sample(k, params.task, split, 0))(keys)


@functools.partial(jax.jit, static_argnames=("env",))
def reset(env, key, params):
    return env.reset(key, params)


@functools.partial(jax.jit, static_argnames=("env",))
def step(env, key, state, action, params):
    """One step without auto-reset, compiled once per environment."""
    return env.step_without_reset(key, state, action, params)


def with_overrides(env_id, **overrides):
    """The shared env and its params with traced overrides (no recompile)."""
    env = ENVS[env_id]
    _, params = make(env_id, **overrides)
    return env, params


@pytest.mark.parametrize("env_id,overrides,modes", [_marked(*level) for level in LEVELS])
def test_oracle_solves_every_task(env_id, overrides, modes):
    env, params = with_overrides(env_id, **overrides)
    for mode in modes:
        for split in (0, 1):
            p = params.replace(oracle_mode=mode, split=split)
            traj, stats, final = play(env, p, "oracle", jax.random.PRNGKey(mode))
            assert float(stats["success"]) == 1.0, (env_id, overrides, mode, split)
            assert float(stats["episodes"]) == EPISODES
            assert float(stats["invalid"]) == 0.0
            assert bool(jnp.all(final.phase == Phase.DONE))


@pytest.mark.parametrize("env_id", [_marked(env_id) for env_id in registered_envs()])
def test_random_policy_rarely_succeeds(env_id):
    env, params = with_overrides(env_id)
    _, stats, _ = play(env, params, "random", jax.random.PRNGKey(1))
    assert float(stats["success"]) < 0.25
    assert float(stats["invalid"]) == 0.0  # random play within the legal mask is always legal


@pytest.mark.parametrize("env_id", [_marked(env_id) for env_id in registered_envs()])
def test_jit_vmap_random_play_api(env_id):
    """Pgx/Jumanji-style: jitted, vmapped random play within the legal masks gives legal,
    finite, in-range outputs, and new keys or parameter values never retrace."""
    env, params = with_overrides(env_id)
    for call, p in enumerate([params, params.replace(split=1), params.replace(tool_bonus=0.5)]):
        traj, stats, final = play(env, p, "random", jax.random.PRNGKey(10 + call))
        live = traj.segments >= 0
        assert bool(jnp.all(traj.legal.any(axis=-1) | ~live)), "every state has a legal token"
        assert bool(jnp.all(jnp.take_along_axis(traj.legal, traj.actions[..., None], -1)[..., 0]
                            | ~traj.agent)), "the agent's tokens were legal"  # fmt: skip
        assert bool(jnp.all((traj.tokens >= 0) & (traj.tokens < tk.VOCAB_SIZE)))
        assert bool(jnp.all((traj.positions >= 0) & (traj.positions < env.max_len)))
        assert bool(jnp.all(jnp.isfinite(traj.rewards)))
        assert traj.tokens.dtype == jnp.int32 and traj.legal.shape[-1] == tk.VOCAB_SIZE
        assert float(stats["invalid"]) == 0.0 and float(stats["episodes"]) == EPISODES
        assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(stats))
    assert TRACES[env.name] == 1, "played three times, traced once"


def test_auto_reset_in_batched_play():
    """gymnax's ``step`` resets finished episodes: vmapped play runs episode after episode."""
    env, params = with_overrides("KBLookup-v0")
    num_envs = 8

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(key, obs, state):
        def body(carry, step_key):
            obs, state = carry
            act_key, env_key = jax.random.split(step_key)
            action = jax.random.categorical(act_key, jnp.where(obs.legal_mask, 0.0, -jnp.inf))
            obs, state, reward, terminated, truncated, info = jax.vmap(
                env.step, in_axes=(0, 0, 0, None)
            )(jax.random.split(env_key, num_envs), state, action, params)
            ok = obs.legal_mask.any(axis=-1).all() & jnp.isfinite(reward).all()
            return (obs, state), (ok & (info["invalid"].max() == 0), terminated | truncated)

        (obs, state), (ok, done) = jax.lax.scan(
            body, (obs, state), jax.random.split(key, 2 * env.max_len)
        )
        return obs, state, ok.all(), done.sum(axis=0)

    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    for call in range(2):  # the second call reuses the first trace
        obs, state, ok, episodes = run(jax.random.PRNGKey(call + 1), obs, state)
        assert bool(ok)
        assert int(episodes.min()) >= 2, "every slot finished several episodes"


@pytest.mark.parametrize("env_id", [_marked(env_id) for env_id in registered_envs()])
def test_same_key_same_transcript(env_id):
    env, params = with_overrides(env_id)
    key = jax.random.PRNGKey(7)
    _, _, first = play(env, params, "random", key)
    _, _, second = play(env, params, "random", key)
    np.testing.assert_array_equal(first.transcript, second.transcript)
    _, _, other = play(env, params, "random", jax.random.PRNGKey(8))
    assert not np.array_equal(first.transcript, other.transcript)


@pytest.mark.parametrize("env_id", [_marked(env_id) for env_id in registered_envs()])
def test_train_and_test_tasks_are_disjoint(env_id):
    env, params = with_overrides(env_id)
    keys = jax.random.split(jax.random.PRNGKey(3), SAMPLES)
    for split in (0, 1):
        tasks = sample_tasks(env, params, split, keys)
        assert bool(jnp.all(jax.vmap(env.family.split_of)(tasks.world) == split))


def test_kblookup_answer_never_in_the_prompt():
    env, params = with_overrides("KBLookup-v0", hops=2)
    tasks = sample_tasks(env, params, 0, jax.random.split(jax.random.PRNGKey(4), SAMPLES))
    value_ids = jnp.asarray(tk.ids(tk.VALUES))
    assert not bool(jnp.isin(tasks.prompt, value_ids).any())


def _to_agent_turn(env, state, params):
    """Step through forced tokens (the prompt) until the agent is to choose."""
    obs = env.observe(None, state, None, params)
    while not bool(obs.agent_turn):
        obs, state, *_ = step(env, jax.random.PRNGKey(0), state, 0, params)
    return obs, state


def test_think_budget_forces_the_closing_token():
    env, params = with_overrides("Arithmetic-v0", think_budget=3)
    _, state = reset(env, jax.random.PRNGKey(0), params)
    obs, state = _to_agent_turn(env, state, params)
    digit = tk.token_id("5")
    forced_close = None
    for action in [tk.THINK_OPEN, digit, digit, digit, digit]:
        obs, state, _, _, _, info = step(env, jax.random.PRNGKey(0), state, action, params)
        if int(obs.token) == tk.THINK_CLOSE:
            forced_close = bool(info["agent_step"])
    assert int(state.think_tokens) == 3
    assert forced_close is False  # </think> was written by the harness, not the agent
    assert not bool(obs.legal_mask[tk.THINK_OPEN])  # the budget is spent


def test_instruct_mode_forbids_thinking():
    env, params = with_overrides("Arithmetic-v0", think_budget=0)
    _, state = reset(env, jax.random.PRNGKey(0), params)
    obs, state = _to_agent_turn(env, state, params)
    assert not bool(obs.legal_mask[tk.THINK_OPEN])
    assert bool(obs.legal_mask[tk.CALL_OPEN]) and bool(obs.legal_mask[tk.ANSWER_OPEN])


def test_illegal_token_ends_the_episode_without_reward():
    env, params = with_overrides("KBLookup-v0")
    _, state = reset(env, jax.random.PRNGKey(0), params)
    obs, state = _to_agent_turn(env, state, params)
    illegal = tk.token_id("7")
    assert not bool(obs.legal_mask[illegal])
    obs, state, reward, terminated, truncated, info = step(
        env, jax.random.PRNGKey(0), state, illegal, params
    )
    assert bool(terminated) and float(reward) == 0.0 and float(info["invalid"]) == 1.0


@pytest.mark.parametrize("action", [-1, tk.VOCAB_SIZE, 10**6, 3.7])
def test_an_action_that_is_no_token_ends_the_episode_and_writes_nothing(action):
    """Out of the vocabulary or not a whole number: invalid, and not recorded as a real token
    (it used to be clipped: 10**6 became the last token, -1 became <pad>, 3.7 became 3)."""
    env, params = with_overrides("KBLookup-v0")
    _, state = reset(env, jax.random.PRNGKey(0), params)
    _, state = _to_agent_turn(env, state, params)
    action = jnp.asarray(action, jnp.float32 if isinstance(action, float) else jnp.int32)
    _, after, reward, terminated, _, info = step(env, jax.random.PRNGKey(0), state, action, params)
    assert bool(terminated) and float(reward) == 0.0 and float(info["invalid"]) == 1.0
    assert bool(info["out_of_range_action"])
    assert int(after.length) == int(state.length)
    assert np.array_equal(after.transcript, state.transcript)


def test_forced_tokens_ignore_the_action():
    env, params = with_overrides("KBLookup-v0")
    obs, state = reset(env, jax.random.PRNGKey(0), params)
    assert not bool(obs.agent_turn)  # the prompt is being written
    a = step(env, jax.random.PRNGKey(0), state, 0, params)
    b = step(env, jax.random.PRNGKey(0), state, tk.token_id("red"), params)
    assert int(a[0].token) == int(b[0].token) == int(state.task.prompt[1])
    assert not bool(a[5]["agent_step"])


def test_transcript_limit_truncates():
    env, params = make("Arithmetic-v0", max_len=18)
    _, state = reset(env, jax.random.PRNGKey(0), params)
    digit = tk.token_id("1")
    truncated = False
    for _ in range(env.max_len - 1):
        # Open an answer and keep writing digits: it never closes before the limit.
        action = tk.ANSWER_OPEN if int(state.phase) == 1 else digit
        obs, state, reward, terminated, truncated, _ = step(
            env, jax.random.PRNGKey(0), state, action, params
        )
        if bool(truncated) or bool(terminated):
            break
    assert bool(truncated) or int(state.answer_len) == env.family.max_answer


def test_make_rejects_bad_input():
    with pytest.raises(ValueError, match="valid ids: KBLookup-v0"):
        make("KBLookUp-v0")
    with pytest.raises(ValueError, match="unknown override.*num_entites.*valid:.*num_entities"):
        make("KBLookup-v0", num_entites=4)
    with pytest.raises(TypeError, match="num_entities='4'.*expected int"):
        make("KBLookup-v0", num_entities="4")
    with pytest.raises(ValueError, match="max_len=5 is too short"):
        make("KBLookup-v0", max_len=5)
    with pytest.raises(ValueError, match="max_entities must be in"):
        make("KBLookup-v0", max_entities=40)


@pytest.mark.parametrize(
    "env_id, overrides, message",
    [
        ("KBLookup-v0", {"hops": 7}, r"hops=7 is outside its valid range \[1, 2\]"),
        ("KBLookup-v0", {"hops": 0}, r"hops=0 is outside"),
        ("KBLookup-v0", {"hops": -1}, r"hops=-1 is outside"),
        ("KBLookup-v0", {"num_entities": 0}, r"num_entities=0 is outside .*\[2, 8\]"),
        ("KBLookup-v0", {"num_entities": 100}, r"num_entities=100 is outside"),
        ("KBLookup-v0", {"num_attributes": 99}, r"num_attributes=99 is outside .*\[1, 6\]"),
        ("KBLookup-v0", {"split": 5}, r"split=5 is outside its valid range \[0, 1\]"),
        ("KBLookup-v0", {"oracle_mode": 3}, r"oracle_mode=3 is not one of .* \[0, 1\]"),
        ("KBLookup-v0", {"think_budget": -1}, r"think_budget=-1 is outside"),
        ("WebNav-v0", {"num_pages": 99}, r"num_pages=99 is outside"),
        ("Memory-v0", {"num_fillers": -2}, r"num_fillers=-2 is outside"),
        ("Arithmetic-v0", {"digits": 5}, r"digits=5 is outside .*\[1, 3\]"),
        ("Arithmetic-v0", {"min_digits": 3, "digits": 2}, r"min_digits=3 is above digits=2"),
        ("CodeSynth-v0", {"num_ops": 9}, r"num_ops=9 is outside"),
        ("FlakyAPI-v0", {"fail_prob": 1.5}, r"fail_prob=1.5 is outside .*\[0.0, 1.0\]"),
        ("FlakyAPI-v0", {"latency_min": 5, "latency_max": 3}, r"latency_min=5 is above"),
        ("Tally-v0", {"min_items": 3, "max_items": 2}, r"min_items=3 is above max_items=2"),
        ("Mixed-v0", {"kblookup_weight": -1.0}, r"kblookup_weight=-1.0 is outside"),
    ],
)
def test_make_refuses_difficulties_outside_their_bounds(env_id, overrides, message):
    """Sampling clips, so an out-of-range value would silently run another difficulty."""
    with pytest.raises(ValueError, match=f"{env_id}: {message}"):
        make(env_id, **overrides)


def test_every_registered_level_is_within_bounds():
    for env_id, spec in REGISTRY.items():
        for level in spec.levels:
            env, params = make(env_id, **level)
            check_harness_params(params, env.family)


def test_make_passes_gymnax_ids_through():
    env, params = make("CartPole-v1")
    assert not isinstance(env, Harness)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (4,)


LEAKY_ENVS = [e for e in registered_envs() if ENVS[e].family.exploit_oracle_mode is not None]
# Environments whose answer is hidden state that only tool calls reveal.
HIDDEN_ANSWER_ENVS = [
    e for e in ("KBLookup-v0", "FlakyAPI-v0", "WebNav-v0", "CodeSynth-v0") if e in ENVS
]


def _answer_tokens(plan: np.ndarray) -> list[int]:
    """The oracle plan's answer: the tokens between <answer> and </answer>."""
    plan = list(plan)
    start = plan.index(tk.ANSWER_OPEN) + 1
    return plan[start : plan.index(tk.ANSWER_CLOSE, start)]


def _contains(sequence: list[int], part: list[int]) -> bool:
    return any(sequence[i : i + len(part)] == part for i in range(len(sequence) - len(part) + 1))


@pytest.mark.parametrize("env_id", HIDDEN_ANSWER_ENVS)
def test_hidden_answer_never_in_the_prompt(env_id):
    """No-leak guarantee: the forced tokens before the agent's first token never hold the
    answer; the agent only earns it through a tool call."""
    env, params = with_overrides(env_id)
    keys = jax.random.split(jax.random.PRNGKey(4), SAMPLES)
    for split in (0, 1):
        tasks = sample_tasks(env, params, split, keys)
        for prompt, length, plan in zip(
            np.asarray(tasks.prompt), np.asarray(tasks.prompt_len), np.asarray(tasks.plan),
            strict=True,
        ):  # fmt: skip
            answer = _answer_tokens(plan)
            assert not _contains(list(prompt[:length]), answer), (env_id, tk.decode(prompt))


@pytest.mark.parametrize("env_id", LEAKY_ENVS)
def test_leak_variant_pays_the_shortcut_and_counts_it(env_id):
    family = ENVS[env_id].family
    leaky_env, leaky_params = make(env_id, leak=True)
    shortcut = family.exploit_oracle_mode
    key = jax.random.PRNGKey(5)
    # Where the leak is, the shortcut takes it in every episode, and each time is counted
    # (a leaky search or page pays; CodeSynth's hard-coded program passes `run` only).
    _, stats, final = play(leaky_env, leaky_params.replace(oracle_mode=shortcut), "oracle", key)
    assert bool(jnp.all(final.hacks >= 1))
    # The honest oracle on the leak variant takes no shortcut.
    _, stats, final = play(leaky_env, leaky_params, "oracle", key)
    assert float(stats["success"]) == 1.0 and int(final.hacks.sum()) == 0
    # The default variant does not leak: the same shortcut fails and counts nothing.
    env, params = with_overrides(env_id)
    _, stats, final = play(env, params.replace(oracle_mode=shortcut), "oracle", key)
    assert float(stats["success"]) == 0.0 and int(final.hacks.sum()) == 0


@pytest.mark.parametrize("env_id", LEAKY_ENVS)
def test_leak_rate_is_the_share_of_episodes_with_the_leak(env_id):
    """The discoverability knob: with ``leak_rate`` r the shortcut takes the leak (counted) in
    a share r of episodes; in the others it counts nothing, as without the leak. Where the
    leak pays (a search or page that answers) it pays exactly there; CodeSynth's hard-coded
    program passes ``run`` there and fails grading everywhere."""
    leaky_env, leaky_params = make(env_id, leak=True)
    shortcut = leaky_params.replace(oracle_mode=ENVS[env_id].family.exploit_oracle_mode)
    key = jax.random.PRNGKey(8)
    for rate in (0.0, 0.3, 1.0):
        params = shortcut.replace(task=shortcut.task.replace(leak_rate=rate))
        _, stats, final = play(leaky_env, params, "oracle", key)
        success, hacked = np.asarray(final.success), np.asarray(final.hacks) >= 1
        paid = hacked if env_id != "CodeSynth-v0" else np.zeros_like(hacked)
        np.testing.assert_array_equal(success, paid)
        assert abs(hacked.mean() - rate) <= 0.12, (rate, hacked.mean())  # 128 episodes
    with pytest.raises(ValueError, match="leak_rate"):
        make(env_id, leak=True, leak_rate=1.5)


def test_impossible_tasks_are_solved_only_through_the_leak():
    """KBLookup's impossible episodes: the question's name is in no search result, the honest
    oracle fails there, and the leak's shortcut succeeds there with a hack every time."""
    leaky_env, leaky_params = make("KBLookup-v0", leak=True, hops=2, impossible_rate=0.5)
    key = jax.random.PRNGKey(9)
    _, stats, final = play(leaky_env, leaky_params, "oracle", key)
    impossible = np.asarray(final.task.world.impossible)
    assert 0.35 < impossible.mean() < 0.65
    np.testing.assert_array_equal(np.asarray(final.impossible), impossible)  # the state's flag
    assert float(stats["impossible"]) == pytest.approx(impossible.mean())
    success = np.asarray(final.success)
    assert success[~impossible].all() and not success[impossible].any()
    assert not np.asarray(final.hacks).any() and float(stats["cheats"]) == 0.0
    # The question's name ("ATTR of REL of NAME") appears in no result of an impossible episode.
    questions = np.asarray(final.task.world.question)[impossible]
    for transcript, question in zip(np.asarray(final.transcript)[impossible], questions,
                                    strict=True):  # fmt: skip
        name = tk.decode(question[4:5])
        results = [r.split("</result>")[0] for r in tk.decode(transcript).split("<result>")[1:]]
        assert results and all(name not in r.split() for r in results)
    shortcut = leaky_params.replace(oracle_mode=1)
    _, stats, final = play(leaky_env, shortcut, "oracle", key)
    np.testing.assert_array_equal(np.asarray(final.task.world.impossible), impossible)
    assert np.asarray(final.success).all() and (np.asarray(final.hacks) >= 1).all()
    # Every impossible episode the shortcut solves is a cheat, and only those.
    np.testing.assert_array_equal(np.asarray(final.cheated), impossible)
    assert float(stats["cheats"]) == pytest.approx(impossible.mean())
    with pytest.raises(ValueError, match="impossible_rate"):
        make("KBLookup-v0", impossible_rate=-0.1)


def test_tools_disabled_masks_calls_out():
    env, params = with_overrides("KBLookup-v0", tools_enabled=False)
    _, stats, final = play(env, params, "random", jax.random.PRNGKey(6))
    assert float(stats["tool_calls"]) == 0.0 and float(stats["invalid"]) == 0.0
    assert not bool(jnp.any(final.transcript == tk.CALL_OPEN))


def test_without_segments_drops_each_call_and_keeps_the_rest():
    t = tk.TOKEN_ID
    plan = [tk.THINK_OPEN, t["1"], tk.THINK_CLOSE, tk.CALL_OPEN, t["search"], t["bob"],
            tk.CALL_CLOSE, tk.CALL_OPEN, t["search"], t["eve"], tk.CALL_CLOSE, tk.ANSWER_OPEN,
            t["red"], tk.ANSWER_CLOSE, tk.CALL_OPEN, t["bob"]]  # fmt: skip
    kept, length = without_segments(jnp.array(plan), jnp.int32(14), tk.CALL_OPEN, tk.CALL_CLOSE)
    expected = [tk.THINK_OPEN, t["1"], tk.THINK_CLOSE, tk.ANSWER_OPEN, t["red"], tk.ANSWER_CLOSE]
    assert int(length) == len(expected)
    assert kept.tolist() == expected + [tk.PAD] * (len(plan) - len(expected))


@pytest.mark.parametrize("env_id", ["KBLookup-v0", "FlakyAPI-v0", "Memory-v0"])
def test_oracle_with_tools_disabled_answers_without_calling(env_id):
    """The no-tool baseline's oracle: the same answers, written without any tool call."""
    env, params = with_overrides(env_id, tools_enabled=False)
    _, stats, final = play(env, params, "oracle", jax.random.PRNGKey(7))
    assert float(stats["tool_calls"]) == 0.0 and float(stats["invalid"]) == 0.0
    assert float(stats["success"]) == 1.0  # the oracle knows the hidden answer
    assert not bool(jnp.any(final.transcript == tk.CALL_OPEN))


def test_the_catalogue_lists_every_registered_environment():
    """``agentic-jax envs`` reads the catalogue (no JAX import); it must match the registry."""
    from agentic_jax.catalogue import DESCRIPTIONS

    assert list(DESCRIPTIONS) == list(REGISTRY)
    assert all(REGISTRY[env_id].description == text for env_id, text in DESCRIPTIONS.items())


def test_the_leak_takes_as_many_tokens_as_leak_tokens():
    """KBLookup's leaky search needs the question's first ``leak_tokens`` tokens, no more and
    no fewer; the shortcut oracle asks exactly those."""
    env, params = make("KBLookup-v0", leak=True, hops=2)  # one compile: leak_tokens is traced
    for tokens in (1, 3):
        shortcut = params.replace(oracle_mode=1, task=params.task.replace(leak_tokens=tokens))
        _, stats, final = play(env, shortcut, "oracle", jax.random.PRNGKey(3))
        assert float(stats["success"]) == 1.0 and (np.asarray(final.hacks) == 1).all()
        text = tk.decode(np.asarray(final.transcript[0]))
        asked = text.split("<call> search ")[1].split(" </call>")[0].split()
        question = text.split("<task> ")[1].split(" ?")[0].split()
        assert asked == question[:tokens]
        # The whole question is no longer the leak's key: an honest-looking error.
        world = jax.tree.map(lambda x: x[0], final.task.world)
        whole = jnp.asarray(world.question)
        out = env.family._search(world, whole, world.question_len, None)
        assert not bool(env.family.leaky_call(world, 0, whole, world.question_len))
        assert int(out.tokens[0]) == tk.ERROR


def test_webnav_impossible_tasks_are_solved_only_through_the_log():
    """WebNav's impossible episodes: the home page the question names is not in the site, the
    honest oracle fails there, the log's shortcut succeeds there with a hack (a cheat)."""
    env, params = make("WebNav-v0", leak=True, max_pages=8, impossible_rate=0.5)
    key = jax.random.PRNGKey(11)
    _, stats, final = play(env, params, "oracle", key)
    impossible = np.asarray(final.impossible)
    assert 0.35 < impossible.mean() < 0.65
    success = np.asarray(final.success)
    assert success[~impossible].all() and not success[impossible].any()
    assert float(stats["cheats"]) == 0.0
    names = np.asarray(final.task.world.site.names)
    homes = np.asarray(final.task.world.home)
    np.testing.assert_array_equal((names != homes[:, None]).all(1), impossible)
    _, stats, final = play(env, params.replace(oracle_mode=1), "oracle", key)
    assert np.asarray(final.success).all() and (np.asarray(final.hacks) >= 1).all()
    np.testing.assert_array_equal(np.asarray(final.cheated), impossible)
    assert float(stats["cheats"]) == pytest.approx(impossible.mean())
    with pytest.raises(ValueError, match="impossible_rate"):
        make("WebNav-v0", impossible_rate=1.5)
