"""Metric rows of a run, written to every sink at once.

- ``metrics.jsonl``: one JSON object per row, appended and flushed as each row arrives;
- ``metrics.csv``: the same rows as a table (one column per metric seen so far), rewritten
  atomically on every row so that a killed run leaves a complete file;
- TensorBoard event files in ``tensorboard/`` (``logging.tensorboard``, through tensorboardX);
- Weights & Biases (``logging.wandb``), when the ``wandb`` package is installed.

On resume the log starts from the rows kept up to the checkpoint: both files are rewritten
with them and TensorBoard events after it are purged.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
from pathlib import Path

from agentic_jax.train.config import Config, to_dict
from agentic_jax.train.processes import is_primary

METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"


def read_rows(run_dir: Path) -> list[dict]:
    """The rows of ``metrics.jsonl`` (a line cut off by a kill is dropped)."""
    path = run_dir / METRICS_JSONL
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def csv_text(rows: list[dict]) -> str:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: json.dumps(v) if isinstance(v, list) else ("" if v is None else v)
                for k, v in row.items()
            }
        )
    return out.getvalue()


class MetricsLog:
    """Append-only sinks for the rows of one run directory. In a multi-process run only the
    primary process writes them; the others keep the rows in memory."""

    def __init__(self, run_dir: Path, config: Config, kept_rows: list[dict] | None = None):
        self.run_dir = run_dir
        self.rows = list(kept_rows or [])
        self.writes = is_primary()
        self._jsonl = self._tensorboard = self._wandb = None
        if self.writes:
            self._open(config)

    def _open(self, config: Config) -> None:
        run_dir = self.run_dir
        if config.logging.wandb and importlib.util.find_spec("wandb") is None:
            raise ValueError(
                "logging.wandb=true needs the wandb package: `pip install wandb`, "
                "or set logging.wandb=false"
            )
        _write_atomically(run_dir / METRICS_JSONL, "".join(json.dumps(r) + "\n" for r in self.rows))
        _write_atomically(run_dir / METRICS_CSV, csv_text(self.rows))
        self._jsonl = (run_dir / METRICS_JSONL).open("a")
        if config.logging.tensorboard:
            from tensorboardX import SummaryWriter

            purge = self.rows[-1]["update"] + 1 if self.rows else None
            self._tensorboard = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=purge)
        if config.logging.wandb:
            import wandb

            self._wandb = wandb.init(
                project=config.logging.wandb_project,
                name=run_dir.name,
                dir=str(run_dir),
                config=to_dict(config),
                resume="allow",
                id=run_dir.name,
            )

    def log(self, row: dict) -> None:
        self.rows.append(row)
        if not self.writes:
            return
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        _write_atomically(self.run_dir / METRICS_CSV, csv_text(self.rows))
        scalars = {
            k: float(v)
            for k, v in row.items()
            if k != "update" and isinstance(v, int | float) and not isinstance(v, bool)
        }
        if self._tensorboard is not None:
            for name, value in scalars.items():
                if math.isfinite(value):
                    self._tensorboard.add_scalar(name, value, row["update"])
            self._tensorboard.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=row["update"])

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
        if self._wandb is not None:
            self._wandb.finish()
