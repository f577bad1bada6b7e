"""Transcripts for people: coloured terminal text and a standalone HTML page.

Each segment kind gets its own colour: the task prompt, thinking, tool calls, tool results
(indented, and marked ``|`` so they never pass for agent tokens) and answers.
"""

from __future__ import annotations

import html

import numpy as np
from rich.console import Console
from rich.text import Text

from agentic_jax import tokens as tk

TERMINAL_STYLES = {"task": "bold", "think": "magenta", "call": "cyan", "result": "yellow",
                   "answer": "bold green", "other": "dim"}  # fmt: skip
HTML_COLOURS = {"task": "#222", "think": "#8a2be2", "call": "#0077aa", "result": "#9a6700",
                "answer": "#1a7f37", "other": "#888"}  # fmt: skip


def _title(index: int, solved: bool) -> str:
    return f"held-out episode {index} ({'solved' if solved else 'failed'})"


def print_transcripts(console: Console, transcripts: np.ndarray, success: np.ndarray) -> None:
    for index, (transcript, solved) in enumerate(zip(transcripts, success, strict=True)):
        console.print(f"--- {_title(index, bool(solved))}")
        for kind, text in tk.split_segments(transcript):
            prefix = "  | " if kind == "result" else ""
            console.print(Text(prefix + text, style=TERMINAL_STYLES[kind]))


def html_page(transcripts: np.ndarray, success: np.ndarray, title: str) -> str:
    """A self-contained HTML page of transcripts with a colour legend."""
    css = "\n".join(f".{kind} {{ color: {colour}; }}" for kind, colour in HTML_COLOURS.items())
    legend = " ".join(f'<span class="{kind}">{kind}</span>' for kind in HTML_COLOURS)
    episodes = []
    for index, (transcript, solved) in enumerate(zip(transcripts, success, strict=True)):
        lines = [
            f'<div class="{kind}">{html.escape(text)}</div>'
            for kind, text in tk.split_segments(transcript)
        ]
        status = "solved" if solved else "failed"
        episodes.append(
            f'<section class="{status}"><h2>{html.escape(_title(index, bool(solved)))}</h2>'
            + "".join(lines) + "</section>"
        )  # fmt: skip
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: ui-monospace, monospace; max-width: 60em; margin: 2em auto; }}
section {{ border-left: 4px solid #ccc; padding: 0.2em 1em; margin: 1em 0; }}
section.solved {{ border-color: #1a7f37; }} section.failed {{ border-color: #cf222e; }}
h2 {{ font-size: 1em; }}
.result {{ margin-left: 2em; border-left: 2px dashed #9a6700; padding-left: 0.5em; }}
{css}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{legend}</p>
{"".join(episodes)}
</body></html>
"""
