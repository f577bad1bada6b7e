"""One writer per run directory: a second ``train`` or ``--resume`` on a directory that a live
process is writing is refused with that process's id (both would write checkpoints and rows).

The writer's process id is kept in ``RUN_DIR/writer.pid`` while it runs; a file left by a
process that died (killed, out of memory) names no live process and is ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WRITER_FILE = "writer.pid"


def live_writer(run_dir: Path) -> int | None:
    """The id of another live process that is writing ``run_dir``, or None."""
    try:
        pid = int((run_dir / WRITER_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)  # signal 0: is it alive?
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        return pid
    return pid


def refuse_if_written(run_dir: Path) -> None:
    pid = live_writer(run_dir)
    if pid is not None:
        raise FileExistsError(
            f"{run_dir} is being written by a live process (pid {pid}): a run directory has "
            f"one writer. Wait for it, stop it (kill {pid}), or choose another --run-dir"
        )


@contextmanager
def sole_writer(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` as its writer for the block (refused while another process does)."""
    refuse_if_written(run_dir)
    path = run_dir / WRITER_FILE
    path.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        if path.is_file() and path.read_text().strip() == str(os.getpid()):
            path.unlink()
