"""One token vocabulary shared by every environment.

A transcript is a sequence of token ids. Control tokens frame its segments
(``<task> ... </task>``, ``<think> ... </think>``, ``<call> TOOL ARGS </call>``,
``<result> ... </result>``, ``<answer> ... </answer>``); the rest are content:
digits, operators, tool names and words. Every environment uses this one
vocabulary, so one policy can be trained on a mixture of environments.

The vocabulary has room: ids run to a fixed ``VOCAB_SIZE`` (the capacity, which sizes the
policy's embedding and output layer, every legal mask and the action space), and the ids past
the words in use are reserved and never legal. A new word takes the next reserved id
(``ADDED_WORDS``), so adding one changes no existing run: the same parameter shapes, the same
random draws, the same legal masks. A word is legal only where an environment's masks say so;
thinking may use the words of ``THINK_WORDS`` only (add a new word there and every policy
that thinks sees another legal token, which changes its runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

CONTROL = (
    "<pad>",
    "<task>",
    "</task>",
    "<think>",
    "</think>",
    "<call>",
    "</call>",
    "<result>",
    "</result>",
    "<answer>",
    "</answer>",
    "<effort>",
    "<error>",
    "<timeout>",
    "<wait>",
)
EFFORT_LEVELS = ("none", "low", "mid", "high")
DIGITS = tuple(str(d) for d in range(10))
OPERATORS = ("+", "-", "*", "=", "?", "of")
TOOL_NAMES = ("calc", "search", "run", "open", "write", "read", "api", "backup")
ENTITY_NAMES = (
    "ann",
    "bob",
    "cat",
    "dan",
    "eve",
    "fay",
    "gus",
    "hal",
    "ivy",
    "jay",
    "kim",
    "lee",
    "max",
    "ned",
    "oli",
    "pam",
)
ATTRIBUTES = ("hat", "coat", "car", "boat", "kite", "door")
VALUES = ("red", "blue", "green", "gold", "pink", "gray", "teal", "plum")
RELATIONS = ("friend", "boss")

# Environment-specific words, one group per environment, appended after the shared groups.
MEMORY_WORDS = ("ok",)  # Memory-v0: a stored write, an acknowledged turn
WEBNAV_WORDS = ("log", "peer", "rival")  # WebNav-v0: the log page, two more link labels
FLAKY_API_FIELDS = ("price", "stock")  # FlakyAPI-v0: what the api is asked for
CODESYNTH_WORDS = (  # CodeSynth-v0: stack-language words (`max` is reused), run verdicts
    "x",
    "min",
    "dup",
    "swap",
    "drop",
    "pass",
    "fail",
    "underflow",
    "overflow",
    "limit",
    "opcode",
)
MIXED_WORDS = ("kb", "math", "flaky", "web", "code", "mem")  # Mixed-v0: task-type tokens
# Delegation (``agentic_jax.delegation``): the tool that starts a sub-agent, and the role token
# that opens a sub-agent's transcript (a control token: never content).
DELEGATION_WORDS = ("delegate", "<subagent>")
# Reward hacking (issue 21), control tokens: the agent's ``<abort>`` (the task cannot be done
# honestly), and the inoculation prompt token ``<shortcut_ok>`` (the shortcut is allowed).
HACKING_WORDS = ("<abort>", "<shortcut_ok>")

# Words added after the capacity was fixed, in the order they were added (never reorder: a
# word's id is its place). Each takes the next reserved id.
ADDED_WORDS: tuple[str, ...] = ()

WORDS: tuple[str, ...] = (
    CONTROL
    + EFFORT_LEVELS
    + DIGITS
    + OPERATORS
    + TOOL_NAMES
    + ENTITY_NAMES
    + ATTRIBUTES
    + VALUES
    + RELATIONS
    + MEMORY_WORDS
    + WEBNAV_WORDS
    + FLAKY_API_FIELDS
    + CODESYNTH_WORDS
    + MIXED_WORDS
    + DELEGATION_WORDS
    + HACKING_WORDS
    + ADDED_WORDS
)
VOCAB_SIZE = 128  # the capacity: ids [len(WORDS), VOCAB_SIZE) are reserved, never legal
assert len(WORDS) <= VOCAB_SIZE, f"{len(WORDS)} words exceed the capacity {VOCAB_SIZE}"
RESERVED = tuple(f"<reserved{index}>" for index in range(len(WORDS), VOCAB_SIZE))
VOCAB: tuple[str, ...] = WORDS + RESERVED  # a name for every id
TOKEN_ID: dict[str, int] = {token: index for index, token in enumerate(WORDS)}
assert len(TOKEN_ID) == len(WORDS), "duplicate token in WORDS"


def token_id(token: str) -> int:
    """The id of one token string; a clear error for an unknown one."""
    try:
        return TOKEN_ID[token]
    except KeyError:
        raise ValueError(f"unknown token {token!r}; the vocabulary is: {' '.join(WORDS)}") from None


def ids(tokens: Iterable[str]) -> np.ndarray:
    """Token ids (int32) of a sequence of token strings."""
    return np.asarray([token_id(t) for t in tokens], dtype=np.int32)


def encode(text: str) -> np.ndarray:
    """Token ids of whitespace-separated text: ``encode("hat of bob ?")``."""
    return ids(text.split())


def decode(token_ids: Sequence[int] | np.ndarray, strip_pad: bool = True) -> str:
    """Text of a sequence of token ids, padding dropped unless ``strip_pad`` is False."""
    words = [VOCAB[int(i)] for i in np.asarray(token_ids).reshape(-1)]
    if strip_pad:
        words = [w for w in words if w != "<pad>"]
    return " ".join(words)


def id_mask(tokens: Iterable[str]) -> np.ndarray:
    """A boolean [VOCAB_SIZE] mask that is True at the given tokens."""
    mask = np.zeros(VOCAB_SIZE, dtype=bool)
    mask[ids(tokens)] = True
    return mask


PAD = TOKEN_ID["<pad>"]
TASK_OPEN, TASK_CLOSE = TOKEN_ID["<task>"], TOKEN_ID["</task>"]
THINK_OPEN, THINK_CLOSE = TOKEN_ID["<think>"], TOKEN_ID["</think>"]
CALL_OPEN, CALL_CLOSE = TOKEN_ID["<call>"], TOKEN_ID["</call>"]
RESULT_OPEN, RESULT_CLOSE = TOKEN_ID["<result>"], TOKEN_ID["</result>"]
ANSWER_OPEN, ANSWER_CLOSE = TOKEN_ID["<answer>"], TOKEN_ID["</answer>"]
EFFORT = TOKEN_ID["<effort>"]
ERROR, TIMEOUT, WAIT = TOKEN_ID["<error>"], TOKEN_ID["<timeout>"], TOKEN_ID["<wait>"]
SUBAGENT = TOKEN_ID["<subagent>"]
ABORT, SHORTCUT_OK = TOKEN_ID["<abort>"], TOKEN_ID["<shortcut_ok>"]
DIGIT_IDS = ids(DIGITS)
MINUS = TOKEN_ID["-"]

# Tokens a policy may write inside <think>: content words, no control tokens, nothing reserved.
THINK_WORDS = (
    EFFORT_LEVELS
    + DIGITS
    + OPERATORS
    + TOOL_NAMES
    + ENTITY_NAMES
    + ATTRIBUTES
    + VALUES
    + RELATIONS
    + MEMORY_WORDS
    + WEBNAV_WORDS
    + FLAKY_API_FIELDS
    + CODESYNTH_WORDS
    + MIXED_WORDS
    + ("delegate",)
)
CONTENT_MASK = id_mask(THINK_WORDS)

SEGMENT_STYLE = {
    "<task>": "task",
    "<think>": "think",
    "<call>": "call",
    "<result>": "result",
    "<answer>": "answer",
}


def split_segments(token_ids: Sequence[int] | np.ndarray) -> list[tuple[str, str]]:
    """Split a transcript into (kind, text) segments: task, think, call, result, answer, other.

    A segment runs from its opening token through its closing token; tokens outside
    any segment (effort markers, padding) are grouped as ``other``.
    """
    segments: list[tuple[str, list[str]]] = []
    current = "other"
    for index in np.asarray(token_ids).reshape(-1):
        word = VOCAB[int(index)]
        if word == "<pad>":
            continue
        if word in SEGMENT_STYLE:
            current = SEGMENT_STYLE[word]
            segments.append((current, [word]))
            continue
        if not segments or segments[-1][0] != current:
            segments.append((current, []))
        segments[-1][1].append(word)
        if word.startswith("</"):
            current = "other"
    return [(kind, " ".join(words)) for kind, words in segments if words]


def render_transcript(token_ids: Sequence[int] | np.ndarray) -> str:
    """Plain-text rendering, one segment per line; tool results are marked ``  | ``."""
    lines = []
    for kind, text in split_segments(token_ids):
        lines.append(("  | " if kind == "result" else "") + text)
    return "\n".join(lines)
