"""Run a script in a subprocess whose CPU shows as several devices.

``XLA_FLAGS=--xla_force_host_platform_device_count=N`` takes effect only before jax starts,
so tests that need N devices run their script in a fresh interpreter. The script prints
``REPORT`` followed by a JSON object; ``report_on_devices`` returns that object.
"""

import json
import os
import subprocess
import sys


def report_on_devices(script: str, devices: int, *args: str, timeout: int = 540) -> dict:
    env = os.environ | {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("REPORT", 1)[1])
