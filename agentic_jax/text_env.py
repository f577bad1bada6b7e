"""Every agentic-jax environment as a Gymnasium text environment, for LLM-RL frameworks.

``TextEnv`` is one episode at a time; ``TextVectorEnv`` runs many as one vmapped JAX
environment (``gymnasium.vector`` conventions). ``import agentic_jax.text_env`` registers
``agentic_jax/<ID>`` for every environment id of ``agentic_jax.envs.REGISTRY`` (or name the
module in the id:
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
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

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


class TextVectorEnv(VectorEnv):
    """``num_envs`` episodes of one environment as one vmapped JAX environment, in
    ``gymnasium.vector`` conventions: ``reset`` returns a tuple of prompts, ``step`` takes a
    tuple of completions and returns a tuple of texts with arrays of rewards, terminations
    and truncations, and ``info`` arrays (``_name`` masks where a key is not every env's).
    An episode that ends is reset at the next ``step`` (``AutoresetMode.NEXT_STEP``): its
    action there is ignored and its observation is the next prompt. Every harness step of
    the batch is one jitted, vmapped call; envs without a word to write wait."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, env_id: str = "KBLookup-v0", num_envs: int = 8, **overrides):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        single = TextEnv(env_id, **overrides)
        self.env, self.params, self.num_envs = single.env, single.params, num_envs
        self.single_observation_space = single.observation_space
        self.single_action_space = single.action_space
        self.observation_space = batch_space(single.observation_space, num_envs)
        self.action_space = batch_space(single.action_space, num_envs)
        self._reset_fn = jax.jit(jax.vmap(self.env.reset_env, in_axes=(0, None)))
        self._step_fn = jax.jit(self._masked_step)
        self._state = self._obs = self._key = None
        self._shown = np.zeros(num_envs, int)
        self._ended = np.zeros(num_envs, bool)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        key_seed = seed if seed is not None else int(self.np_random.integers(2**31))
        self._key, reset_key = jax.random.split(jax.random.PRNGKey(key_seed))
        keys = jax.random.split(reset_key, self.num_envs)
        self._obs, self._state = self._reset_fn(keys, self.params)
        self._shown[:], self._ended[:] = 0, False
        self._write_forced()
        return self._new_texts(), self._infos()

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        fresh = self._ended.copy()
        if fresh.any():  # NEXT_STEP autoreset: these start over, their actions are ignored
            self._reset_some(fresh)
        words = [[] if fresh[i] else str(text).split() for i, text in enumerate(actions)]
        why = np.full(self.num_envs, None, object)
        rewards = np.zeros(self.num_envs, np.float32)
        for position in range(max((len(w) for w in words), default=0)):
            tokens, active = self._next_tokens(words, position, why)
            if active.any():
                rewards += self._advance(tokens, active)
        own_words = np.asarray(self._state.length)  # not observed; a restarted env's prompt is
        self._shown = np.where(fresh, self._shown, own_words)
        rewards += self._write_forced()
        done = np.asarray(self._state.phase) == Phase.DONE
        truncated = done & np.asarray(self._state.truncated)
        self._ended = done
        infos = self._infos()
        if any(w is not None for w in why):
            infos["why_invalid"], infos["_why_invalid"] = why, why != None  # noqa: E711
        return self._new_texts(), rewards, done & ~truncated, truncated, infos

    def oracle_words(self) -> tuple[str, ...]:
        """The word each env's oracle writes next (a demonstrator, for tests)."""
        actions = jax.vmap(self.env.oracle_action)(self._state)
        return tuple(tk.WORDS[int(a)] for a in np.asarray(actions))

    def _masked_step(self, keys, state, obs, tokens, active, params):
        """One vmapped harness step where ``active``; the other envs keep their state."""
        new_obs, new_state, reward, _, _, _ = jax.vmap(
            self.env.step_without_reset, in_axes=(0, 0, 0, None)
        )(keys, state, tokens, params)

        def keep(new, old):
            return jnp.where(active.reshape(active.shape + (1,) * (new.ndim - 1)), new, old)

        merged = jax.tree.map(keep, (new_obs, new_state), (obs, state))
        return *merged, jnp.where(active, reward, 0.0)

    def _advance(self, tokens: np.ndarray, active: np.ndarray) -> np.ndarray:
        self._key, step_key = jax.random.split(self._key)
        keys = jax.random.split(step_key, self.num_envs)
        self._obs, self._state, reward = self._step_fn(
            keys, self._state, self._obs, tokens.astype(np.int32), active, self.params
        )
        return np.asarray(reward)

    def _next_tokens(self, words: list[list[str]], position: int, why: np.ndarray):
        """Each env's token at ``position`` of its completion, and which envs write one: a
        live env on its turn, or writing the closing the harness would force."""
        live = np.asarray(self._state.phase) != Phase.DONE
        turn = np.asarray(self._obs.agent_turn)
        legal = np.asarray(self._obs.legal_mask)
        tokens, active = np.zeros(self.num_envs, int), np.zeros(self.num_envs, bool)
        for i, own in enumerate(words):
            if position >= len(own) or not live[i] or why[i] is not None:
                continue
            token = tk.TOKEN_ID.get(own[position], -1)
            forced = not turn[i] and token >= 0 and legal[i, token]
            if not (turn[i] or forced):
                continue  # the turn ended: the rest is not written
            if token < 0 or not legal[i, token]:
                reason = "not a word of the vocabulary" if token < 0 else "not legal here"
                why[i] = {"word": own[position], "reason": reason}
            tokens[i], active[i] = token, True
        return tokens, active

    def _write_forced(self) -> np.ndarray:
        rewards = np.zeros(self.num_envs, np.float32)
        while True:
            waiting = ~np.asarray(self._obs.agent_turn) & (
                np.asarray(self._state.phase) != Phase.DONE
            )
            if not waiting.any():
                return rewards
            rewards += self._advance(np.zeros(self.num_envs, int), waiting)

    def _reset_some(self, which: np.ndarray) -> None:
        self._key, reset_key = jax.random.split(self._key)
        obs, state = self._reset_fn(jax.random.split(reset_key, self.num_envs), self.params)
        pick = lambda new, old: np.where(  # noqa: E731
            which.reshape(which.shape + (1,) * (np.ndim(new) - 1)), new, old
        )
        self._obs, self._state = jax.tree.map(pick, (obs, state), (self._obs, self._state))
        self._shown[which], self._ended[which] = 0, False
        self._write_forced()

    def _new_texts(self) -> tuple[str, ...]:
        lengths = np.asarray(self._state.length)
        transcripts = np.asarray(self._state.transcript)
        texts = tuple(
            tk.decode(transcripts[i, self._shown[i] : lengths[i]]) for i in range(self.num_envs)
        )
        self._shown = lengths.copy()
        return texts

    def _infos(self) -> dict[str, np.ndarray]:
        state = self._state
        infos = {
            s.name: np.asarray(getattr(state, s.field), np.float32) for s in stats.EPISODE_COUNTERS
        }
        return infos | {"success": np.asarray(state.success), "invalid": np.asarray(state.invalid)}


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
