"""What a finding is, declared: an ``Experiment`` of ``Arm``s, ``Measure``s and an ``Effect``.

An experiment answers one question with one shipped config: each arm is that config with a few
overrides, trained with ``seeds`` vmapped seeds; each measure reads one logged metric at the
end of a stage (``at="pretrain"``: the base) or of the run (``at="final"``); the effect is the
per-seed test that says whether a seed shows what the finding claims, so a result reports the
share of seeds that show it, not only a mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Arm:
    """One setting of the experiment: a label and the config overrides that make it."""

    name: str
    overrides: tuple[str, ...] = ()
    keep_stages: tuple[int, ...] = ()  # run only these of the config's stages (empty: all)


@dataclass(frozen=True)
class Measure:
    """A logged evaluation metric read at the end of stage ``at`` (per seed)."""

    metric: str  # a logged key, e.g. "eval/success"
    at: str = "final"  # a stage's name ("pretrain": the base), or "final": the run's last row
    label: str = ""

    @property
    def key(self) -> str:
        return f"{self.metric}@{self.at}"

    @property
    def title(self) -> str:
        return self.label or self.key


# The per-seed values of one arm, by ``Measure.key``; an effect reads them (and the other arms').
SeedValues = dict[str, float]
EffectTest = Callable[[str, dict[str, SeedValues]], bool]  # (arm, every arm's values) -> shows


@dataclass(frozen=True)
class Effect:
    """What the finding claims, tested seed by seed: ``test(arm, values_by_arm)``."""

    claim: str
    test: EffectTest
    arms: tuple[str, ...] = ()  # the arms it is tested on (empty: every arm)


@dataclass(frozen=True)
class Experiment:
    """One finding: a question, its literature anchor, a config, its arms, what it measures."""

    name: str
    question: str
    anchor: str  # the literature result it is compared with (paper, figure, number)
    config: str  # a shipped config's name
    arms: tuple[Arm, ...]
    measures: tuple[Measure, ...]
    effect: Effect
    stage: str  # the training stage that produced the effect: pretrain, SFT or RL
    cpu_minutes: float  # expected minutes for the full run at ``seeds`` on a 2-core CPU
    seeds: int = 8
    plot_metrics: tuple[str, ...] = ("eval/success",)
    notes: str = ""  # how many settings were tried before this one, and other caveats
    headline: Measure | None = None  # the README's measure (default: the last of measures)
    quick_overrides: tuple[str, ...] = field(default=())  # extra shrinking for --quick

    def __post_init__(self) -> None:
        names = [arm.name for arm in self.arms]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name}: arms must be named uniquely: {names}")
        unknown = set(self.effect.arms) - set(names)
        if unknown:
            raise ValueError(f"experiment {self.name}: effect names unknown arms {unknown}")
        if self.seeds < 1:
            raise ValueError(f"experiment {self.name}: seeds must be >= 1 (got {self.seeds})")
