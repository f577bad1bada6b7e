"""Typed, validated run configuration: YAML files in ``configs/`` plus ``key=value`` overrides.

Every section is a frozen pydantic dataclass that forbids unknown keys, so a typo or a
wrong type is an error naming the key, before anything compiles.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from agentic_jax.algos import ALGORITHMS, Algorithm
from agentic_jax.algos.hyperparams import config_fields
from agentic_jax.train.config_text import (  # noqa: F401 (the config API)
    ConfigError,
    apply_overrides,
    parse_override,
    read_yaml,
)

STRICT = ConfigDict(extra="forbid", frozen=True)
# A value of ``envs.make``'s overrides (a mapping: ``behaviour_probs: {oracle: 0.5, ...}``).
Override = int | float | bool | str | list[int | float] | dict[str, float]


@dataclass(config=STRICT)
class EnvConfig:
    id: str = "KBLookup-v0"
    # Passed to ``agentic_jax.envs.make``: static (max_len, ...) and traced (num_entities, ...).
    overrides: dict[str, Override] = Field(default_factory=dict)
    # Named variants evaluated beside the training environment: each is ``overrides`` updated
    # with its own (e.g. ``{clean: {leak: false}}`` while training on ``leak: true``) and logs
    # ``eval_<name>/success`` etc. Shapes the policy sees (``max_len``) must stay the same.
    # Variants play held-out tasks, unless one sets ``split: 0`` (training tasks).
    eval_variants: dict[str, dict[str, Override]] = Field(default_factory=dict)


@dataclass(config=STRICT)
class ModelConfig:
    # transformer: the token policy of agentic-jax environments; mlp: an actor-critic for
    # gymnax's vector-observation environments (CartPole-v1, ...), d_model wide, n_layers deep.
    kind: Literal["transformer", "mlp"] = "transformer"
    d_model: int = Field(64, gt=0)
    n_layers: int = Field(2, gt=0)
    n_heads: int = Field(4, gt=0)
    mlp_ratio: int = Field(4, gt=0)
    attention_window: int = Field(0, ge=0)  # 0: full causal attention; w > 0: last w positions
    init_std: float = Field(0.0, ge=0)  # block weights: 0 = LeCun normal, > 0 = normal(init_std)
    # With sub-agents (delegation): one parameter set for every role (the <subagent> role token
    # tells them apart), or one per role, the orchestrator's and the sub-agents'.
    role_params: Literal["shared", "separate"] = "shared"


@dataclass(config=STRICT)
class SFTConfig:
    """Supervised cold start on oracle transcripts (loss on agent tokens only)."""

    updates: int = Field(0, ge=0)
    lr: float = Field(1e-3, gt=0)
    num_episodes: int = Field(256, gt=0)
    oracle_mode: int = Field(0, ge=0)  # which oracle plan to imitate (family-specific)


def _algo_config() -> type:
    """The ``algo`` section: ``name`` (a registered algorithm, ``agentic_jax.algos``) and every
    registered algorithm's hyperparameters, with the defaults, bounds and docs their
    dataclasses declare (``agentic_jax.algos.hyperparams``). A run reads the chosen
    algorithm's; setting another algorithm's is an error (``check_combinations``)."""
    declared = config_fields([algorithm.hyperparams for algorithm in ALGORITHMS.values()])
    fields = [("name", str, dataclasses.field(default="grpo"))]
    fields += [(name, annotation, dataclasses.field(default=f)) for name, annotation, f in declared]
    section = dataclasses.make_dataclass("AlgoConfig", fields, frozen=True)
    section.__module__ = __name__
    section.__doc__ = _algo_config.__doc__
    return dataclass(config=STRICT)(section)


AlgoConfig = _algo_config()


@dataclass(config=STRICT)
class RolloutConfig:
    batching: Literal["episodes", "stream"] = "episodes"
    num_tasks: int = Field(64, gt=0)  # episodes: tasks per update
    group_size: int = Field(8, gt=0)  # episodes: samples per task (GRPO's G)
    num_envs: int = Field(256, gt=0)  # stream: parallel environments
    rollout_len: int = Field(32, gt=0)  # stream: steps per update
    # Act with the parameters of ``staleness`` updates ago, as an asynchronous actor that may
    # run at most that many updates ahead of the learner (run here at its bound); 0 = on-policy.
    staleness: int = Field(0, ge=0)
    # Actor and learner on two devices at once (``train/overlap.py``): the rollout of update
    # t + 1 runs on the first while update t learns on the second. The results are those of
    # the same run with ``staleness`` k >= 1 on one device; needs ``devices=2``.
    overlap: bool = False
    # AdaptThink's balanced sampling of the think/no-think decision (episodes batching): in
    # every group the first agent token of half the samples is forced to <think> and of the
    # other half drawn from the policy without <think>, where both are legal; the behaviour
    # log-probability recorded is that sampler's (log 0.5 + ...), so the loss's ratio is an
    # importance weight. Both modes stay in every group whatever the policy prefers.
    balance_modes: bool = False
    # Sampling temperature: the policy is softmax(logits / temperature), in the rollout and in
    # the loss's log-probs alike (as verl does), so a run at 0.7 stays on-policy. Evaluation
    # is greedy whatever it is.
    temperature: float = Field(1.0, gt=0)


@dataclass(config=STRICT)
class CurriculumConfig:
    """Automatic difficulty: train on ``levels[i]`` (traced env parameters, e.g. num_entities)
    and move to the next level once the training success of an update reaches ``threshold``.
    Evaluation always uses the target difficulty (``env.overrides``)."""

    levels: list[dict[str, Override]] = Field(default_factory=list)
    threshold: float = Field(0.8, ge=0, le=1)


@dataclass(config=STRICT)
class LoggingConfig:
    """Where metric rows go besides ``metrics.jsonl`` and ``metrics.csv`` (always written)."""

    tensorboard: bool = True  # event files in RUN_DIR/tensorboard
    wandb: bool = False  # Weights & Biases; needs the wandb package
    wandb_project: str = "agentic-jax"


DEFAULT_RL_UPDATES = 300


@dataclass(config=STRICT)
class StageConfig:
    """One stage of a multi-stage pipeline; each starts from the previous one's parameters
    with a fresh optimiser (an RL stage also takes them as its KL reference)."""

    name: str
    kind: Literal["sft", "rl"]
    updates: int = Field(gt=0)
    lr: float | None = Field(None, gt=0)  # default: sft.lr or algo.lr
    # Traced environment parameters for this stage only (effort_probs, tools_enabled, ...).
    env: dict[str, Override] = Field(default_factory=dict)
    oracle_mode: int | None = Field(None, ge=0)  # sft: the plan to imitate (default sft's)


@dataclass(config=STRICT)
class Config:
    env: EnvConfig = Field(default_factory=EnvConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    algo: AlgoConfig = Field(default_factory=AlgoConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig)
    updates: int = Field(DEFAULT_RL_UPDATES, ge=0)  # RL updates after the SFT stage
    # A multi-stage pipeline (sft / rl stages in order). Empty: the SFT stage (if
    # sft.updates > 0), then ``updates`` RL updates.
    stages: list[StageConfig] = Field(default_factory=list)
    eval_interval: int = Field(25, gt=0)  # updates between held-out evaluations (and log rows)
    eval_episodes: int = Field(256, gt=0)
    # Held-out episodes are greedy by default; true samples them at rollout.temperature (a
    # base's pass@1: greedy decoding of a model of a mixture returns its mode, often right).
    eval_sample: bool = False
    # Checkpoints are taken between chunks: every ``checkpoint_interval`` updates (a multiple
    # of eval_interval; 0 = after every chunk) and at the end of every stage.
    checkpoint_interval: int = Field(0, ge=0)
    keep_checkpoints: int = Field(3, gt=0)  # the newest K are kept
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    seed: int = 0
    # A run directory: start from its newest checkpoint's parameters (seed 0's) instead of a
    # fresh initialisation, e.g. a pretrained base. Same model.* and transcript length.
    init: str | None = None
    num_seeds: int = Field(1, gt=0)  # seeds run as one vmapped computation
    # Data parallelism: the batch axis (episodes, environments) is split over this many
    # devices, parameters replicated. 1 = one device; 0 = every device (every host's after
    # jax.distributed.initialize()).
    devices: int = Field(1, ge=0)
    tool_bonus: float = Field(0.0, ge=0)  # shaped reward for the first useful tool call


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "config"
        parts.append(f"{where}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(parts)


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _check_keys(raw: dict[str, Any], cls: type, prefix: str = "") -> None:
    """Unknown keys get the nearest valid name suggested."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in raw.items():
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean {prefix + near[0]!r}? " if near else ""
            raise ConfigError(
                f"unknown config key {prefix + str(key)!r}; {hint}valid keys: {', '.join(fields)}"
            )
        field_type = fields[key].type
        nested = field_type if isinstance(field_type, type) else globals().get(str(field_type))
        if nested is not None and dataclasses.is_dataclass(nested) and isinstance(value, dict):
            _check_keys(value, nested, f"{prefix}{key}.")


def from_dict(raw: dict[str, Any]) -> Config:
    """A validated ``Config`` from a plain dict (YAML contents)."""
    _check_keys(raw or {}, Config)
    try:
        config = TypeAdapter(Config).validate_python(raw or {})
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None
    check_combinations(config)
    return config


def pipeline(config: Config) -> list[StageConfig]:
    """The stages a config runs, in order, with every default filled in."""
    stages = config.stages or [
        *(
            [StageConfig(name="sft", kind="sft", updates=config.sft.updates)]
            if config.sft.updates
            else []
        ),
        *([StageConfig(name="rl", kind="rl", updates=config.updates)] if config.updates else []),
    ]
    return [
        dataclasses.replace(
            stage,
            lr=stage.lr or (config.sft.lr if stage.kind == "sft" else config.algo.lr),
            oracle_mode=config.sft.oracle_mode if stage.oracle_mode is None else stage.oracle_mode,
        )
        for stage in stages
    ]


def registered_algorithm(name: str) -> Algorithm:
    """The algorithm ``algo.name`` names; an unknown name gets the nearest and the valid ones."""
    if name in ALGORITHMS:
        return ALGORITHMS[name]
    near = difflib.get_close_matches(name, list(ALGORITHMS), n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    valid = ", ".join(ALGORITHMS)
    raise ConfigError(f"algo.name: unknown algorithm {name!r}; {hint}valid: {valid}")


def check_hyperparameters(config: Config, algorithm: Algorithm) -> None:
    """Only the chosen algorithm's hyperparameters may differ from their defaults; the KL
    penalty needs an estimator; stale rollouts need an algorithm that corrects for them."""
    algo, defaults = config.algo, AlgoConfig()
    for field in dataclasses.fields(AlgoConfig):
        value = getattr(algo, field.name)
        if field.name != "name" and not algorithm.declares(field.name):
            if value != getattr(defaults, field.name):
                own = ", ".join(f.name for f in dataclasses.fields(algorithm.hyperparams))
                raise ConfigError(
                    f"algo.{field.name}={value} is not a hyperparameter of {algo.name}; "
                    f"its hyperparameters: {own}"
                )
    if algo.kl_coef > 0 and algo.kl_estimator == "none":
        raise ConfigError(
            f"algo.kl_coef={algo.kl_coef} needs a KL estimator: set algo.kl_estimator to k1, "
            "k2 or k3 (agentic_jax.algos.kl)"
        )
    if config.rollout.staleness > 0 and not algorithm.declares("off_policy"):
        able = [name for name, a in ALGORITHMS.items() if a.declares("off_policy")]
        raise ConfigError(
            f"rollout.staleness > 0 needs an algorithm that corrects stale rollouts "
            f"(algo.off_policy: {', '.join(able)}); got {algo.name}"
        )


def check_combinations(config: Config) -> None:
    """Combinations that are each valid alone but impossible together."""
    algo, rollout = config.algo, config.rollout
    names = [stage.name for stage in config.stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"stages: names must be distinct, got {names}")
    if config.stages and (config.sft.updates or config.updates != DEFAULT_RL_UPDATES):
        raise ConfigError(
            "set either stages or sft.updates/updates, not both (stages replace them)"
        )
    if not any(stage.updates for stage in pipeline(config)):
        raise ConfigError(
            "nothing to train: every stage has 0 updates (updates and sft.updates, or each "
            "stage's updates); give at least one stage updates >= 1"
        )
    if config.curriculum.levels and any(stage.env for stage in config.stages):
        raise ConfigError("curriculum.levels cannot be combined with per-stage env overrides")
    algorithm = registered_algorithm(algo.name)
    check_hyperparameters(config, algorithm)
    if algorithm.grouped and rollout.batching != "episodes":
        raise ConfigError(
            f"algo.name={algo.name} needs rollout.batching=episodes (groups of one task)"
        )
    if algorithm.grouped and rollout.group_size < 2:
        raise ConfigError(f"algo.name={algo.name} needs rollout.group_size >= 2 to compare samples")
    if rollout.balance_modes and (rollout.batching != "episodes" or rollout.group_size < 2):
        raise ConfigError(
            "rollout.balance_modes=true splits each group between the two modes: it needs "
            f"rollout.batching=episodes and group_size >= 2 (got batching={rollout.batching}, "
            f"group_size={rollout.group_size})"
        )
    units = rollout.num_tasks if rollout.batching == "episodes" else rollout.num_envs
    if units % algo.num_minibatches:
        what = "rollout.num_tasks" if rollout.batching == "episodes" else "rollout.num_envs"
        raise ConfigError(f"algo.num_minibatches={algo.num_minibatches} must divide {what}={units}")
    if config.checkpoint_interval % config.eval_interval:
        raise ConfigError(
            f"checkpoint_interval={config.checkpoint_interval} must be a multiple of "
            f"eval_interval={config.eval_interval} (checkpoints are taken between chunks)"
        )
    levels = config.curriculum.levels
    if levels and any(set(level) != set(levels[0]) for level in levels):
        raise ConfigError("curriculum.levels must all set the same keys")
    if config.model.d_model % config.model.n_heads:
        raise ConfigError(
            f"model.n_heads={config.model.n_heads} must divide model.d_model={config.model.d_model}"
        )


def load(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        raw = read_yaml(path)
    return from_dict(apply_overrides(raw, overrides or []))


def to_dict(config: Config) -> dict[str, Any]:
    return TypeAdapter(Config).dump_python(config, mode="json")
