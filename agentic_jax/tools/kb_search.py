"""The ``search`` tool over a knowledge base of entities with attributes and relations.

``search NAME`` returns every fact about that entity, relations first::

    friend eve boss kim hat red coat blue car gold kite teal

An unknown name, or any argument count other than one, returns ``<error>``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.tools.base import ERROR, OK, ToolOutput, tool_output

ATTRIBUTE_IDS = jnp.asarray(tk.ids(tk.ATTRIBUTES))
VALUE_IDS = jnp.asarray(tk.ids(tk.VALUES))
RELATION_IDS = jnp.asarray(tk.ids(tk.RELATIONS))
NAME_IDS = jnp.asarray(tk.ids(tk.ENTITY_NAMES))


@struct.dataclass
class KnowledgeBase:
    names: jax.Array  # [E] int32 token ids of the entities' names
    values: jax.Array  # [E, A] int32 value index of each attribute
    relations: jax.Array  # [E, R] int32 entity index each relation points to
    num_entities: jax.Array  # int32, entities in use (the rest are padding)
    num_attributes: jax.Array  # int32, attributes in use


def result_width(max_attributes: int, num_relations: int = len(tk.RELATIONS)) -> int:
    """Tokens in the longest search result: a (name, value) pair per relation and attribute."""
    return 2 * num_relations + 2 * max_attributes


def lookup(kb: KnowledgeBase, name: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(entity index, found) for a name token."""
    match = (kb.names == name) & (jnp.arange(kb.names.shape[0]) < kb.num_entities)
    return jnp.argmax(match).astype(jnp.int32), match.any()


def facts(kb: KnowledgeBase, entity: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Fact tokens of one entity (relations, then attributes in use) and their count."""
    num_relations, num_attributes = kb.relations.shape[1], kb.values.shape[1]
    relation_part = jnp.stack(
        [RELATION_IDS[:num_relations], kb.names[kb.relations[entity]]], axis=1
    ).reshape(-1)
    attribute_part = jnp.stack(
        [ATTRIBUTE_IDS[:num_attributes], VALUE_IDS[kb.values[entity]]], axis=1
    ).reshape(-1)
    tokens = jnp.concatenate([relation_part, attribute_part])
    return tokens, 2 * num_relations + 2 * kb.num_attributes


def search(kb: KnowledgeBase, args: jax.Array, args_len: jax.Array) -> ToolOutput:
    entity, found = lookup(kb, args[0])
    ok = found & (args_len == 1)
    result, length = facts(kb, entity)
    width = result_width(kb.values.shape[1], kb.relations.shape[1])
    error = jnp.zeros(width, jnp.int32).at[0].set(tk.ERROR)
    return tool_output(
        jnp.where(ok, result, error), jnp.where(ok, length, 1), jnp.where(ok, OK, ERROR), width
    )
