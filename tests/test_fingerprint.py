"""A fingerprint tells a code change from a machine change (``agentic_jax.experiments
.fingerprint``): the default experiment's quick version compiled for another instruction set
passes; the same experiment with its shipped config changed is stale."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from agentic_jax.experiments import fingerprint as fp
from agentic_jax.experiments import get
from agentic_jax.experiments import run as run_lib
from agentic_jax.experiments.reproduce import Paths, check_stale, fingerprint

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[1]

OTHER_ISA = """
import json, sys
from pathlib import Path
from rich.console import Console
from agentic_jax.experiments import get
from agentic_jax.experiments.reproduce import Paths, fingerprint
print(json.dumps(fingerprint(get("default"), Paths(Path(sys.argv[1])), Console(quiet=True))))
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("native")
    return fingerprint(get("default"), Paths(root), Console(quiet=True))


def test_another_instruction_set_is_a_machine_change_not_a_code_change(recorded, tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_cpu_max_isa=AVX2")
    done = subprocess.run([sys.executable, "-c", OTHER_ISA, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    other = json.loads(done.stdout.strip().splitlines()[-1])
    assert not fp.same_machine(other["machine"], recorded["machine"])
    found, tolerance = fp.compare(other, recorded)
    assert tolerance == fp.OTHER_MACHINE
    assert not found, found


def test_changing_a_shipped_config_marks_its_finding_stale(recorded, tmp_path, monkeypatch):
    """The default config with a learning rate 1% higher: the recorded finding is stale."""
    configs = tmp_path / "configs"
    configs.mkdir()
    raw = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    raw["algo"]["lr"] = raw["algo"]["lr"] * 1.01
    (configs / "default.yaml").write_text(yaml.safe_dump(raw))
    paths = Paths(tmp_path)
    paths.results.mkdir(parents=True)
    paths.result("default").write_text(json.dumps({"fingerprint": recorded}))
    assert check_stale(paths, ["default"]) == {}  # the shipped config: current
    monkeypatch.setattr(run_lib, "config_path", lambda name: configs / f"{name}.yaml")
    stale = check_stale(paths, ["default"])
    assert list(stale) == ["default"] and stale["default"], stale
