"""The vocabulary has room: reserved ids are never legal, and adding a word moves no run."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.envs import REGISTRY, make

REPO = Path(__file__).resolve().parents[1]


def test_capacity_and_reserved_ids():
    assert tk.VOCAB_SIZE == 128 and len(tk.VOCAB) == tk.VOCAB_SIZE
    assert len(tk.WORDS) < tk.VOCAB_SIZE
    assert not tk.CONTENT_MASK[len(tk.WORDS) :].any()
    assert tk.decode([len(tk.WORDS)]) == f"<reserved{len(tk.WORDS)}>"
    with pytest.raises(ValueError, match="unknown token '<reserved"):
        tk.token_id(f"<reserved{len(tk.WORDS)}>")


@pytest.mark.parametrize("env_id", [e for e in REGISTRY if e.endswith("-v0")])
def test_reserved_ids_are_never_legal(env_id):
    """Along oracle episodes (and at every reset) no reserved id is ever a legal token."""
    env, params = make(env_id)
    keys = jax.random.split(jax.random.PRNGKey(0), 16)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    def step(carry, key):
        obs, state = carry
        action = jax.vmap(env.oracle_action)(state)
        obs, state, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key, 16), state, action, params
        )
        return (obs, state), obs.legal_mask

    _, masks = jax.lax.scan(step, (obs, state), jax.random.split(jax.random.PRNGKey(1), 40))
    assert not np.asarray(masks)[..., len(tk.WORDS) :].any()
    assert not np.asarray(obs.legal_mask)[..., len(tk.WORDS) :].any()


ADD_A_WORD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from agentic_jax import tokens
assert tokens.token_id("zebra") == len(tokens.WORDS) - 1, "the word did not take a reserved id"
import golden_runs, tempfile
from pathlib import Path
with tempfile.TemporaryDirectory() as folder:
    print(json.dumps(golden_runs.record_run(sys.argv[2], Path(folder))))
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("run", ["kblookup_sft_rl", "qwen3_pipeline"])
def test_adding_a_word_leaves_the_golden_rows_unchanged(tmp_path, run):
    """A copy of the package with one more word (``ADDED_WORDS``) reproduces the golden rows of
    a run with thinking (qwen3_pipeline) and one without."""
    from agentic_jax.experiments import fingerprint as fp

    shutil.copytree(REPO / "agentic_jax", tmp_path / "agentic_jax",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(REPO / "envs", tmp_path / "agentic_jax" / "envs",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    (tmp_path / "tests").mkdir()
    shutil.copy(REPO / "tests" / "golden_runs.py", tmp_path / "tests")
    tokens = tmp_path / "agentic_jax" / "tokens.py"
    source = tokens.read_text()
    assert "ADDED_WORDS: tuple[str, ...] = ()" in source
    tokens.write_text(source.replace("ADDED_WORDS: tuple[str, ...] = ()",
                                     'ADDED_WORDS: tuple[str, ...] = ("zebra",)'))  # fmt: skip
    (tmp_path / "tests" / "add_a_word.py").write_text(ADD_A_WORD)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "tests" / "add_a_word.py"), str(tmp_path), run],
        capture_output=True, text=True, timeout=850, cwd=tmp_path / "tests",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ours = json.loads(done.stdout.strip().splitlines()[-1])
    golden = json.loads((REPO / "tests" / "golden.json").read_text())
    found, _ = fp.compare(
        {"machine": fp.machine(), "arms": {run: ours}},
        {"machine": golden["machine"], "arms": {run: golden["runs"][run]}},
    )
    assert not found, "; ".join(found[:10])
