"""How much memory a run asks for, estimated from its shapes before anything compiles.

A config can ask for more than the machine has (``env.overrides.max_len=1000000`` wants
hundreds of gigabytes of KV cache); XLA would fail deep in a compile or an allocation with
a raw traceback. ``check_fits`` refuses such a run first, with the estimate, what it is made
of, and the memory the device has.

The estimate counts the large arrays of one update, per seed (seeds are vmapped, so they
multiply it): the rollout's KV cache and transcripts, the trajectory it hands the learner,
the learner's activations for one minibatch (kept for the backward pass: the attention
scores are quadratic in the transcript length, the logits linear in the vocabulary) and the
held-out evaluation's cache. It is an estimate of what XLA allocates, not a bound:
``tests/test_memory_estimate.py`` holds it near XLA's own count of a compiled update
(measured: 1.02 to 1.12 times it on the default, flakyapi, and the default with twice the
width, three times the transcript, or a quarter of the batch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax

FLOAT = 4  # bytes: float32 and int32 alike
TRAJECTORY_FIELDS = 10  # [N, L] arrays of a Trajectory besides the legal mask (rollout.py)
TRANSCRIPT_FIELDS = 4  # [N, L] arrays of a harness state (transcript, written-by, ...)
BACKWARD = 2  # the backward pass holds about as much again as the forward's activations


@dataclass(frozen=True)
class Shapes:
    """What sizes the run's large arrays."""

    rows: int  # rollout slots (episodes batching: tasks x group size; stream: environments)
    transcript: int  # max_len, the positions of a transcript
    vocab: int
    d_model: int
    n_layers: int
    n_heads: int
    mlp_ratio: int
    minibatches: int
    eval_rows: int
    seeds: int


@dataclass(frozen=True)
class MemoryEstimate:
    parts: dict[str, int]  # bytes, by what holds them (per seed)
    seeds: int

    @property
    def total(self) -> int:
        return self.seeds * sum(self.parts.values())

    def describe(self) -> str:
        parts = ", ".join(f"{name} {gigabytes(size)}" for name, size in self.parts.items())
        return f"about {gigabytes(self.total)} ({self.seeds} seed(s) x [{parts}])"


def gigabytes(size: float) -> str:
    """A size in GiB (or MiB below one GiB)."""
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def decoding(rows: int, s: Shapes) -> int:
    """A rollout's KV cache and its environments' transcripts, for ``rows`` slots."""
    cache = rows * s.n_layers * 2 * s.transcript * s.d_model * FLOAT
    return cache + rows * s.transcript * TRANSCRIPT_FIELDS * FLOAT


def learner(s: Shapes) -> int:
    """One minibatch's forward activations over whole transcripts, and their backward."""
    rows = max(s.rows // s.minibatches, 1)
    tokens = rows * s.transcript
    per_layer = tokens * s.d_model * (6 + 2 * s.mlp_ratio) * FLOAT
    attention = rows * s.n_heads * s.transcript * s.transcript * FLOAT * 2  # scores, weights
    logits = tokens * s.vocab * FLOAT * 3  # logits, log-softmax, its gradient
    return BACKWARD * (s.n_layers * (per_layer + attention) + logits)


def estimate(s: Shapes) -> MemoryEstimate:
    trajectory = s.rows * s.transcript * (TRAJECTORY_FIELDS * FLOAT + s.vocab)
    parts = {
        "rollout (KV cache, transcripts)": decoding(s.rows, s),
        "trajectory": trajectory,
        "update (activations)": learner(s),
        "evaluation": decoding(s.eval_rows, s),
    }
    return MemoryEstimate(parts, s.seeds)


def device_memory(device: jax.Device) -> int | None:
    """Bytes the device can hold: an accelerator's limit, or the host's available memory
    for a CPU (None when unknown)."""
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(s: Shapes, devices: int = 1, device: jax.Device | None = None) -> MemoryEstimate:
    """Refuse, with the estimate and the device's memory, a run that cannot fit; ``devices``
    share the batch (data parallelism)."""
    found = estimate(s)
    device = device or jax.devices()[0]
    available = device_memory(device)
    per_device = found.total / max(devices, 1)
    if available is not None and per_device > available:
        raise ValueError(
            f"this run needs {found.describe()} of memory, more than the "
            f"{gigabytes(available)} the {device.platform} device has"
            f"{f' (each of {devices})' if devices > 1 else ''}; make it smaller: "
            "env.overrides.max_len, rollout.num_tasks / group_size / num_envs, "
            "algo.num_minibatches (more), num_seeds, eval_episodes or the model"
        )
    return found
