"""Settings the tests share: a tiny model and batch that compile and train in seconds."""

from agentic_jax.train import config as config_lib

TINY = [
    "env.overrides.max_len=28",
    "model.d_model=32",
    "model.n_layers=1",
    "rollout.num_tasks=8",
    "rollout.group_size=4",
    "eval_episodes=32",
    "eval_interval=2",
]


def tiny(*overrides) -> config_lib.Config:
    """The default config shrunk by ``TINY``, then ``overrides``."""
    return config_lib.load(None, TINY + list(overrides))
