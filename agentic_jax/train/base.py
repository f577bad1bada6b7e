"""Starting a run from a saved run's parameters (config key ``init``): a base policy is
trained once, then many experiments start from it.

The parameters are read from the newest checkpoint of the base run without its config (any
config may start from them), seed 0's when it ran several, and checked against the shapes
the new run's model expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


def load_base_params(run_dir: str | Path, expected: Any) -> Any:
    """Seed 0's parameters of ``run_dir``'s newest checkpoint, shaped like ``expected`` (an
    abstract parameter tree); a one-line error for a missing run or other model shapes."""
    folder = (Path(run_dir) / CHECKPOINT_DIR).absolute()
    steps = ocp.CheckpointManager(folder).all_steps() if folder.is_dir() else []
    if not steps:
        raise FileNotFoundError(
            f"init={run_dir}: no checkpoint in {folder}; init names a run directory written "
            "by `agentic-jax train`"
        )
    with ocp.CheckpointManager(folder) as manager:
        restored = manager.restore(
            max(steps), args=ocp.args.Composite(state=ocp.args.StandardRestore())
        ).state["params"]
    saved = {jax.tree_util.keystr(p): np.asarray(x)[0] for p, x in _leaves(restored)}
    wanted = {jax.tree_util.keystr(p): x for p, x in _leaves(expected)}
    for path in sorted(set(saved) | set(wanted)):
        have = saved[path].shape if path in saved else "absent"
        want = wanted[path].shape if path in wanted else "absent"
        if have != want:
            raise ValueError(
                f"init={run_dir}: its model differs from this run's at {path} (saved {have}, "
                f"here {want}); init needs the same model.* keys and transcript length "
                "(env max_len)"
            )
    leaves = [saved[jax.tree_util.keystr(p)].astype(x.dtype) for p, x in _leaves(expected)]
    return jax.tree_util.tree_unflatten(jax.tree.structure(expected), leaves)


def _leaves(tree: Any) -> list:
    return jax.tree_util.tree_flatten_with_path(tree)[0]
