"""Shared by the benchmark scripts: the machine line and appending a section to RESULTS.md."""

from __future__ import annotations

import datetime
import platform
from importlib import metadata
from pathlib import Path

import jax

RESULTS = Path(__file__).with_name("RESULTS.md")


def environment_line() -> str:
    """Date, machine, device and versions, for the heading of a results section."""
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("jax", "flax", "optax", "gymnax")
    )
    device = jax.devices()[0]
    return (
        f"{datetime.date.today().isoformat()}, {platform.machine()} {platform.processor() or ''}"
        f" with {jax.local_device_count()} x {device.platform} ({device.device_kind}),"
        f" Python {platform.python_version()}, {versions}"
    )


def record(section: str, dry_run: bool = False) -> None:
    """Print a section and, unless ``dry_run``, append it to RESULTS.md at once."""
    print(section)
    if not dry_run:
        with RESULTS.open("a") as results:
            results.write("\n" + section)
