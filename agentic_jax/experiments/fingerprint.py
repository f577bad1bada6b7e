"""Code fingerprints: the logged rows of a seconds-long run, and how to compare two of them.

A fingerprint is every learning metric of a shrunk run (``--quick``: two updates per stage on
a small batch) of each config an experiment uses. Today's code gives the same rows as the code
that produced a result, or the result is stale.

Rows must tell a code change from a machine change. Compiled XLA code differs between CPUs
(vector width, fused reductions) and package versions, so the same code on another machine
moves the last float digits, and RL sampling amplifies them over updates. So a fingerprint
carries the machine it was taken on, and the comparison is like with like:

- same machine (CPU model and instruction sets, versions, ``XLA_FLAGS``): ``SAME_MACHINE``,
  float rounding only;
- another machine: ``OTHER_MACHINE``. How it was chosen, on the default experiment's quick
  version (measured; ``tests/test_fingerprint.py`` repeats the first and the last): compiled
  for another instruction set (``XLA_FLAGS=--xla_cpu_max_isa=AVX2`` or ``SSE4_2`` on an
  AVX-512 machine) its rows move by at most 1.5e-7 relative; another CPU with the same package
  versions moved a golden row by 2.6e-5; the smallest real change tried, the learning rate up
  by 1%, moves them by 1.5e-2 (up by 10%: by 1.09). So rel 1e-3: 40x the largest machine
  difference seen, 15x under the smallest real change.
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from importlib import metadata

TIMING = ("wall_s", "tokens_per_s", "compile_s")  # differ from run to run
PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "gymnax", "numpy")
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "fma", "sse4_2", "neon", "asimd")


@dataclass(frozen=True)
class Tolerance:
    rel: float
    abs: float


SAME_MACHINE = Tolerance(rel=1e-5, abs=1e-8)
OTHER_MACHINE = Tolerance(rel=1e-3, abs=1e-6)


def cpu() -> tuple[str, list[str]]:
    """The CPU's model name and the instruction sets among ``ISA_FLAGS`` it has."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return model, sorted(flags & set(ISA_FLAGS))


def machine() -> dict:
    """What a fingerprint's floats depend on besides the code."""
    import jax

    model, isa = cpu()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    device = jax.devices()[0]
    return {
        "cpu": model,
        "isa": isa,
        "cores": os.cpu_count(),
        "device": f"{jax.local_device_count()} x {device.platform} ({device.device_kind})",
        "python": platform.python_version(),
        "versions": versions,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def same_machine(a: dict, b: dict) -> bool:
    keys = ("cpu", "isa", "device", "versions", "xla_flags")
    return all(a.get(key) == b.get(key) for key in keys)


def learning_rows(rows: list[dict]) -> list[dict]:
    """Logged rows without their timings (which differ from run to run)."""
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def differences(ours, theirs, tolerance: Tolerance, where: str = "") -> list[str]:
    """Where ``ours`` differs from the recorded ``theirs`` beyond ``tolerance`` (numbers) or at
    all (anything else). A metric logged now but not then is no difference."""
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{where}: {ours!r}, recorded a mapping"]
        missing = [f"{where}.{key}: missing" for key in theirs if key not in ours]
        return missing + [
            line
            for key in theirs
            if key in ours
            for line in differences(ours[key], theirs[key], tolerance, f"{where}.{key}")
        ]
    if isinstance(theirs, list):
        if not isinstance(ours, list) or len(ours) != len(theirs):
            return [
                f"{where}: {len(ours) if isinstance(ours, list) else ours!r} items, "
                f"recorded {len(theirs)}"
            ]
        return [
            line
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for line in differences(a, b, tolerance, f"{where}[{i}]")
        ]
    if isinstance(theirs, float) and isinstance(ours, int | float):
        if math.isnan(theirs) and math.isnan(ours):
            return []
        if math.isclose(ours, theirs, rel_tol=tolerance.rel, abs_tol=tolerance.abs):
            return []
        return [f"{where}: {ours!r}, recorded {theirs!r}"]
    return [] if ours == theirs else [f"{where}: {ours!r}, recorded {theirs!r}"]


def compare(ours: dict, recorded: dict) -> tuple[list[str], Tolerance]:
    """A fingerprint (``{"machine": ..., "arms": {arm: rows}}``) against a recorded one: the
    differences, at the tolerance the two machines call for."""
    tolerance = (
        SAME_MACHINE if same_machine(ours["machine"], recorded["machine"]) else (OTHER_MACHINE)
    )
    return differences(ours["arms"], recorded["arms"], tolerance, "arms"), tolerance
