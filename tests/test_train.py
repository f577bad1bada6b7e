"""The trainer: determinism, seeds under vmap, learning, and the command line end to end."""

import json
from functools import partial

import flax
import jax
import numpy as np
import pytest
from conftest import TINY, tiny

from agentic_jax import cli
from agentic_jax.train import config as config_lib
from agentic_jax.train import update
from agentic_jax.train.loop import make_train
from agentic_jax.train.setup import build

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def grpo_runs():
    """Two seeds of a tiny GRPO run with an SFT stage, vmapped, plus seed 1 run alone."""
    config = tiny("sft.updates=2", "sft.num_episodes=16", "updates=2")
    train = jax.jit(make_train(config))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    together = jax.jit(jax.vmap(make_train(config)))(keys)
    alone = train(keys[1])
    again = train(keys[1])
    return together, alone, again


def test_same_key_same_result(grpo_runs):
    _, alone, again = grpo_runs
    jax.tree.map(np.testing.assert_array_equal, alone, again)


def test_each_vmapped_seed_equals_that_seed_alone(grpo_runs):
    together, alone, _ = grpo_runs
    seed_1 = jax.tree.map(lambda x: x[1], together)
    # vmap batches the matmuls, so float sums run in another order (differences ~1e-7). Adam
    # divides each coordinate by its own gradient scale, so in a coordinate whose gradient is
    # near zero such a difference can move a step by up to lr (here 1e-3): CI saw 2.3e-5 after
    # four updates. A mixed-up seed differs by the init's own scale (~0.1).
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-4), seed_1, alone)
    seed_0 = jax.tree.map(lambda x: x[0], together)
    assert not np.allclose(seed_0[0].params["params"]["token_embed"]["embedding"],
                           seed_1[0].params["params"]["token_embed"]["embedding"])  # fmt: skip


def test_metrics_are_finite(grpo_runs):
    _, alone, _ = grpo_runs
    _, stage_outputs = alone
    assert len(stage_outputs) == 2  # sft, rl
    for leaf in jax.tree.leaves(stage_outputs):
        assert np.all(np.isfinite(np.asarray(leaf)))


@pytest.mark.slow  # stream PPO also runs in test_sharding and test_stream_rollout_...
@pytest.mark.parametrize("batching", ["stream", "episodes"])
def test_ppo_runs_in_both_batching_modes(batching):
    config = tiny("algo.name=ppo", f"rollout.batching={batching}", "rollout.group_size=1",
                  "rollout.num_envs=8", "rollout.rollout_len=10", "updates=2",
                  "algo.num_minibatches=2", "algo.update_epochs=2")  # fmt: skip
    state, (rl_out,) = jax.jit(make_train(config))(jax.random.PRNGKey(0))
    (metrics, evals) = rl_out[0]
    assert int(state.update) == 2
    assert np.all(np.isfinite(np.asarray(metrics["loss/value"])))
    assert float(np.asarray(metrics["train/slot_utilisation"]).max()) > 0


@pytest.mark.slow  # long: moved out of the first stage's 10 minutes
def test_stream_rollout_recomputes_the_behaviour_log_probs():
    """The update's full forward over context + steps reproduces the rollout's decode steps."""
    config = tiny("algo.name=ppo", "rollout.batching=stream", "rollout.group_size=1",
                  "rollout.num_envs=4", "rollout.rollout_len=40")  # fmt: skip
    setup = build(config)
    state = update.init(setup, jax.random.PRNGKey(0))

    @jax.jit
    def two_rollouts(state):  # the second starts mid-episode and needs the carried context
        trajs = []
        for key in jax.random.split(state.key, 2):
            state, rollout = update.collect(setup, state, key, state.params)
            trajs.append(rollout.trajectory)
        return trajs

    for traj in two_rollouts(state):
        log_probs = setup.actor.evaluate_actions(state.params, traj).log_probs
        mask = np.asarray(traj.agent)
        assert mask.sum() > 0
        np.testing.assert_allclose(np.asarray(log_probs)[mask], np.asarray(traj.log_probs)[mask],
                                   atol=2e-4)  # fmt: skip
    assert int(np.asarray(traj.context_len).max()) > 0  # the second rollout had context


def collect_own(setup, state):
    return update.collect(setup, state, state.key, state.params)


def test_temperature_is_the_policy_in_the_rollout_and_the_loss_alike():
    """At temperature 0.5 the rollout samples from softmax(logits / 0.5), and the loss's
    log-probs are those of the same distribution (on-policy, as at temperature 1); on the same
    transcripts a colder policy is more certain."""
    setups = {t: build(tiny(f"rollout.temperature={t}")) for t in (1.0, 0.5)}
    state = update.init(setups[0.5], jax.random.PRNGKey(0))
    _, rollout = jax.jit(partial(collect_own, setups[0.5]))(state)
    traj = rollout.trajectory
    mask = np.asarray(traj.agent)
    cold = setups[0.5].actor.evaluate_actions(state.params, traj)
    np.testing.assert_allclose(np.asarray(cold.log_probs)[mask], np.asarray(traj.log_probs)[mask],
                               atol=2e-4)  # fmt: skip
    warm = setups[1.0].actor.evaluate_actions(state.params, traj)
    assert float(np.asarray(cold.entropy)[mask].mean()) < float(
        np.asarray(warm.entropy)[mask].mean()
    )


@pytest.mark.slow  # a learning run
def test_sft_cold_start_learns_kblookup():
    """A short supervised run halves the loss and lifts held-out success well above chance (1/8).

    (100 updates reach the first plateau: searching the right entity and answering with one of
    its values; reading the asked attribute takes several hundred more, see RESULTS.md.)"""
    config = tiny("sft.updates=100", "sft.num_episodes=128", "updates=0", "eval_interval=100",
                  "eval_episodes=128", "sft.lr=3e-3", "model.d_model=64", "model.n_layers=2",
                  "env.overrides.max_len=32")  # fmt: skip
    state, (sft_out,) = jax.jit(make_train(config))(jax.random.PRNGKey(0))
    metrics, evals = sft_out[0]
    loss = np.asarray(metrics["sft/loss"]).reshape(-1)
    assert loss[-5:].mean() < 0.5 * loss[:5].mean()
    assert float(np.asarray(evals["eval/success"]).reshape(-1)[-1]) > 0.3


@pytest.mark.slow
def test_cli_train_eval_render(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "kblookup_sft_rl", *TINY, "sft.updates=2", "sft.num_episodes=16",
            "updates=2", "--run-dir", str(run_dir)]  # fmt: skip
    assert cli.main(args) == 0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["update"] == 0 and rows[0]["stage"] == "init"
    assert [r["update"] for r in rows] == [0, 2, 4]
    for row in rows:
        for key in ("update", "env_steps", "wall_s", "train/reward", "eval/success",
                    "tokens_per_s"):  # fmt: skip
            assert key in row, (key, row)
        assert 0.0 <= row["eval/success"] <= 1.0
    assert rows[0]["train/reward"] is None and rows[-1]["train/reward"] is not None
    assert (run_dir / "config.yaml").is_file()
    assert config_lib.load(run_dir / "config.yaml").updates == 2
    capsys.readouterr()
    assert cli.main(["eval", str(run_dir)]) == 0
    assert "eval/success" in capsys.readouterr().out
    assert cli.main(["render", str(run_dir), "--count", "2", "--plain"]) == 0
    out = capsys.readouterr().out
    assert out.count("held-out episode") == 2 and "<task>" in out


def test_cli_reports_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit, match="unknown config key 'algo.lrr'"):
        cli.main(["train", "algo.lrr=1"])
    with pytest.raises(SystemExit, match="config 'nonexistent' not found"):
        cli.main(["train", "nonexistent"])
    assert cli.main(["eval", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "threshold,expected_level", [(0.0, 1), pytest.param(1.0, 0, marks=pytest.mark.slow)]
)
def test_curriculum_moves_up_when_training_success_passes_the_threshold(threshold, expected_level):
    levels = "[{num_attributes: 1}, {num_attributes: 2}]"
    config = tiny("updates=1", "eval_interval=1", f"curriculum.threshold={threshold}",
                  f"curriculum.levels={levels}")  # fmt: skip
    setup = build(config)
    state = update.init(setup, jax.random.PRNGKey(0))
    assert int(state.env_params.task.num_attributes) == 1
    state, metrics, _ = jax.jit(lambda s: update.run_chunk(setup, s, 1, 0))(state)
    assert int(state.level) == expected_level
    assert int(state.env_params.task.num_attributes) == expected_level + 1
    assert int(setup.actor.env_params.task.num_attributes) == 4  # evaluation stays at the target


def test_eval_variants_are_evaluated_beside_the_training_env():
    config = tiny("env.overrides.leak=true", "env.eval_variants={clean: {leak: false}}")
    setup = build(config)
    metrics = jax.jit(lambda s: update.evaluate(setup, s))(
        update.init(setup, jax.random.PRNGKey(0))
    )
    for prefix in ("eval", "eval_clean"):
        assert 0.0 <= float(metrics[f"{prefix}/success"]) <= 1.0
        assert f"{prefix}/hacks" in metrics
    assert float(metrics["eval_clean/hacks"]) == 0.0  # the clean variant has no leak to take


def test_an_eval_variant_may_play_training_tasks():
    """Variants play held-out tasks unless they set ``split: 0`` (the train/test gap)."""
    setup = build(tiny("env.eval_variants={train: {split: 0}, test: {num_entities: 8}}"))
    variants = setup.actor.eval_variants
    assert int(variants["train"][1].split) == 0 and int(variants["test"][1].split) == 1


def test_eval_variant_must_keep_the_transcript_length():
    config = tiny("env.eval_variants={long: {max_len: 40}}")
    with pytest.raises(ValueError, match="eval_variants.long: transcript length 40 differs"):
        build(config)
    with pytest.raises(ValueError, match="unknown override"):
        build(tiny("env.eval_variants={bad: {no_such_key: 1}}"))


PIPELINE = (
    "stages=[{name: cold, kind: sft, updates: 2, env: {tools_enabled: false}},"
    " {name: think, kind: rl, updates: 1, lr: 1.0e-3}, {name: fuse, kind: sft, updates: 1}]"
)


@pytest.mark.slow
def test_stages_chain_in_order_each_with_its_own_settings():
    config = tiny(PIPELINE, "sft.num_episodes=16", "eval_interval=1")
    setup = build(config)
    sft_lr = config.sft.lr
    assert [(s.name, s.kind, s.updates, s.lr) for s in setup.stages] == [
        ("cold", "sft", 2, sft_lr), ("think", "rl", 1, 1e-3), ("fuse", "sft", 1, sft_lr)
    ]  # fmt: skip
    state, outputs = jax.jit(make_train(config))(jax.random.PRNGKey(0))
    assert int(state.update) == 4 and len(outputs) == 3
    cold, think, fuse = ([jax.tree.map(np.asarray, chunk) for chunk in out] for out in outputs)
    assert cold[0][0]["sft/loss"].shape == (2, 1)  # [chunks, updates per chunk]
    assert "train/reward" in think[0][0] and "sft/loss" in fuse[0][0]
    # The first stage imitates the oracle with tools masked out; the others use them.
    assert float(cold[0][0]["sft/oracle_success"].min()) == 1.0
    stage_env = [p.tools_enabled for p in setup.stage_env_params]
    assert [bool(x) for x in stage_env] == [False, True, True]


@pytest.mark.slow  # long: moved out of the first stage's 10 minutes
def test_an_rl_stage_takes_the_policy_it_starts_from_as_its_reference():
    config = tiny(PIPELINE, "sft.num_episodes=16")
    setup = build(config)
    state = update.init(setup, jax.random.PRNGKey(0))
    state = update.start_stage(setup, state, 0)
    state, _, _ = jax.jit(lambda s: update.run_chunk(setup, s, 2, 0))(state)
    assert int(state.env_params.tools_enabled) == 0
    moved = update.start_stage(setup, state, 1)
    jax.tree.map(np.testing.assert_array_equal, moved.ref_params, state.params)
    assert bool(moved.env_params.tools_enabled)


@pytest.mark.parametrize(
    "overrides,message",
    [
        ([PIPELINE, "updates=5"], "set either stages or sft.updates/updates"),
        (["stages=[{name: a, kind: sft, updates: 1}, {name: a, kind: rl, updates: 1}]"],
         "names must be distinct"),
        (["stages=[{name: a, kind: ppo, updates: 1}]"], "stages.0.kind: Input should be"),
        (["updates=0", "sft.updates=0"], "nothing to train: every stage has 0 updates"),
    ],
)  # fmt: skip
def test_bad_pipelines_are_clear_errors(overrides, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        tiny(*overrides)


def test_a_stage_cannot_change_shapes():
    config = tiny("stages=[{name: a, kind: rl, updates: 1, env: {max_entities: 4}}]")
    with pytest.raises(ValueError, match="stage a: max_entities set array shapes"):
        build(config)


@pytest.mark.parametrize(
    "overrides, where",
    [
        (["env.overrides.max_len=14"], "the training environment"),
        (["curriculum.levels=[{hops: 1}, {hops: 2}]"], "curriculum level 1"),
        (["stages=[{name: a, kind: sft, updates: 1}, "
          "{name: b, kind: rl, updates: 1, env: {hops: 2}}]"], "stage b"),
    ],
)  # fmt: skip
def test_a_max_len_the_oracle_does_not_fit_is_refused(overrides, where):
    """max_len=28 fits one hop (the oracle needs 27 tokens) but not two: every difficulty the
    run trains or evaluates on is checked, not only the first."""
    with pytest.raises(ValueError, match=rf"max_len=\d+ is too short for {where}: the oracle's "
                       r"longest episode there needs \d+ tokens.*use max_len >= \d+"):  # fmt: skip
        build(tiny(*overrides))


def test_eval_sample_evaluates_sampled_episodes_deterministically():
    """eval_sample=true: held-out episodes sampled at the rollout temperature (a base's
    pass@1), the same for the same state; greedy decoding gives other episodes."""
    metrics = {}
    for sample in (False, True):
        setup = build(tiny(f"eval_sample={str(sample).lower()}"))
        state = update.init(setup, jax.random.PRNGKey(0))
        evaluate = jax.jit(partial(update.evaluate, setup))
        metrics[sample] = {k: float(v) for k, v in evaluate(state).items()}
        assert metrics[sample] == {k: float(v) for k, v in evaluate(state).items()}
    assert metrics[True] != metrics[False]


def test_the_bootstrap_value_recomputed_by_a_full_forward_is_the_rollouts_own():
    """A stream's bootstrap value under given parameters (``bootstrap_values``: one forward
    over context, steps and the next observation), which a stale rollout's learner uses,
    equals what the rollout's own decode steps computed when the actor's parameters are the
    same: the first rollout and the next, which continues its episodes (a context)."""
    setup = build(tiny("algo.name=ppo", "rollout.batching=stream", "rollout.group_size=1",
                       "rollout.num_envs=8", "rollout.rollout_len=16"))  # fmt: skip
    state = update.init(setup, jax.random.PRNGKey(3))
    flat = flax.traverse_util.flatten_dict(state.params)  # the value head starts at zero
    for path, leaf in flat.items():
        if "value_head" in path and path[-1] == "kernel":
            flat[path] = jax.random.normal(jax.random.PRNGKey(4), leaf.shape)
    state = state.replace(params=flax.traverse_util.unflatten_dict(flat))
    step = jax.jit(partial(collect_own, setup))
    for _ in range(2):
        state, rollout = step(state)
        recomputed = setup.actor.bootstrap_values(state.params, rollout)
        assert np.abs(np.asarray(rollout.last_value)).min() > 1e-3
        np.testing.assert_allclose(recomputed, rollout.last_value, rtol=1e-3, atol=1e-4)
        # a slot whose episode ended at the last step bootstraps from a fresh episode's start
        assert np.asarray(rollout.trajectory.dones)[:, -1].any()
    assert int(np.asarray(rollout.trajectory.context_len).max()) > 0
