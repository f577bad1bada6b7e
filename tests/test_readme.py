"""The docs document what the code declares: every logged statistic and every key that may
change on resume (both lists live in one place in the code); the README stays short."""

import re
from pathlib import Path

import pytest

from agentic_jax.stats import STATS
from agentic_jax.train.checkpoint import RESUMABLE_KEYS

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
CONFIGS_PAGE = (REPO / "docs" / "configs.md").read_text()
RUNS_PAGE = (REPO / "docs" / "runs.md").read_text()


def test_every_statistic_is_explained():
    rows = dict(
        re.findall(r"^\| `(\w+)` \| per (?:episode|rollout) \| (.+) \|$", CONFIGS_PAGE, re.M)
    )
    # The README quotes tokens as code (`<think>`), which markdown would otherwise hide.
    assert {stat.name: stat.description for stat in STATS} == {
        name: text.replace("`", "") for name, text in rows.items()
    }


def test_every_resumable_key_is_listed():
    paragraph = RUNS_PAGE[RUNS_PAGE.index("**Resume**") : RUNS_PAGE.index("**NaN guard**")]
    assert all(f"`{key}`" in paragraph for key in RESUMABLE_KEYS)


def test_readme_is_short_and_speaks_to_users():
    assert len(README.splitlines()) <= 300
    for history in ("issue ", "old streams", "new streams"):
        assert history not in README.lower(), history
