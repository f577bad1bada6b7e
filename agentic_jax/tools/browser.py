"""The ``open`` tool: a browser over a small site of pages.

A site is a set of pages, each named by a page-name token. ``open NAME`` shows that
page: its title (its name), its links (a label and the name of the page it leads to)
and its facts (an attribute and its value)::

    eve friend kim boss bob hat red coat blue car gold

An unknown page name (or a name beyond the site's pages in use), or any argument count
other than one, returns ``<error>``. A site may also carry a ``log`` page (leak variants
only): ``open log`` shows its tokens, title first; on a site without one it is an error.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.tools.base import ERROR, OK, ToolOutput, pack, tool_output

LINK_LABELS = tk.RELATIONS + ("peer", "rival")  # link k of every page carries label k
LINK_LABEL_IDS = jnp.asarray(tk.ids(LINK_LABELS))
ATTRIBUTE_IDS = jnp.asarray(tk.ids(tk.ATTRIBUTES))
VALUE_IDS = jnp.asarray(tk.ids(tk.VALUES))
PAGE_NAME_IDS = jnp.asarray(tk.ids(tk.ENTITY_NAMES))
LOG = tk.token_id("log")
LOG_WIDTH = 4  # log TARGET ATTR VALUE


@struct.dataclass
class Site:
    names: jax.Array  # [P] int32 token ids of the page names
    links: jax.Array  # [P, L] int32 page index that link k of each page leads to
    facts: jax.Array  # [P, F] int32 value index of attribute f on each page
    num_pages: jax.Array  # int32, pages in use (the rest are padding)
    num_links: jax.Array  # int32, links shown per page (labels 0 .. num_links - 1)
    num_facts: jax.Array  # int32, facts shown per page (attributes 0 .. num_facts - 1)
    log: jax.Array  # [LOG_WIDTH] int32 tokens of the log page, title first
    log_len: jax.Array  # int32, 0 when the site has no log page


def page_width(max_links: int, max_facts: int) -> int:
    """Tokens in the longest page: a title, a (label, page) pair per link, a pair per fact."""
    return 1 + 2 * max_links + 2 * max_facts


def find(site: Site, name: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(page index, found) for a page-name token."""
    match = (site.names == name) & (jnp.arange(site.names.shape[0]) < site.num_pages)
    return jnp.argmax(match).astype(jnp.int32), match.any()


def page(site: Site, index: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The tokens of one page (title, links, facts) and their count."""
    num_links, num_facts = site.links.shape[1], site.facts.shape[1]
    index = jnp.clip(index, 0, site.names.shape[0] - 1)
    targets = jnp.clip(site.links[index], 0, site.names.shape[0] - 1)
    link_part = jnp.stack([LINK_LABEL_IDS[:num_links], site.names[targets]], axis=1)
    fact_part = jnp.stack([ATTRIBUTE_IDS[:num_facts], VALUE_IDS[site.facts[index]]], axis=1)
    return pack(
        [
            (site.names[index], 1),
            (link_part.reshape(-1), 2 * jnp.clip(site.num_links, 1, num_links)),
            (fact_part.reshape(-1), 2 * jnp.clip(site.num_facts, 1, num_facts)),
        ],
        page_width(num_links, num_facts),
    )


def open_page(site: Site, args: jax.Array, args_len: jax.Array) -> ToolOutput:
    """``open NAME``: the page, the log page (where the site has one) or ``<error>``."""
    width = page_width(site.links.shape[1], site.facts.shape[1])
    index, found = find(site, args[0])
    is_log = (args[0] == LOG) & (site.log_len > 0)
    one_arg = args_len == 1
    tokens, length = page(site, index)
    log = jnp.full((width,), tk.PAD, jnp.int32).at[:LOG_WIDTH].set(site.log)
    error = jnp.full((width,), tk.PAD, jnp.int32).at[0].set(tk.ERROR)
    tokens = jnp.select([one_arg & is_log, one_arg & found], [log, tokens], error)
    length = jnp.select([one_arg & is_log, one_arg & found], [site.log_len, length], 1)
    ok = one_arg & (is_log | found)
    return tool_output(tokens, length, jnp.where(ok, OK, ERROR), width)
