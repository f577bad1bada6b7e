"""The README documents what the code declares: every logged statistic and every key that
may change on resume (both lists live in one place in the code)."""

import re
from pathlib import Path

import pytest

from agentic_jax.stats import STATS
from agentic_jax.train.checkpoint import RESUMABLE_KEYS

pytestmark = pytest.mark.timeout(60)

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_statistic_is_explained():
    rows = dict(re.findall(r"^\| `(\w+)` \| per (?:episode|rollout) \| (.+) \|$", README, re.M))
    # The README quotes tokens as code (`<think>`), which markdown would otherwise hide.
    assert {stat.name: stat.description for stat in STATS} == {
        name: text.replace("`", "") for name, text in rows.items()
    }


def test_every_resumable_key_is_listed():
    paragraph = README[README.index("**Resume**") : README.index("**NaN guard**")]
    assert all(f"`{key}`" in paragraph for key in RESUMABLE_KEYS)
