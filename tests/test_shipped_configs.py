"""Every shipped config passes the full validation: it loads, and ``build`` makes its
environments, policy, optimiser and stages (what `agentic-jax train CONFIG` does before it
compiles anything)."""

import pytest

from agentic_jax.cli import CONFIG_DIR
from agentic_jax.train import config as config_lib
from agentic_jax.train.setup import build

pytestmark = pytest.mark.timeout(120)
SHIPPED = sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def test_configs_are_shipped():
    assert "default" in SHIPPED and len(SHIPPED) >= 30


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_builds(name):
    setup = build(config_lib.load(CONFIG_DIR / f"{name}.yaml"))
    assert setup.total_updates > 0
