"""Nothing changed but the shape: short runs of six shipped configs, a sweep and a resume after
a kill reproduce the rows recorded in ``tests/golden.json`` (see ``tests/golden_runs.py``).

The file records the machine with the rows, and the comparison is like with like
(``agentic_jax.experiments.fingerprint``): on the machine and package versions that recorded
them (CI's kind, installed from ``tests/constraints.txt``) float rounding only (rel 1e-5); on
another CPU or package set the wider tolerance that another instruction set's differences pass
over these few updates, and that a real change (another learning rate, a flipped sign, a new
initialisation) still exceeds (``tests/test_fingerprint.py`` measures both).
"""

import json

import pytest
from golden_runs import GOLDEN, RUNS, record_all

from agentic_jax.experiments import fingerprint as fp

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_the_recorded_runs_are_reproduced():
    recorded = json.loads(GOLDEN.read_text())
    assert set(recorded["runs"]) == {*RUNS, "sweep", "resumed"}
    ours = {"machine": fp.machine(), "arms": json.loads(json.dumps(record_all()))}
    found, tolerance = fp.compare(ours, {"machine": recorded["machine"], "arms": recorded["runs"]})
    assert not found, f"golden rows moved (tolerance rel {tolerance.rel}): " + "; ".join(found[:10])
