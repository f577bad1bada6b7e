"""The docs' code runs: the environment guide's whole environment is built, its oracle solves
every task and its splits are what ``split_of`` says."""

import re
from pathlib import Path

import jax
import numpy as np
import pytest

pytestmark = pytest.mark.timeout(300)
DOCS = Path(__file__).resolve().parents[1] / "docs"


def python_blocks(page: str) -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S))


def test_the_environment_guide_runs_and_its_oracle_solves_every_task(capsys):
    namespace: dict = {}
    exec(compile(python_blocks("extending.md"), "docs/extending.md", "exec"), namespace)
    assert "oracle: return 1.00, solved 1.00" in capsys.readouterr().out
    np.testing.assert_array_equal(namespace["solved"], 1)
    family, params = namespace["Secret"](), namespace["params"]
    keys = jax.random.split(jax.random.PRNGKey(3), 64)
    for split in (0, 1):
        tasks = jax.vmap(family.sample, in_axes=(0, None, None, None))(keys, params.task, split, 0)
        np.testing.assert_array_equal(jax.vmap(family.split_of)(tasks.world), split)


def test_the_reference_tables_are_what_the_code_declares(tmp_path):
    """The docs' generated tables (hyperparameters, ...) equal what the declarations render:
    ``python -m agentic_jax.reference_tables`` rewrites them."""
    from agentic_jax import reference_tables

    for page in reference_tables.TABLES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text((DOCS.parent / page).read_text())
    assert reference_tables.render(tmp_path) == [], "run python -m agentic_jax.reference_tables"


def test_the_interop_pages_gymnasium_and_gymnax_snippets_run(capsys):
    """The interop page's text-environment route solves its task; its gymnax route builds."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "interop.md").read_text(), re.S)
    routes = [block for block in blocks if "text_env" in block or "gymnax.make" in block]
    assert len(routes) == 2
    for block in routes:
        exec(compile(block, "docs/interop.md", "exec"), {})
    assert "-> 1.0 True" in capsys.readouterr().out
