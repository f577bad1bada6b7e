"""Transcripts for people: terminal colours and the HTML page."""

import io
import re

import numpy as np
from rich.console import Console

from agentic_jax import render
from agentic_jax import tokens as tk

WORDS = ["<task>", "hat", "of", "bob", "?", "</task>", "<think>", "bob", "</think>",
         "<call>", "search", "bob", "</call>", "<result>", "hat", "red", "</result>",
         "<answer>", "red", "</answer>"]  # fmt: skip


def transcript() -> np.ndarray:
    ids = tk.ids(WORDS)
    return np.asarray([*ids, *[tk.PAD] * 4])[None]


def test_html_page_gives_each_segment_its_class_and_escapes_tokens():
    page = render.html_page(transcript(), np.array([True]), "run <1>")
    for kind in ("task", "think", "call", "result", "answer"):
        assert f'<div class="{kind}">' in page
    assert '<div class="result">&lt;result&gt; hat red &lt;/result&gt;</div>' in page
    assert "<title>run &lt;1&gt;</title>" in page and "(solved)" in page
    assert "<pad>" not in page and "&lt;pad&gt;" not in page


def test_terminal_marks_tool_results_apart_from_agent_tokens():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=200)
    render.print_transcripts(console, transcript(), np.array([False]))
    coloured = out.getvalue()
    text = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert "held-out episode 0 (failed)" in text
    assert "  | <result> hat red </result>" in text
    assert "\x1b[35m<think> bob </think>" in coloured  # thinking in magenta
