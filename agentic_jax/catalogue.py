"""Our environment ids and their one-line descriptions: what `agentic-jax envs` lists,
without importing JAX or gymnax (``agentic_jax.envs.REGISTRY`` builds on it)."""

DESCRIPTIONS: dict[str, str] = {
    "KBLookup-v0": (
        "answer a question about a fresh random knowledge base through a `search` tool (one or "
        "two hops)"
    ),
    "KBGather-v0": (
        "one attribute of several entities of a fresh knowledge base, a `search` for each: "
        "independent sub-tasks whose results outgrow a small attention window"
    ),
    "Arithmetic-v0": ("integer + - * with a `calc` tool or a digit-by-digit scratchpad in <think>"),
    "CodeSynth-v0": (
        "write a stack-language program matching a hidden integer function shown by examples; "
        "`run` tests it in a sandboxed VM"
    ),
    "FlakyAPI-v0": (
        "look a value up through a slow `api` that errors and times out at random: retry, or "
        "fall back to the slower, reliable `backup`"
    ),
    "WebNav-v0": (
        "browse a fresh random site one page at a time with `open`, following labelled links "
        "from the home page to the fact a question names"
    ),
    "Memory-v0": (
        "facts told over many turns, asked about later, beyond the attention window: keep them "
        "with `write` and `read` memory tools"
    ),
    "Tally-v0": (
        "add up a row of digits mod 10: one addition per thinking token, or (hidden) read the "
        "digits one at a time with `read` and think between the calls"
    ),
    "Mixed-v0": (
        "a weighted mixture of the other environments (`include` picks them) with a task-type "
        "token after <task>, for multi-task training"
    ),
}
