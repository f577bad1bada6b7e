"""The think/no-think findings: does GRPO keep both modes where each pays, and what keeps
them (part of ``agentic_jax.experiments.findings.FINDINGS``)."""

from __future__ import annotations

from agentic_jax.experiments.measures import SUCCESS
from agentic_jax.experiments.spec import Arm, Effect, Experiment, Measure

SHORT_EFFORT = Measure("eval_short/effort", "final", "effort on 1-2 digit rows")
LONG_EFFORT = Measure("eval_long/effort", "final", "effort on 5-8 digit rows")


def keeps_both_modes(gap: float) -> Effect:
    """The policy thinks on long rows and answers short ones directly: the mean effort level
    (0 none, 3 thinking) on long rows at least ``gap`` above that on short rows."""

    def test(arm: str, values: dict) -> bool:
        return values[arm][LONG_EFFORT.key] - values[arm][SHORT_EFFORT.key] >= gap

    return Effect(f"both modes kept: effort on long rows >= {gap} levels above short rows", test)


THINK_MODE_OVERTHINK = Experiment(
    name="think_mode_overthink",
    question="From a base that thinks in 90% of episodes, does GRPO keep answering short rows "
    "directly, or collapse to thinking everywhere; and does an entropy floor on the mode "
    "decision keep both modes?",
    anchor="Thinkless (Fang et al. 2025) and AdaptThink (Zhang et al. 2025): plain GRPO "
    "collapses the think/no-think decision to one mode; a decoupled decision keeps both",
    config="think_mode_overthink",
    arms=(
        Arm("plain GRPO", ("algo.mode_decision=joint",)),
        Arm(
            "entropy floor on the decision",
            ("algo.entropy_tokens=decision", "algo.entropy_coef=1.0", "algo.entropy_floor=0.5"),
        ),
        Arm(
            "advantage per mode, decision floor",
            (
                "algo.mode_advantage=per_mode",
                "algo.entropy_tokens=decision",
                "algo.entropy_coef=1.0",
                "algo.entropy_floor=0.5",
            ),
        ),
    ),
    measures=(SHORT_EFFORT, LONG_EFFORT, SUCCESS),
    effect=keeps_both_modes(1.0),
    stage="RL",
    cpu_minutes=25.0,
    plot_metrics=("eval_short/effort", "eval_long/effort", "eval/success"),
)


THINK_MODE_ARMS = (
    Arm("plain GRPO", ("algo.mode_decision=joint",)),
    Arm("decision apart", ("algo.mode_decision=apart",)),
)

THINK_MODE = Experiment(
    name="think_mode",
    question="From a base that picks thinking or answering at random, does plain GRPO keep "
    "both modes where each pays (thinking on long rows, answering short ones at once), and "
    "does a loss term of its own for the mode decision (Thinkless's decoupled GRPO) keep both?",
    anchor="Thinkless (Fang et al. 2025): plain GRPO collapses the think/no-think decision; "
    "decoupled GRPO keeps both modes",
    config="think_mode",
    arms=THINK_MODE_ARMS,
    measures=(SHORT_EFFORT, LONG_EFFORT, SUCCESS),
    effect=keeps_both_modes(1.0),
    stage="RL",
    cpu_minutes=25.0,
    plot_metrics=("eval_short/effort", "eval_long/effort", "eval/success"),
)

THINK_MODE_EARLY = Experiment(
    name="think_mode_early",
    question="When RL first trains on short rows only (where answering at once pays) and then "
    "on every length, does the policy unlearn thinking before the long rows need it, and "
    "does a decoupled mode decision keep it?",
    anchor="Thinkless (Fang et al. 2025); the curriculum order of Qwen3's thinking-mode fusion",
    config="think_mode_early",
    arms=THINK_MODE_ARMS,
    measures=(SHORT_EFFORT, LONG_EFFORT, SUCCESS),
    effect=keeps_both_modes(1.0),
    stage="RL (two stages: short rows, then every length)",
    cpu_minutes=30.0,
    plot_metrics=("eval_short/effort", "eval_long/effort", "eval/success"),
)
