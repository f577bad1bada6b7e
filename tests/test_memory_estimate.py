"""A run's memory is estimated from its shapes before anything compiles: a config too big for
the machine is refused with the estimate; the estimate is near what XLA allocates."""

import dataclasses

import pytest
from conftest import tiny

from agentic_jax.train import memory
from agentic_jax.train.loop import CompiledChunks, initial_state
from agentic_jax.train.setup import build, memory_shapes, seed_keys

pytestmark = pytest.mark.timeout(300)


def test_a_run_too_big_for_the_machine_is_refused_with_the_estimate():
    with pytest.raises(ValueError, match=r"needs about [\d.]+ GiB .*KV cache.*max_len"):
        build(tiny("env.overrides.max_len=1000000"))


def test_seeds_and_rows_scale_the_estimate():
    shapes = memory_shapes(tiny(), build(tiny()).actor)
    one = memory.estimate(dataclasses.replace(shapes, seeds=1)).total
    assert memory.estimate(dataclasses.replace(shapes, seeds=4)).total == 4 * one
    longer = memory.estimate(dataclasses.replace(shapes, seeds=1, transcript=4 * shapes.transcript))
    assert (
        longer.parts["update (activations)"]
        > 4 * memory.estimate(shapes).parts["update (activations)"] / shapes.seeds
    )  # attention is quadratic in the transcript


def test_the_estimate_is_near_what_xla_allocates_for_an_update():
    """XLA's own count of a compiled RL update (arguments, outputs and temporaries) against
    the estimate: within a factor of 1.5 either way."""
    config = tiny("num_seeds=2", "updates=1")
    setup = build(config)
    state = initial_state(setup, seed_keys(config))
    analysis = CompiledChunks(setup).chunk(1, 0, state).memory_analysis()
    allocated = sum(
        getattr(analysis, name)
        for name in ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes")
    )
    estimated = memory.estimate(memory_shapes(config, setup.actor)).total
    assert 1 / 1.5 < estimated / allocated < 1.5, (estimated, allocated)
