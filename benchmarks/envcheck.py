"""Environment quality table: ``agentic-jax envcheck`` on every environment, into RESULTS.md.

python benchmarks/envcheck.py [ENV_ID ...] [--episodes 1024] [--no-record]
"""

from __future__ import annotations

import argparse
import sys

from results import environment_line, record

from agentic_jax import envcheck
from agentic_jax.envs import REGISTRY


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_ids", nargs="*", default=list(REGISTRY))
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--no-record", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    rows = []
    for env_id in args.env_ids:
        reports = envcheck.envcheck_report(env_id, episodes=args.episodes)
        rows += envcheck.markdown_rows(env_id, reports)
        print(rows[-1], flush=True)
    command = " ".join(["python benchmarks/envcheck.py", *(argv or sys.argv[1:])])
    section = "\n".join(
        ["### Environment quality (envcheck)", "", f"`{command}` ({environment_line()})", "",
         envcheck.MARKDOWN_HEADER, *rows]
    )  # fmt: skip
    record(section + "\n", args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
