"""Tools and the vocabulary on edge cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax import tokens as tk
from agentic_jax.tools import calculator, kb_search
from agentic_jax.tools.base import ERROR, OK

pytestmark = pytest.mark.timeout(120)
calc = jax.jit(calculator.calc, static_argnums=2)


def run_calc(text: str, max_digits: int = 3, width: int = 8):
    args = np.full(width, tk.PAD, np.int32)
    ids = tk.encode(text)
    args[: len(ids)] = ids
    out = calc(jnp.asarray(args), jnp.int32(len(ids)), max_digits)
    return tk.decode(np.asarray(out.tokens)[: int(out.length)]), int(out.status)


@pytest.mark.parametrize(
    "expression,result",
    [
        ("3 7 * 4 8", "1 7 7 6"),
        ("9 9 9 * 9 9 9", "9 9 8 0 0 1"),
        ("1 2 - 3 4", "- 2 2"),
        ("5 - 5", "0"),
        ("0 * 7", "0"),
        ("0 0 7 + 1", "8"),
        ("1 0 0 - 1", "9 9"),
    ],
)
def test_calc_computes_exactly(expression, result):
    assert run_calc(expression) == (result, OK)


@pytest.mark.parametrize(
    "expression",
    ["3 7", "+ 4", "4 +", "1 + 2 + 3", "1 2 3 4 + 1", "1 + 2 3 4 5", "1 + red", "*", "- 3 + 4"],
)
def test_calc_rejects_malformed_expressions(expression):
    assert run_calc(expression) == ("<error>", ERROR)


def test_calc_empty_arguments_are_an_error():
    out = calc(jnp.full(8, tk.PAD, jnp.int32), jnp.int32(0), 3)
    assert int(out.status) == ERROR and int(out.length) == 1


def test_int_to_tokens_round_trips():
    for value in [0, 7, -7, 10, 999999, -1000]:
        tokens, length = calculator.int_to_tokens(jnp.int32(value), 6)
        assert tk.decode(np.asarray(tokens)[: int(length)]).replace(" ", "") == str(value)


def make_kb(num_entities=3, num_attributes=2):
    names = jnp.asarray(tk.ids(["ann", "bob", "cat", "dan"]))
    values = jnp.array([[0, 1, 2], [3, 4, 5], [6, 7, 0], [1, 1, 1]])
    relations = jnp.array([[1, 2], [2, 0], [0, 1], [0, 0]])
    return kb_search.KnowledgeBase(names, values, relations, num_entities, num_attributes)


def search(kb, words):
    args = jnp.asarray(np.pad(tk.encode(words), (0, 2 - len(words.split()))))
    out = jax.jit(kb_search.search)(kb, args, jnp.int32(len(words.split())))
    return tk.decode(np.asarray(out.tokens)[: int(out.length)]), int(out.status)


def test_search_returns_relations_then_attributes_in_use():
    result, status = search(make_kb(), "bob")
    assert status == OK
    assert result == "friend cat boss ann hat gold coat pink"


def test_search_errors():
    kb = make_kb()
    assert search(kb, "dan") == ("<error>", ERROR)  # an entity beyond num_entities
    assert search(kb, "eve") == ("<error>", ERROR)  # a name not in this knowledge base
    assert search(kb, "ann bob") == ("<error>", ERROR)  # two arguments


def test_vocabulary_encode_decode_and_errors():
    text = "<task> hat of bob ? </task>"
    assert tk.decode(tk.encode(text)) == text
    assert tk.decode(np.array([tk.PAD, tk.token_id("red"), tk.PAD])) == "red"
    with pytest.raises(ValueError, match="unknown token 'purple'"):
        tk.encode("hat of purple")
    transcript = "<task> hat of bob ? </task> <call> search bob </call> <result> hat red </result>"
    rendered = tk.render_transcript(tk.encode(transcript))
    assert rendered.splitlines()[-1] == "  | <result> hat red </result>"
