"""Every agentic-jax environment as a Gymnasium text environment, for LLM-RL frameworks.

``import agentic_jax.text_env`` registers ``agentic_jax/<ID>`` for every environment id of
``agentic_jax.envs.REGISTRY`` (or name the module in the id:
``gymnasium.make("agentic_jax.text_env:agentic_jax/KBLookup-v0")``)::

    import gymnasium
    import agentic_jax.text_env  # noqa: F401 (registers the ids)

    env = gymnasium.make("agentic_jax/KBLookup-v0")
    prompt, info = env.reset(seed=0)  # "<task> hat of bob ? </task>"
    result, reward, terminated, truncated, info = env.step("<call> search bob </call>")

The text <-> token mapping: text is whitespace-separated words, each one token of the shared
vocabulary (``agentic_jax.tokens.WORDS``; special tokens are written as words, ``<call>``).
``reset(seed=...)`` returns the prompt. ``step(text)`` takes a model's completion, usually one
segment (``<think> ... </think>``, ``<call> TOOL ARGS </call>``, ``<answer> ... </answer>`` or
``<abort>``), writes its words as the agent's tokens in order, and returns as the next
observation the text the environment wrote after them (a tool's ``<result> ... </result>``,
the next turn's message), with the reward earned, ``terminated`` (answered, aborted or
invalid), ``truncated`` (the transcript's limit) and ``info``: ``success``, the hack labels
(``hacks``, ``cheats``) and every episode statistic of ``agentic_jax.stats``. A segment left
open continues in the next step; a closing word the environment writes itself (``</call>``
once a call has all its arguments) is accepted; other words after the agent's turn ended are
not written (``info["unused_words"]``).

A word outside the vocabulary, or a token the grammar does not allow where it is written
(the legal-token mask), ends the episode invalid with no reward (``info["invalid"]``), and
``info["why_invalid"]`` says which word and why (for an illegal one, the words legal
there). Environments whose episodes hold sub-agents (``sub_agents > 0``) have several
transcripts and no single text form: they are refused.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import jax
import numpy as np
from gymnasium import spaces

from agentic_jax import stats
from agentic_jax import tokens as tk
from agentic_jax.envs import REGISTRY, make
from agentic_jax.transcript import Phase

NAMESPACE = "agentic_jax"
CHARSET = frozenset("".join(tk.WORDS) + " ")
SHOWN_LEGAL_WORDS = 24  # at most this many legal words in an invalid step's info


class TextEnv(gymnasium.Env):
    """One agentic-jax environment (``env_id`` with ``envs.make``'s ``overrides``) as text."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, env_id: str = "KBLookup-v0", render_mode: str | None = None, **overrides):
        self.env, self.params = make(env_id, **overrides)
        if getattr(self.env, "num_contexts", 1) > 1:
            raise ValueError(
                f"{env_id} with sub-agents has several transcripts and no single text form; "
                "use it without sub_agents"
            )
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode {render_mode!r}; valid: ansi (or None)")
        self.env_id, self.render_mode = env_id, render_mode
        longest_word = max(len(word) for word in tk.WORDS)
        length = self.env.max_len * (longest_word + 1)
        self.observation_space = spaces.Text(length, min_length=0, charset=CHARSET)
        self.action_space = spaces.Text(length, min_length=0, charset=CHARSET)
        self._reset_fn = jax.jit(self.env.reset_env)
        self._step_fn = jax.jit(self.env.step_without_reset)
        self._state = self._obs = self._key = None
        self._shown = 0  # transcript tokens already returned as observations or actions

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        key_seed = seed if seed is not None else int(self.np_random.integers(2**31))
        self._key, reset_key = jax.random.split(jax.random.PRNGKey(key_seed))
        self._obs, self._state = self._reset_fn(reset_key, self.params)
        self._shown = 0
        self._write_forced()
        return self._new_text(), self._info()

    def step(self, action: str):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if self._done():
            raise RuntimeError("the episode has ended; call reset()")
        words = str(action).split()
        reward, terminated, truncated, invalid, unused = 0.0, False, False, None, []
        for index, word in enumerate(words):
            if not (terminated or truncated) and word == self._forced_word():
                r, terminated, truncated = self._advance(0)  # the closing it would force
                reward += r
                continue
            if not bool(self._obs.agent_turn) or terminated or truncated:
                unused = words[index:]
                break
            invalid = self._why_invalid(word)
            token = tk.TOKEN_ID.get(word, -1)  # -1: no token; the harness ends it invalid
            r, terminated, truncated = self._advance(token)
            reward += r
            if invalid is not None:
                terminated = True
                break
        self._shown = int(self._state.length)  # the agent's own words are not observed
        if not (terminated or truncated):
            r, terminated, truncated = self._write_forced()
            reward += r
        info = self._info()
        if invalid is not None:
            info["why_invalid"] = invalid
        if unused:
            info["unused_words"] = unused
        return self._new_text(), float(reward), terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._state is None:
            return None
        return tk.decode(np.asarray(self._state.transcript)[: int(self._state.length)])

    def oracle_word(self) -> str:
        """The word the environment's oracle writes next (a demonstrator, for tests)."""
        return tk.WORDS[int(self.env.oracle_action(self._state))]

    # ------------------------------------------------------------------ steps
    def _advance(self, token: int) -> tuple[float, bool, bool]:
        """One harness step with ``token`` (ignored where the harness writes its own)."""
        self._key, step_key = jax.random.split(self._key)
        obs, state, reward, terminated, truncated, _ = self._step_fn(
            step_key, self._state, np.int32(token), self.params
        )
        self._obs, self._state = obs, state
        return float(reward), bool(terminated), bool(truncated)

    def _write_forced(self) -> tuple[float, bool, bool]:
        """Let the harness write until it is the agent's turn or the episode ends."""
        reward, terminated, truncated = 0.0, False, False
        while not bool(self._obs.agent_turn) and not self._done():
            r, terminated, truncated = self._advance(0)
            reward += r
        return reward, terminated, truncated

    def _forced_word(self) -> str | None:
        """The word the harness writes next itself (a segment's closing at its budget, a
        tool's result), or None on the agent's turn."""
        if bool(self._obs.agent_turn):
            return None
        return tk.WORDS[int(np.argmax(np.asarray(self._obs.legal_mask)))]

    def _why_invalid(self, word: str) -> dict[str, Any] | None:
        """Why writing ``word`` now ends the episode invalid (None: it does not)."""
        if word not in tk.TOKEN_ID:
            return {"word": word, "reason": "not a word of the vocabulary (agentic_jax.tokens)"}
        legal = np.flatnonzero(np.asarray(self._obs.legal_mask))
        if tk.TOKEN_ID[word] in legal:
            return None
        shown = [tk.WORDS[i] for i in legal[:SHOWN_LEGAL_WORDS]]
        return {"word": word, "reason": "not legal here", "legal_words": shown}

    def _done(self) -> bool:
        return int(self._state.phase) == Phase.DONE

    def _new_text(self) -> str:
        """The transcript's words since the last observation."""
        length = int(self._state.length)
        text = tk.decode(np.asarray(self._state.transcript)[self._shown : length])
        self._shown = length
        return text

    def _info(self) -> dict[str, Any]:
        state = self._state
        info = {stat.name: float(getattr(state, stat.field)) for stat in stats.EPISODE_COUNTERS}
        return info | {"success": bool(state.success), "invalid": bool(state.invalid)}


def register_all() -> list[str]:
    """Register ``agentic_jax/<ID>`` for every environment id (once); returns the ids."""
    ids = []
    for env_id in REGISTRY:
        name = f"{NAMESPACE}/{env_id}"
        if name not in gymnasium.registry:
            gymnasium.register(
                id=name, entry_point=f"{__name__}:TextEnv", kwargs={"env_id": env_id}
            )
        ids.append(name)
    return ids


register_all()
