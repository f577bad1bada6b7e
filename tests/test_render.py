"""Transcripts for people: terminal colours and the HTML page."""

import io
import re

import numpy as np
from rich.console import Console

from agentic_jax import render
from agentic_jax import tokens as tk
from agentic_jax.train.saved import Sampled

WORDS = ["<task>", "hat", "of", "bob", "?", "</task>", "<think>", "bob", "</think>",
         "<call>", "search", "bob", "</call>", "<result>", "hat", "red", "</result>",
         "<answer>", "red", "</answer>"]  # fmt: skip


def padded(words: list[str], width: int = 24) -> np.ndarray:
    ids = tk.ids(words)
    return np.asarray([*ids, *[tk.PAD] * (width - len(ids))])


def transcript(solved: bool = True) -> render.Sampled:
    """One single-agent episode."""
    return Sampled(padded(WORDS)[None, None], np.array([solved]), np.zeros((1, 0), int))


def test_html_page_gives_each_segment_its_class_and_escapes_tokens():
    page = render.html_page(transcript(), "run <1>")
    for kind in ("task", "think", "call", "result", "answer"):
        assert f'<div class="{kind}">' in page
    assert '<div class="result">&lt;result&gt; hat red &lt;/result&gt;</div>' in page
    assert "<title>run &lt;1&gt;</title>" in page and "(solved)" in page
    assert "<pad>" not in page and "&lt;pad&gt;" not in page


def test_terminal_marks_tool_results_apart_from_agent_tokens():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=200)
    render.print_transcripts(console, transcript(solved=False))
    coloured = out.getvalue()
    text = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert "held-out episode 0 (failed)" in text
    assert "  | <result> hat red </result>" in text
    assert "\x1b[35m<think> bob </think>" in coloured  # thinking in magenta


def delegating_episode() -> render.Sampled:
    """An orchestrator that delegated twice: one sub-agent, then another (slot 2 unused)."""
    orchestrator = ("<task> hat of bob eve ? </task> <call> delegate hat bob </call> "
                    "<result> red </result> <call> delegate hat eve </call> <result> gold "
                    "</result> <answer> red gold </answer>").split()  # fmt: skip
    bob = ("<subagent> <task> hat bob </task> <call> search bob </call> <result> hat red "
           "</result> <answer> red </answer>")  # fmt: skip
    eve = "<subagent> <task> hat eve </task> <answer> gold </answer>"
    contexts = np.stack([padded(orchestrator, 40), padded(bob.split(), 40), padded(eve.split(), 40),
                         padded(["<task>"], 40)])  # fmt: skip
    return Sampled(contexts[None], np.array([True]), np.array([[0, 1, -1]]))


def test_a_sub_agent_is_shown_under_the_call_that_started_it():
    out = io.StringIO()
    render.print_transcripts(Console(file=out, width=200), delegating_episode())
    lines = out.getvalue().splitlines()
    first_call = lines.index("<call> delegate hat bob </call>")
    second_call = lines.index("<call> delegate hat eve </call>")
    # Slot 0 was started by the first call, slot 1 by the second; slot 2 never ran.
    assert lines[first_call + 1 : first_call + 3] == [
        "    > <subagent>",
        "    > <task> hat bob </task>",
    ]
    assert lines[second_call + 1 : second_call + 3] == [
        "    > <subagent>",
        "    > <task> hat eve </task>",
    ]
    assert "    >   | <result> hat red </result>" in lines  # the sub-agent's own search
    assert lines[second_call + 4] == "  | <result> gold </result>"  # then the call's result
    assert sum(line.startswith("    > <subagent>") for line in lines) == 2
    page = render.html_page(delegating_episode(), "nested")
    assert '<div class="task subagent">&lt;task&gt; hat bob &lt;/task&gt;</div>' in page
    assert page.count('subagent">') >= 6
