"""Delegation (``agentic_jax.delegation``): an orchestrator and its sub-agents in one
environment. What the issue asks to hold: a sub-agent's tokens never reach the orchestrator's
context but through its answer, the loss masks per role, the critical-path count, the credit
schemes by hand, jit/vmap without retracing, and fuzzed calls (malformed, beyond the slots, a
sub-agent that never answers) that keep every shape and bound."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from agentic_jax import tokens as tk
from agentic_jax.algos import grpo
from agentic_jax.algos.credit import assign_credit
from agentic_jax.envs import make
from agentic_jax.rollout import Trajectory, oracle_step, random_step, rollout_episodes
from agentic_jax.train import config as config_lib
from agentic_jax.train.setup import build
from agentic_jax.transcript import Phase

pytestmark = pytest.mark.timeout(300)

SLOTS = 2
ENV, PARAMS = make(
    "KBGather-v0", max_entities=4, max_attributes=2, max_queried=2, sub_agents=SLOTS,
    num_entities=4, num_attributes=2, num_queried=2,
)  # fmt: skip
CONTEXTS = 1 + SLOTS
TASKS = 48


@jax.jit
def _rollouts(key, oracle_mode, random):
    """Oracle (``random`` False) or random-policy episodes, one compiled function."""
    params = PARAMS.replace(oracle_mode=oracle_mode)

    def policy(key, obs, state, carry):
        oracle = oracle_step(ENV)(key, obs, state, carry)
        uniform = random_step(key, obs, state, carry)
        return jax.tree.map(lambda a, b: jnp.where(random, a, b), uniform, oracle)

    return rollout_episodes(ENV, params, policy, None, key, TASKS)


def rollout(seed=0, oracle_mode=1, random=False):
    return _rollouts(jax.random.PRNGKey(seed), oracle_mode, random)


def transcripts(result, index):
    """Decoded transcripts of every context of episode ``index``."""
    contexts = result.env_state.contexts
    return [tk.decode(np.asarray(contexts.transcript[index, c])) for c in range(CONTEXTS)]


def result_segments(text: str) -> list[str]:
    return [part.split(" </result>")[0] for part in text.split("<result> ")[1:]]


@pytest.mark.parametrize("oracle_mode", [1, 2])
def test_the_delegating_oracles_solve_every_task_with_their_sub_agents(oracle_mode):
    result = rollout(oracle_mode=oracle_mode)
    assert float(result.stats["success"]) == 1.0
    assert float(result.stats["subagent_success"]) == 1.0
    assert float(result.stats["sub_agents"]) == 2.0
    assert float(result.stats["delegate_calls"]) == (1.0 if oracle_mode == 1 else 2.0)
    orchestrator, first, second = transcripts(result, 0)
    assert orchestrator.split("<call> ")[1].startswith("delegate")
    assert first.startswith("<subagent> <task>") and second.startswith("<subagent> <task>")


def test_only_a_sub_agents_answer_reaches_the_orchestrator():
    for random in (False, True):
        result = rollout(seed=3, random=random)
        contexts = result.env_state.contexts
        for index in range(TASKS):
            orchestrator, *subagents = transcripts(result, index)
            assert "<subagent>" not in orchestrator
            if not bool(result.env_state.used[index].any()):
                continue
            # The first delegate call's result: its sub-agents' answers, in slot order.
            delegated = [
                s for s, text in zip(range(SLOTS), subagents, strict=True)
                if bool(result.env_state.used[index, s]) and text.startswith("<subagent>")
            ]  # fmt: skip
            calls = orchestrator.split("<call> ")[1:]
            results = result_segments(orchestrator)
            first_delegate = next(i for i, call in enumerate(calls) if call.startswith("delegate"))
            if first_delegate >= len(results) or results[first_delegate] == "<error>":
                continue  # cut off while waiting, or no whole sub-task
            answers = []
            for s in delegated[: len(results[first_delegate].split())]:
                length = int(contexts.answer_len[index, 1 + s])
                closed = subagents[s].endswith("</answer>")
                answers.append(tk.decode(np.asarray(contexts.answer[index, 1 + s, :length]))
                               if closed else "<error>")  # fmt: skip
            assert results[first_delegate].split() == " ".join(answers).split(), index
            # Nothing a sub-agent read (its search result) is in the orchestrator's context
            # unless the orchestrator searched itself.
            if "search" not in orchestrator:
                for text in subagents:
                    for body in result_segments(text):
                        if len(body.split()) > 2:
                            assert body not in orchestrator


def test_loss_masks_keep_each_roles_own_tokens():
    result = rollout(seed=1, random=True)
    traj, contexts = result.trajectory, result.env_state.contexts
    agent = np.asarray(traj.agent).reshape(TASKS, CONTEXTS, -1)
    written = np.asarray(contexts.agent_written)
    for index in range(TASKS):
        for c in range(CONTEXTS):
            if c and not bool(result.env_state.used[index, c - 1]):
                assert not agent[index, c].any()  # an unused slot has no loss tokens
                continue
            # The row's agent steps are exactly that context's agent tokens, in order.
            chosen = np.asarray(traj.actions).reshape(TASKS, CONTEXTS, -1)[index, c]
            tokens = np.asarray(contexts.transcript[index, c])[written[index, c]]
            np.testing.assert_array_equal(chosen[agent[index, c]], tokens)


def test_critical_path_is_the_orchestrators_steps_plus_the_longest_wait():
    for oracle_mode in (1, 2):
        result = rollout(seed=2, oracle_mode=oracle_mode)
        contexts = result.env_state.contexts
        lengths = np.asarray(contexts.length)
        waits = lengths[:, 1:] - 1  # a sub-agent starts in the call's step
        expected = lengths[:, 0] - 1 + (waits.max(1) if oracle_mode == 1 else waits.sum(1))
        np.testing.assert_array_equal(np.asarray(result.env_state.critical_path), expected)
        total = lengths.sum(1)
        assert float(result.stats["total_tokens"]) == pytest.approx(total.mean())
    parallel, serial = rollout(oracle_mode=1), rollout(oracle_mode=2)
    assert float(parallel.stats["critical_path"]) < float(serial.stats["critical_path"])


def test_rollouts_compile_once_and_repeat_for_the_same_key():
    first, again = rollout(seed=4, random=True), rollout(seed=4, random=True)
    rollout(seed=5, oracle_mode=2)
    assert _rollouts._cache_size() == 1
    same = jax.tree.map(lambda a, b: np.array_equal(a, b), first.trajectory, again.trajectory)
    assert all(jax.tree.leaves(same))


def test_fuzzed_episodes_keep_every_shape_and_bound():
    for seed in range(3):
        result = rollout(seed=10 + seed, random=True)
        contexts, state = result.env_state.contexts, result.env_state
        assert contexts.transcript.shape == (TASKS, CONTEXTS, ENV.max_len)
        assert (np.asarray(contexts.length) <= ENV.max_len).all()
        assert (np.asarray(contexts.length[:, 1:]) <= ENV.subagent_max_len).all()
        assert (np.asarray(contexts.phase) == Phase.DONE).all()  # every context ended
        assert (np.asarray(state.critical_path) <= ENV.episode_steps).all()
        assert (np.asarray(state.used).sum(1) <= SLOTS).all()
        for index in range(TASKS):
            for text in transcripts(result, index)[1:]:
                assert "delegate" not in text  # a sub-agent cannot delegate (one level)


step = jax.jit(ENV.step_without_reset)


def drive(orchestrator_tokens, subagent_token=None, steps=60):
    """Step one episode: the orchestrator writes ``orchestrator_tokens`` on its turns (then
    answers), each sub-agent ``subagent_token`` (or its legal first choice) on its turns."""
    obs, state = ENV.reset(jax.random.PRNGKey(7), PARAMS)
    queue = list(tk.ids(orchestrator_tokens.split()))
    for t in range(steps):
        actions = []
        for c in range(CONTEXTS):
            legal = np.asarray(obs.legal_mask[c])
            if c == 0 and queue and bool(obs.agent_turn[0]) and legal[queue[0]]:
                actions.append(queue.pop(0))
            elif c and subagent_token is not None and legal[tk.token_id(subagent_token)]:
                actions.append(tk.token_id(subagent_token))
            else:
                actions.append(int(np.argmax(legal)))
        obs, state, *_ = step(jax.random.PRNGKey(t), state, jnp.asarray(actions), PARAMS)
    return state


def test_a_call_without_a_whole_sub_task_or_a_free_slot_returns_an_error():
    malformed = drive("<call> delegate hat </call>", steps=16)
    text = tk.decode(np.asarray(malformed.contexts.transcript[0]))
    assert "<call> delegate hat </call> <result> <error> </result>" in text
    assert not bool(malformed.used.any())
    # Two calls of two sub-tasks each: the second finds no free slot.
    names = "ann bob"
    state = drive(f"<call> delegate hat {names.split()[0]} hat {names.split()[1]} </call> "
                  f"<call> delegate hat ann </call>", steps=80)  # fmt: skip
    text = tk.decode(np.asarray(state.contexts.transcript[0]))
    assert text.count("<call> delegate") == 2
    assert result_segments(text)[1] == "<error>"
    assert int(state.used.sum()) == 2


def test_a_sub_agent_that_never_answers_is_cut_off_and_reads_as_an_error():
    # Sub-agents that only ever open <call> and search: they never answer.
    state = drive("<call> delegate hat ann </call>", subagent_token="<call>", steps=80)
    sub = state.contexts
    assert int(sub.length[1]) == ENV.subagent_max_len
    assert int(sub.phase[1]) == Phase.DONE
    text = tk.decode(np.asarray(state.contexts.transcript[0]))
    assert result_segments(text)[0] == "<error>"


def hand_made_batch():
    """Two tasks x one sample, three contexts each (orchestrator, two slots; the second
    task's second slot unused). Rewards: system 1 / 0; sub-agents' own 1, 0 / 1."""
    rewards = jnp.zeros((6, 4)).at[0, 3].set(1.0).at[1, 2].set(1.0).at[4, 1].set(1.0)
    segments = jnp.zeros((6, 4), jnp.int32).at[5].set(-1)
    zeros = jnp.zeros((6, 4), jnp.int32)
    return Trajectory(
        tokens=zeros, positions=zeros, segments=segments, actions=zeros,
        agent=segments >= 0, legal=jnp.ones((6, 4, 2), bool), log_probs=rewards * 0,
        values=rewards * 0, rewards=rewards, dones=zeros.astype(bool),
        context=jnp.zeros((6, 0), jnp.int32), context_len=jnp.zeros(6, jnp.int32),
        group=jnp.array([0, 0, 0, 1, 1, 1], jnp.int32),
    )  # fmt: skip


def credited(scheme):
    traj, groups = assign_credit(hand_made_batch(), scheme, contexts=3, num_tasks=2)
    advantages = grpo.token_advantages(traj, groups, normalize_std=False)[:, 0]
    return np.asarray(traj.rewards.sum(1)), np.asarray(traj.group), groups, np.asarray(advantages)


def test_outcome_credit_broadcasts_the_systems_reward():
    rewards, group, groups, advantages = credited("outcome")
    np.testing.assert_array_equal(rewards, [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(group, [0, 0, 0, 1, 1, 1])
    assert groups == 2
    np.testing.assert_allclose(advantages, 0.0)  # every task's rows agree: nothing to learn


def test_subtask_credit_rewards_each_sub_agent_by_its_own_verifier():
    rewards, group, groups, advantages = credited("subtask")
    np.testing.assert_array_equal(rewards, [1, 1, 0, 0, 1, 0])
    # One group per task over both levels; the unused slot (row 5) is out of its group.
    np.testing.assert_allclose(advantages, [1 / 3, 1 / 3, -2 / 3, -0.5, 0.5, 0.0], atol=1e-6)
    assert groups == 2 and list(group) == [0, 0, 0, 1, 1, 1]


def test_per_level_credit_compares_each_level_with_its_own():
    rewards, group, groups, advantages = credited("per_level")
    np.testing.assert_array_equal(rewards, [1, 1, 0, 0, 1, 0])
    assert groups == 4
    np.testing.assert_array_equal(group, [0, 1, 1, 2, 3, 3])
    # Orchestrators alone in their groups (G = 1): 0; task 0's sub-agents 1 and 0 around 0.5.
    np.testing.assert_allclose(advantages, [0.0, 0.5, -0.5, 0.0, 0.0, 0.0], atol=1e-6)


def test_an_unknown_credit_scheme_is_refused():
    with pytest.raises(ValueError, match="per_level"):
        assign_credit(hand_made_batch(), "shared", contexts=3, num_tasks=2)


def test_bad_delegation_settings_are_clear_errors():
    with pytest.raises(ValueError, match="sub_agents"):
        make("KBGather-v0", max_steps=40)
    with pytest.raises(ValueError, match="sub_agents must be >= 0"):
        make("KBGather-v0", sub_agents=-1)
    with pytest.raises(ValueError, match="subagent_max_len must be >= 0"):
        make("KBGather-v0", sub_agents=2, subagent_max_len=-3)


def delegating_setup(*overrides):
    base = [
        "env.id=KBGather-v0", "env.overrides={max_entities: 4, max_attributes: 2, max_queried: 2, "
        "sub_agents: 2, num_entities: 4, num_attributes: 2, num_queried: 2}",
        "model.d_model=16", "model.n_layers=1", "rollout.num_tasks=2", "rollout.group_size=2",
        "eval_episodes=4", "sft.num_episodes=4", "sft.oracle_mode=1",
    ]  # fmt: skip
    return build(config_lib.load(None, base + list(overrides)))


@pytest.mark.slow  # three compiles of the policy's forward pass (about a minute)
def test_separate_role_parameters_route_each_roles_rows_through_its_own():
    shared, separate = delegating_setup(), delegating_setup("model.role_params=separate")
    params = shared.actor.init_params(jax.random.PRNGKey(0))
    demo = shared.actor.demonstrations(
        shared.actor.env_params.replace(oracle_mode=1), jax.random.PRNGKey(1), lambda t: t
    ).trajectory
    # The same parameters for both roles: exactly the shared policy's outputs.
    both = jax.tree.map(lambda p: jnp.stack([p, p]), params)
    np.testing.assert_allclose(
        separate.actor.evaluate_actions(both, demo).log_probs,
        shared.actor.evaluate_actions(params, demo).log_probs, atol=1e-5,
    )  # fmt: skip
    # A loss on the orchestrator's tokens alone moves only the orchestrator's parameters.
    orchestrator_rows = (jnp.arange(demo.agent.shape[0]) % CONTEXTS == 0)[:, None] & demo.agent

    def orchestrator_loss(stacked):
        log_probs = separate.actor.evaluate_actions(stacked, demo).log_probs
        return -(log_probs * orchestrator_rows).sum()

    grads = jax.grad(orchestrator_loss)(separate.actor.init_params(jax.random.PRNGKey(2)))
    orchestrator_grads, subagent_grads = (jax.tree.map(lambda g: g[0], grads),
                                          jax.tree.map(lambda g: g[1], grads))  # fmt: skip
    assert float(optax.tree.norm(orchestrator_grads)) > 0
    assert float(optax.tree.norm(subagent_grads)) == 0.0


def test_role_parameters_need_sub_agents():
    with pytest.raises(ValueError, match="sub_agents"):
        build(config_lib.load(None, ["model.role_params=separate", "model.d_model=16"]))


def test_the_mixed_habit_corpus_draws_each_plan_by_its_weight():
    family = ENV.family
    task_params = PARAMS.task.replace(plan_probs=(1.0, 2.0, 1.0))
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    plans = np.asarray(jax.jit(jax.vmap(lambda k: family.sample(k, task_params, 0, 3).plan))(keys))
    delegates = (plans == tk.token_id("delegate")).sum(1)
    shares = [np.mean(delegates == 0), np.mean(delegates == 1), np.mean(delegates == 2)]
    np.testing.assert_allclose(shares, [0.25, 0.5, 0.25], atol=0.03)


def test_a_behaviour_corpus_runs_with_sub_agents():
    env, params = make(
        "KBGather-v0", max_entities=4, max_attributes=2, max_queried=2, sub_agents=2,
        oracle_mode=3, behaviour_probs={"oracle": 0.5, "guess": 0.5},
    )  # fmt: skip
    result = jax.jit(lambda k: rollout_episodes(env, params, oracle_step(env), None, k, 64))(
        jax.random.PRNGKey(0)
    )
    assert 0.2 < float(result.stats["success"]) < 0.8  # guesses fail, the rest succeed
    assert float(result.stats["sub_agents"]) > 0


@pytest.mark.slow
def test_cli_trains_renders_and_scores_a_delegating_run(tmp_path, capsys):
    from agentic_jax import cli

    run_dir = tmp_path / "run"
    args = ["train", "kbgather_delegate", "model.d_model=16", "model.n_layers=1",
            "rollout.num_tasks=2", "rollout.group_size=2", "sft.updates=2", "sft.num_episodes=4",
            "updates=2", "eval_episodes=4", "eval_interval=2", "num_seeds=1",
            "model.role_params=separate", "algo.credit=per_level",
            "--run-dir", str(run_dir)]  # fmt: skip
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(["render", str(run_dir), "--count", "2", "--plain"]) == 0
    out = capsys.readouterr().out
    assert out.count("held-out episode") == 2
    assert cli.main(["eval", str(run_dir), "--pass-at-k", "4", "--tasks", "4"]) == 0
    assert "pass@4" in capsys.readouterr().out
    html = tmp_path / "page.html"
    assert cli.main(["render", str(run_dir), "--count", "1", "--html", str(html)]) == 0
    assert html.read_text().startswith("<!doctype html>")
