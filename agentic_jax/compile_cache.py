"""JAX's persistent compilation cache, on by default for the command line.

A run's chunks compile in tens of seconds on a CPU; with the cache, a second run of the same
config (same shapes, same JAX) loads them from disk and starts training in a few seconds.
``AGENTIC_JAX_COMPILE_CACHE`` sets the folder (default ``$XDG_CACHE_HOME/agentic-jax/xla``,
else ``~/.cache/agentic-jax/xla``); ``off`` (or ``0``, ``false``, ``no``) turns it off.
Library use (``make_train``, ``loop.train``) leaves JAX's settings alone: call
``enable_compile_cache()`` to opt in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CACHE_VARIABLE = "AGENTIC_JAX_COMPILE_CACHE"
OFF = ("off", "0", "false", "no")


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The cache folder the environment asks for, or None when it turns the cache off."""
    setting = environ.get(CACHE_VARIABLE, "").strip()
    if setting.lower() in OFF:
        return None
    if setting:
        return Path(setting).expanduser()
    base = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "agentic-jax" / "xla"


def enable_compile_cache(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Point JAX's persistent cache at ``cache_dir(environ)`` (every compile of a second or
    more is kept); returns the folder, or None when turned off."""
    folder = cache_dir(environ)
    if folder is None:
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
