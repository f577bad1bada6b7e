"""The Gymnasium text environment: gymnasium's own checker, the oracle solving every task
through text, whole segments, and a random-text player on the invalid path."""

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

from agentic_jax import text_env
from agentic_jax.envs import REGISTRY

pytestmark = pytest.mark.timeout(600)


def play_oracle(env: gymnasium.Env, seed: int) -> dict:
    """The environment's oracle, one word per step (a segment may span steps)."""
    env.reset(seed=seed)
    while True:
        _, _, terminated, truncated, info = env.step(env.unwrapped.oracle_word())
        if terminated or truncated:
            return info


def test_every_environment_is_registered():
    assert text_env.register_all() == [f"agentic_jax/{env_id}" for env_id in REGISTRY]


def test_kblookup_through_text():
    env = gymnasium.make("agentic_jax/KBLookup-v0")
    prompt, info = env.reset(seed=0)
    assert prompt.startswith("<task>") and prompt.endswith("</task>") and not info["success"]
    name = prompt.split()[3]  # <task> ATTR of NAME ? </task>
    result, reward, terminated, _, info = env.step(f"<call> search {name} </call>")
    assert result.startswith("<result>") and reward == 0.0 and not terminated
    assert info["tool_calls"] == 1.0
    assert [play_oracle(env, seed)["success"] for seed in range(8)] == [True] * 8
    again, _ = env.reset(seed=0)
    assert again == prompt  # same seed, same task


def test_a_random_text_player_gets_a_clear_invalid_path():
    env = gymnasium.make("agentic_jax/KBLookup-v0")
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("hello </answer>")
    assert terminated and reward == 0.0 and info["invalid"] and not info["success"]
    assert info["why_invalid"]["word"] == "hello"
    assert "not a word of the vocabulary" in info["why_invalid"]["reason"]
    env.reset(seed=0)
    _, _, terminated, _, info = env.step("</answer>")  # a word, but not legal here
    assert terminated and info["why_invalid"]["reason"] == "not legal here"
    assert "<call>" in info["why_invalid"]["legal_words"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step("<abort>")
    env.action_space.seed(0)
    texts = [text for text in (env.action_space.sample() for _ in range(8)) if text.split()]
    assert texts
    for seed, text in enumerate(texts):  # random characters: no word of the vocabulary
        env.reset(seed=seed)
        _, _, terminated, _, info = env.step(text)
        assert terminated and info["invalid"] and info["why_invalid"]["word"] == text.split()[0]


def test_delegating_environments_are_refused():
    with pytest.raises(ValueError, match="several transcripts"):
        text_env.TextEnv("KBGather-v0", sub_agents=2)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", list(REGISTRY))
def test_every_environment_passes_gymnasiums_checker_and_its_oracle_solves_it(env_id):
    env = gymnasium.make(f"agentic_jax/{env_id}")
    check_env(env.unwrapped, skip_render_check=True)
    solved = [play_oracle(env, seed)["success"] for seed in range(4)]
    assert all(solved), solved


def test_the_vector_version_plays_many_episodes_as_one_jax_environment():
    """Eight episodes in one vmapped environment: the oracle solves every one, an invalid
    word ends only its own env's episode, and an ended episode restarts at the next step."""
    env = text_env.TextVectorEnv("KBLookup-v0", num_envs=8)
    prompts, _ = env.reset(seed=0)
    assert len(prompts) == 8 and all(p.startswith("<task>") for p in prompts)
    solved, ended, restarting = [None] * 8, [False] * 8, []
    while not all(ended):
        words = [w if not done else "" for w, done in zip(env.oracle_words(), ended, strict=True)]
        texts, rewards, terminated, truncated, infos = env.step(words)
        assert all(texts[i].startswith("<task>") for i in restarting)  # NEXT_STEP autoreset
        restarting = [i for i in range(8) if terminated[i] or truncated[i]]
        for i in restarting:
            if not ended[i]:
                ended[i], solved[i] = True, bool(infos["success"][i]) and rewards[i] == 1.0
    assert solved == [True] * 8
    texts, _, _, _, _ = env.step([""] * 8)
    assert all(texts[i].startswith("<task>") for i in restarting)
    words = ["hello"] + [""] * 7
    _, _, terminated, _, infos = env.step(words)
    assert terminated.tolist() == [True] + [False] * 7
    assert infos["_why_invalid"].tolist() == [True] + [False] * 7
    assert infos["why_invalid"][0]["word"] == "hello"
