"""A config turned into what training runs: ``build(config) -> Setup``.

``Setup`` holds the environment and the policy that acts in it (the ``actor``: the token
transformer for agentic-jax environments, an MLP for gymnax's classic ones), the optimiser,
the mesh, the pipeline's stages with each stage's environment parameters, the curriculum's
levels and the loss's static settings. Every check of the config against the environment
happens here, before anything compiles. ``TrainState`` and ``Hyperparams`` (the traced
hyperparameters a sweep vmaps) are defined here too: they are what ``build`` initialises.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from agentic_jax import envs as env_registry
from agentic_jax import tokens as tk
from agentic_jax.algos import ALGORITHMS, algorithm
from agentic_jax.algos.hyperparams import field_names, from_config, traced_names
from agentic_jax.monitors import load_monitor
from agentic_jax.train import memory
from agentic_jax.train.base import load_base_params
from agentic_jax.train.classic import ClassicActor
from agentic_jax.train.config import Config, StageConfig, pipeline
from agentic_jax.train.token_actor import TokenActor
from agentic_jax.train.transcript_fit import check_transcript_fits


@struct.dataclass
class Hyperparams:
    """The run's hyperparameters in the ``TrainState``: each stage's learning rate and the
    algorithm's declared hyperparameters (traced fields as arrays, static ones in the pytree's
    structure), so that one compiled train function can be vmapped over settings of the
    traced ones (``agentic-jax sweep``)."""

    stage_lr: jax.Array  # [num_stages] each pipeline stage's learning rate
    algo: Any  # an instance of the algorithm's hyperparams class (agentic_jax.algos)


def traced_keys() -> tuple[str, ...]:
    """The config keys ``Hyperparams`` carries as arrays (plus ``seed``, which sets the key): a
    sweep over any of them runs as one vmapped computation; any other key changes what is
    compiled. Read from the registered algorithms' declarations."""
    names = dict.fromkeys(n for a in ALGORITHMS.values() for n in traced_names(a.hyperparams))
    return ("sft.lr", *(f"algo.{name}" for name in names))


def hyperparams(config: Config) -> Hyperparams:
    """A config's ``Hyperparams`` (stage learning rates as ``pipeline`` resolves them; the
    off-policy correction is ``none`` when the rollouts are on-policy)."""
    declared = algorithm(config.algo.name).hyperparams
    on_policy = config.rollout.staleness == 0 and "off_policy" in field_names(declared)
    return Hyperparams(
        stage_lr=jnp.asarray([stage.lr for stage in pipeline(config)], jnp.float32),
        algo=from_config(declared, config.algo, **({"off_policy": "none"} if on_policy else {})),
    )


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    ref_params: Any  # frozen policy the RL stage started from (for the KL penalty)
    env_params: Any  # the environment parameters trained on now (stage, curriculum level)
    obs: Any  # stream batching: the environments' carry between updates (None: episodes)
    env_state: Any
    key: jax.Array
    update: jax.Array  # updates done so far, every stage counted
    level: jax.Array  # curriculum level (0 without a curriculum)
    hyper: Hyperparams
    # rollout.staleness = k > 0: the parameters of the last k updates, oldest first, stacked;
    # the oldest acts. None when on-policy.
    stale_params: Any = None


def seed_keys(config: Config) -> jax.Array:
    """The PRNG key of each of the config's ``num_seeds`` seeds."""
    return jax.random.split(jax.random.PRNGKey(config.seed), config.num_seeds)


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam after global-norm clipping; the learning rate is applied per stage (traced)."""
    return optax.chain(optax.clip_by_global_norm(config.algo.max_grad_norm), optax.scale_by_adam())


def memory_shapes(config: Config, actor: TokenActor) -> memory.Shapes:
    """What sizes a token run's large arrays (``agentic_jax.train.memory``)."""
    model = config.model
    return memory.Shapes(
        rows=actor.num_envs,
        transcript=actor.env.max_len,
        vocab=tk.VOCAB_SIZE,
        d_model=model.d_model,
        n_layers=model.n_layers,
        n_heads=model.n_heads,
        mlp_ratio=model.mlp_ratio,
        minibatches=config.algo.num_minibatches,
        eval_rows=config.eval_episodes,
        seeds=config.num_seeds,
    )


class Setup:
    """Everything a config builds, validated; the update functions and the loop read it."""

    def __init__(self, config: Config):
        self.config = config
        self.stages: list[StageConfig] = pipeline(config)
        if config.env.id in env_registry.REGISTRY:
            self.actor = TokenActor(config)
            self.memory = memory.check_fits(memory_shapes(config, self.actor), config.devices)
        elif config.env.id in env_registry.gymnax_ids():
            self.actor = ClassicActor(config)
        else:
            env_registry.make(config.env.id)  # raises: an unknown id, with the valid ones
        self.base_params = None  # the parameters every seed starts from, with ``init``
        if config.init:
            expected = jax.eval_shape(self.actor.init_params, jax.random.PRNGKey(0))
            self.base_params = load_base_params(config.init, expected)
        self.transcript_monitor = None  # algo.monitor: transcript, in the reward
        if config.algo.monitor_penalty > 0 and config.algo.monitor == "transcript":
            self.transcript_monitor = load_monitor(config.algo.monitor_weights)
        self.optimizer = make_optimizer(config)
        self.curriculum_levels = [
            self._traced_params(level, f"curriculum level {i}")
            for i, level in enumerate(config.curriculum.levels)
        ]
        self.stage_env_params = [
            self._traced_params(stage.env, f"stage {stage.name}") for stage in self.stages
        ]
        if isinstance(self.actor, TokenActor) and "max_len" in config.env.overrides:
            self._check_transcript_fits()
        self.overlap_devices: tuple | None = None  # (actor, learner) with rollout.overlap
        self.mesh = self._mesh(config)

    def _check_transcript_fits(self) -> None:
        """A hand-set ``max_len`` must fit the oracle at every difficulty of the run: the
        training environment, each stage's and each curriculum level's (train and held-out
        splits alike: the held-out tasks are evaluated)."""
        difficulties = {"the training environment": self.actor.env_params}
        difficulties |= {
            f"stage {stage.name}": params
            for stage, params in zip(self.stages, self.stage_env_params, strict=True)
        }
        difficulties |= {
            f"curriculum level {i}": params for i, params in enumerate(self.curriculum_levels)
        }
        for where, params in list(difficulties.items()):
            difficulties[f"{where} (held-out tasks)"] = params.replace(split=1)
        static = {
            k: v
            for k, v in self.actor.env_overrides.items()
            if k != "max_len" and k in env_registry.static_overrides(self.config.env.id)
        }
        cache_key = (self.config.env.id, repr(sorted(static.items())))
        check_transcript_fits(self.actor.env, difficulties, cache_key)

    @property
    def num_envs(self) -> int:
        return self.actor.num_envs

    @property
    def total_updates(self) -> int:
        return sum(stage.updates for stage in self.stages)

    def _traced_params(self, overrides: dict, where: str) -> Any:
        """Environment parameters with traced ``overrides`` on top of ``env.overrides``."""
        if not overrides:
            return self.actor.env_params
        static = set(overrides) & set(env_registry.static_overrides(self.config.env.id))
        if static:
            raise ValueError(
                f"{where}: {', '.join(sorted(static))} set array shapes and cannot change "
                "during a run; set them in env.overrides"
            )
        return self.actor.make_env_params(overrides)

    def _mesh(self, config: Config) -> Mesh | None:
        """A one-axis ("data") mesh over the first ``config.devices`` devices: this process's
        own, or every process's after ``jax.distributed.initialize()`` (multi-host)."""
        available = jax.devices() if jax.process_count() > 1 else jax.local_devices()
        count = config.devices or len(available)
        if config.rollout.overlap:
            self.overlap_devices = self._overlap_devices(config, available, count)
            return None  # each side runs whole on its own device
        if count > len(available):
            raise ValueError(
                f"devices={config.devices}: only {len(available)} device(s) "
                f"({available[0].platform}); use 1 to {len(available)}, or 0 for all"
            )
        batches = {"rollout batch": self.num_envs, "eval_episodes": config.eval_episodes}
        if any(stage.kind == "sft" for stage in self.stages):
            batches["sft.num_episodes"] = config.sft.num_episodes
        for name, size in batches.items():
            if size % count:
                raise ValueError(
                    f"devices={count}: the {name} ({size}) must divide evenly over the devices"
                )
        return Mesh(available[:count], ("data",)) if count > 1 else None

    def _overlap_devices(self, config: Config, available: list, count: int) -> tuple:
        """(actor device, learner device) for ``rollout.overlap``, after checking the run can
        be pipelined: the actor must act at least one update behind (so the next rollout
        needs nothing the current update computes) and from fresh episodes."""
        problems = []
        if config.rollout.staleness < 1:
            problems.append("rollout.staleness >= 1 (the actor acts one update behind)")
        if config.rollout.batching != "episodes":
            problems.append("rollout.batching=episodes (a stream's carry is the learner's)")
        if config.curriculum.levels:
            problems.append("no curriculum (its level moves with each update's result)")
        if count != 2 or len(available) < 2:
            problems.append(
                f"devices=2 with two devices present (devices={config.devices}; "
                f"found {len(available)})"
            )
        if jax.process_count() > 1:
            problems.append("a single process")
        if problems:
            raise ValueError("rollout.overlap=true needs " + "; ".join(problems))
        return available[0], available[1]

    def level_params(self, level: jax.Array) -> Any:
        """The environment parameters of curriculum level ``level`` (traced)."""
        stacked = jax.tree.map(
            lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *self.curriculum_levels
        )
        return jax.tree.map(lambda x: x[level], stacked)

    def shard_batch(self, tree):
        """Split a pytree of ``[N, ...]`` batch arrays over the mesh's devices (first axis)."""
        if self.mesh is None:
            return tree
        batch = NamedSharding(self.mesh, PartitionSpec("data"))
        return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, batch), tree)

    def place(self, state: TrainState) -> TrainState:
        """Put a state on the mesh, replicated (data parallel); a no-op on one device."""
        if self.mesh is None:
            return state
        replicated = NamedSharding(self.mesh, PartitionSpec())
        if jax.process_count() == 1:
            return jax.device_put(state, replicated)
        # Multi-host: every process built the same state (same seed); each supplies its copy.
        return jax.tree.map(
            lambda x: jax.make_array_from_callback(
                x.shape, replicated, lambda index: np.asarray(x)[index]
            ),
            state,
        )


def build(config: Config) -> Setup:
    """The validated ``Setup`` of a config: config errors surface here, before compiling."""
    return Setup(config)
