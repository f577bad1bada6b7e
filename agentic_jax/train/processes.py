"""Several processes (``jax.distributed.initialize``): which one writes, and a barrier.

Every process of a multi-process run runs the same loop on the same run directory; the
primary (process 0) alone writes its logs, config and progress, and orbax writes the
checkpoints with every process taking part. With one process both are no-ops.
"""

from __future__ import annotations

import jax
from jax.experimental import multihost_utils


def is_primary() -> bool:
    """Whether this process writes the run directory's logs (process 0)."""
    return jax.process_index() == 0


def wait_for_every_process(name: str) -> None:
    """Block until every process reached the barrier ``name`` (nothing with one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def start_processes(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join a run of ``num_processes`` processes (``jax.distributed.initialize``), this one
    ``process_id``, process 0 serving at ``coordinator`` (``HOST:PORT``). On CPUs the
    collectives go over gloo. Call before anything touches a device."""
    if not 0 <= process_id < num_processes:
        raise ValueError(
            f"--process-id {process_id} must be in [0, {num_processes}) for --processes "
            f"{num_processes}"
        )
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
