"""Nothing changed but the shape: short runs of six shipped configs, a sweep and a resume after
a kill reproduce the rows recorded in ``tests/golden.json`` (see ``tests/golden_runs.py``).

The comparison is exact but for float rounding: ``rel=1e-5, abs=1e-8`` on every number. A
pure refactor keeps XLA's operations and so mostly its bits, but not always: the classic
actor's log-softmax (no legal mask, since every action is legal) fuses differently from the
masked one it replaced, and its loss diagnostics moved in the last float32 bit (entropy by
4e-8 relative; ``approx_kl``, a difference of nearly equal numbers, by 7e-10 absolute) while
its returns, gradient norms and value losses stayed identical. The tolerance is far below any
real change: one more update, another key or another loss moves these metrics by 1e-3 or
more.
"""

import json
import math

import pytest
from golden_runs import GOLDEN, RUNS, record_all

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def assert_same(ours, theirs, where: str) -> None:
    if isinstance(theirs, dict):
        # A metric added since recording is allowed; every recorded one must reproduce.
        assert set(theirs) <= set(ours), f"{where}: keys missing: {set(theirs) - set(ours)}"
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), f"{where}: {len(ours)} items, recorded {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float) and not isinstance(ours, str):
        both_nan = math.isnan(theirs) and ours is not None and math.isnan(ours)
        assert both_nan or ours == pytest.approx(theirs, rel=1e-5, abs=1e-8), (
            f"{where}: {ours!r}, recorded {theirs!r}"
        )
    else:
        assert ours == theirs, f"{where}: {ours!r}, recorded {theirs!r}"


def test_the_recorded_runs_are_reproduced():
    recorded = json.loads(GOLDEN.read_text())
    assert set(recorded) == {*RUNS, "sweep", "resumed"}
    assert_same(json.loads(json.dumps(record_all())), recorded, "golden")
