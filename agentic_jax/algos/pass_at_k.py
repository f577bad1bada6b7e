"""pass@k: the chance that at least one of k samples solves a task, estimated without bias
from n >= k samples of which c were correct (Chen et al. 2021, "Evaluating Large Language
Models Trained on Code")::

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)

(the product form avoids the huge binomials). Averaged over tasks. pass@1 is the plain
success rate; a base whose pass@k at large k is far above its pass@1 already does the task
with some probability, which RL can select.
"""

from __future__ import annotations

import numpy as np


def pass_at_k(num_samples: int, num_correct: np.ndarray, k: int) -> float:
    """Mean over tasks of the unbiased pass@k, from ``num_correct`` [tasks] correct samples out
    of ``num_samples`` per task."""
    num_correct = np.asarray(num_correct)
    if not 1 <= k <= num_samples:
        raise ValueError(f"pass@k needs 1 <= k <= samples per task ({num_samples}), got k={k}")
    if np.any((num_correct < 0) | (num_correct > num_samples)):
        raise ValueError(f"correct counts must lie in [0, {num_samples}]")
    per_task = []
    for c in num_correct.astype(int):
        if num_samples - c < k:
            per_task.append(1.0)  # every k-subset holds a correct sample
            continue
        i = np.arange(num_samples - c + 1, num_samples + 1)
        per_task.append(1.0 - float(np.prod(1.0 - k / i)))
    return float(np.mean(per_task))


def pass_at_ks(num_samples: int, num_correct: np.ndarray) -> dict[int, float]:
    """pass@k at k = 1, 2, 4, ... up to ``num_samples``."""
    ks = [2**p for p in range(int(np.log2(num_samples)) + 1)]
    return {k: pass_at_k(num_samples, num_correct, k) for k in ks}
