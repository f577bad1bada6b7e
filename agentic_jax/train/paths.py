"""Where commands write, checked before any work: a folder or file that cannot be written, a
run directory that is a file, or a disk too full for the checkpoints is a one-line error that
names the path and what to do (an ``OutputPathError``, a ``ValueError``)."""

from __future__ import annotations

import errno
import os
import shutil
from importlib import resources
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be written: one line naming it and what to do."""


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path, option: str, path: Path) -> None:
    """Write and remove a small file in ``folder``, which exists: the only test that holds for
    root, read-only mounts and full disks alike."""
    probe = folder / f".agentic-jax-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"0" * 1024)
        probe.unlink()
    except OSError as error:
        raise OutputPathError(_describe(error, option, path)) from None


def _describe(error: OSError, option: str, path: Path) -> str:
    if error.errno == errno.ENOSPC:
        return f"{option} {path}: no space left on the device; free some or write elsewhere"
    reason = error.strerror or str(error)
    return f"{option} {path}: cannot write there ({reason}); choose another {option}"


def _make_folder(folder: Path, option: str, named: Path) -> None:
    """Create ``folder`` (and its parents) and check it can be written; errors name ``named``."""
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(
            f"{option} {named}: {folder} is a file, not a folder; choose another {option}"
        )
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise OutputPathError(
            f"{option} {named}: {existing} is a file, not a folder; choose another {option}"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputPathError(_describe(error, option, named)) from None
    _probe(folder, option, named)


def writable_dir(path: str | Path, option: str) -> Path:
    """``path`` as a folder that exists and can be written (created if missing)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{option} {path} is a file, not a folder; choose another {option}")
    _make_folder(path, option, path)
    return path


def writable_file(path: str | Path, option: str) -> Path:
    """``path`` as a file that can be written (its folder created if missing); nothing is
    written to ``path`` itself."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a folder; give a file name")
    _make_folder(path.absolute().parent, option, path)
    return path


def check_free_space(folder: Path, needed_bytes: int, what: str) -> None:
    """Refuse to start when ``folder``'s disk has less than ``needed_bytes`` free."""
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise OutputPathError(
            f"{folder}: {free / 2**20:,.0f} MiB free on its disk, but {what} need about "
            f"{needed_bytes / 2**20:,.0f} MiB; free some space or choose another --run-dir"
        )


def shipped_configs() -> Path:
    """The shipped configs: package data in an installed wheel, ``configs/`` in a checkout."""
    packaged = Path(str(resources.files("agentic_jax"))) / "configs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "configs"


CONFIG_DIR = shipped_configs()
DEFAULT_CONFIG = "default"


def resolve_config(name: str | None) -> Path:
    """A config path, or a name in ``configs/`` (``kblookup_ppo`` -> configs/kblookup_ppo.yaml)."""
    name = name or DEFAULT_CONFIG
    path = Path(name)
    if path.is_file():
        return path
    candidate = CONFIG_DIR / f"{name.removesuffix('.yaml')}.yaml"
    if candidate.is_file():
        return candidate
    available = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))) or "none found"
    raise SystemExit(f"error: config {name!r} not found; configs in {CONFIG_DIR}: {available}")
