"""The persistent compilation cache's switch: a folder, the default one, or off."""

from pathlib import Path

import jax
import pytest

from agentic_jax.compile_cache import CACHE_VARIABLE, cache_dir, enable_compile_cache

pytestmark = pytest.mark.timeout(60)


def test_the_variable_sets_the_folder_or_turns_it_off():
    assert cache_dir({CACHE_VARIABLE: "/tmp/xla"}) == Path("/tmp/xla")
    assert cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/agentic-jax/xla")
    assert cache_dir({}) == Path.home() / ".cache" / "agentic-jax" / "xla"
    for off in ("off", "0", "False", " no "):
        assert cache_dir({CACHE_VARIABLE: off}) is None


def test_enabling_points_jax_at_the_folder(tmp_path):
    before = jax.config.jax_compilation_cache_dir
    try:
        assert enable_compile_cache({CACHE_VARIABLE: "off"}) is None
        assert jax.config.jax_compilation_cache_dir == before
        assert enable_compile_cache({CACHE_VARIABLE: str(tmp_path)}) == tmp_path
        assert jax.config.jax_compilation_cache_dir == str(tmp_path)
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
