"""Transcripts for people: coloured terminal text and a standalone HTML page.

Each segment kind gets its own colour: the task prompt, thinking, tool calls, tool results
(indented, and marked ``|`` so they never pass for agent tokens) and answers. With
delegation, each sub-agent's transcript is shown nested under the ``delegate`` call that
started it (marked ``>``), before that call's result.
"""

from __future__ import annotations

import html

import numpy as np
from rich.console import Console
from rich.text import Text

from agentic_jax import tokens as tk
from agentic_jax.train.saved import Sampled

TERMINAL_STYLES = {
    "task": "bold",
    "think": "magenta",
    "call": "cyan",
    "result": "yellow",
    "answer": "bold green",
    "other": "dim",
}
HTML_COLOURS = {
    "task": "#222",
    "think": "#8a2be2",
    "call": "#0077aa",
    "result": "#9a6700",
    "answer": "#1a7f37",
    "other": "#888",
}


def _title(index: int, solved: bool) -> str:
    return f"held-out episode {index} ({'solved' if solved else 'failed'})"


def episode_lines(contexts: np.ndarray, started_by: np.ndarray) -> list[tuple[int, str, str]]:
    """One episode as (depth, segment kind, text) lines: its own transcript ``contexts[0]``
    at depth 0, and after its k-th ``delegate`` call the sub-agents that call started
    (``started_by == k``) at depth 1."""
    lines, calls = [], 0
    for kind, text in tk.split_segments(contexts[0]):
        lines.append((0, kind, text))
        if kind == "call" and text.split()[1:2] == ["delegate"]:
            for slot in np.flatnonzero(started_by == calls):
                lines += [(1, k, t) for k, t in tk.split_segments(contexts[1 + slot])]
            calls += 1
    return lines


def print_transcripts(console: Console, sampled: Sampled) -> None:
    for index, solved in enumerate(sampled.success):
        console.print(f"--- {_title(index, bool(solved))}")
        for depth, kind, text in episode_lines(
            sampled.transcripts[index], sampled.started_by[index]
        ):
            prefix = "    > " * depth + ("  | " if kind == "result" else "")
            console.print(Text(prefix + text, style=TERMINAL_STYLES[kind]))


def html_page(sampled: Sampled, title: str) -> str:
    """A self-contained HTML page of transcripts with a colour legend."""
    css = "\n".join(f".{kind} {{ color: {colour}; }}" for kind, colour in HTML_COLOURS.items())
    legend = " ".join(f'<span class="{kind}">{kind}</span>' for kind in HTML_COLOURS)
    episodes = []
    for index, solved in enumerate(sampled.success):
        lines = [
            f'<div class="{kind}{" subagent" * depth}">{html.escape(text)}</div>'
            for depth, kind, text in episode_lines(
                sampled.transcripts[index], sampled.started_by[index]
            )
        ]
        status = "solved" if solved else "failed"
        episodes.append(
            f'<section class="{status}"><h2>{html.escape(_title(index, bool(solved)))}</h2>'
            + "".join(lines)
            + "</section>"
        )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: ui-monospace, monospace; max-width: 60em; margin: 2em auto; }}
section {{ border-left: 4px solid #ccc; padding: 0.2em 1em; margin: 1em 0; }}
section.solved {{ border-color: #1a7f37; }} section.failed {{ border-color: #cf222e; }}
h2 {{ font-size: 1em; }}
.result {{ margin-left: 2em; border-left: 2px dashed #9a6700; padding-left: 0.5em; }}
.subagent {{ margin-left: 3em; border-left: 2px solid #0077aa; padding-left: 0.5em; }}
{css}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{legend}</p>
{"".join(episodes)}
</body></html>
"""
