"""Every user mistake is one line that says what to do, with an exit code, never a traceback:
config files, overrides, environment ids and bounds, output paths, a full disk."""

import errno
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentic_jax import cli
from agentic_jax.train import paths

pytestmark = pytest.mark.timeout(300)

READ_ONLY = Path("/sys/agentic-jax-test")  # not writable, even by root


def read_only_available() -> bool:
    try:
        READ_ONLY.mkdir()
    except OSError:
        return True
    READ_ONLY.rmdir()
    return False


needs_read_only = pytest.mark.skipif(
    not read_only_available(), reason="no read-only folder on this machine"
)


def one_line_error(argv, capsys) -> tuple[int, str]:
    """Run the CLI in-process: (exit code, the one line it printed to stderr)."""
    try:
        code = cli.main(argv)
        err = capsys.readouterr().err
    except SystemExit as stop:  # config errors exit with their message
        code, err = 1, str(stop.code)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert code != 0
    return code, lines[0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("algo:\n  lr: [1, 2\nenv: {id: x}\n", r"not valid YAML: line 3, column 4: expected ','"),
        ("", r"the file is empty: it would train the library defaults"),
        ("- 1\n- 2\n", r"a config is a mapping of keys .*, not a list"),
    ],
    ids=["syntax", "empty", "list"],
)
def test_bad_config_files_name_the_file_and_the_problem(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for command in ("train", "sweep"):
        _, line = one_line_error([command, str(path), "--run-dir" if command == "train"
                                  else "--out", str(tmp_path / "out")], capsys)  # fmt: skip
        assert line.startswith(f"error: {path}: ")
        assert re.search(message, line), line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("env.overrides.max_len=abc", "override max_len='abc' has type str, expected int"),
        ("env.id=NoSuch-v0", "unknown environment id 'NoSuch-v0'; valid ids: KBLookup-v0"),
        ("env.overrides.hops=7", "hops=7 is outside its valid range [1, 2]"),
        ("env.overrides.split=5", "split=5 is outside its valid range [0, 1]"),
        ("curriculum.levels=[{hops: 3}]", "hops=3 is outside its valid range [1, 2]"),
        ("algo.lr=[1", "the value is not valid YAML"),
    ],
)
def test_bad_overrides_are_one_line(tmp_path, capsys, override, message):
    # A config without stages: a curriculum cannot be combined with per-stage env overrides.
    command = ["train", "kblookup_sft_rl", override, "--run-dir", str(tmp_path / "run")]
    _, line = one_line_error(command, capsys)
    assert message in line, line
    assert not (tmp_path / "run").exists()  # refused before any run directory is made


@needs_read_only
def test_a_read_only_run_dir_is_refused_before_any_work(capsys):
    _, line = one_line_error(["train", "--run-dir", str(READ_ONLY / "run")], capsys)
    assert line == (f"error: --run-dir {READ_ONLY / 'run'}: cannot write there "
                    "(Operation not permitted); choose another --run-dir")  # fmt: skip


def test_a_run_dir_that_is_a_file_is_refused(tmp_path, capsys):
    file = tmp_path / "a_file"
    file.write_text("x")
    _, line = one_line_error(["train", "--run-dir", str(file)], capsys)
    assert line == f"error: --run-dir {file} is a file, not a folder; choose another --run-dir"
    _, line = one_line_error(["train", "--run-dir", str(file / "sub")], capsys)
    assert f"{file} is a file, not a folder" in line


@needs_read_only
def test_render_and_plot_check_their_output_before_any_work(tmp_path, capsys):
    # The run directory does not exist either: the output is checked first, so the error
    # comes before the 20 s of sampling a real run would take.
    missing = str(tmp_path / "no_run")
    _, line = one_line_error(["render", missing, "--html", str(READ_ONLY / "t.html")], capsys)
    assert line.startswith(f"error: --html {READ_ONLY / 't.html'}: cannot write there")
    _, line = one_line_error(["plot", missing, "--out", str(READ_ONLY / "c.png")], capsys)
    assert line.startswith(f"error: --out {READ_ONLY / 'c.png'}: cannot write there")
    _, line = one_line_error(["envcheck", "KBLookup-v0", "--out", str(READ_ONLY)], capsys)
    assert line.startswith(f"error: --out {READ_ONLY}: cannot write there")


def test_a_full_disk_is_refused_up_front(tmp_path, capsys, monkeypatch):
    class Usage:
        free = 1024

    monkeypatch.setattr(paths.shutil, "disk_usage", lambda path: Usage)
    _, line = one_line_error(["train", "--run-dir", str(tmp_path / "run")], capsys)
    assert "0 MiB free on its disk, but 4 checkpoints need about" in line, line
    assert "free some space or choose another --run-dir" in line


def test_no_space_while_probing_says_so(tmp_path, capsys, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    _, line = one_line_error(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")], capsys)
    assert (
        line == f"error: --out {tmp_path / 'c.png'}: no space left on the device; "
        "free some or write elsewhere"
    )


@pytest.mark.slow  # long: moved out of the first stage's 10 minutes
@needs_read_only
def test_the_installed_command_prints_no_traceback(tmp_path):
    """The same mistakes through a real process: exit code 2 and one line on stderr."""
    for argv in (["train", "--run-dir", str(READ_ONLY / "run")],
                 ["train", "env.overrides.hops=7", "--run-dir", str(tmp_path / "r")]):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "agentic_jax.cli", *argv],
                              capture_output=True, text=True, timeout=240)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["render", "x", "--count", "-1"], "argument --count: -1 must be at least 1"),
        (["render", "x", "--count", "0"], "argument --count: 0 must be at least 1"),
        (["eval", "x", "--episodes", "0"], "argument --episodes: 0 must be at least 1"),
        (["eval", "x", "--pass-at-k", "two"], "argument --pass-at-k: 'two' is not an integer"),
    ],
)
def test_counts_below_one_are_refused_by_the_parser(capsys, argv, message):
    """They used to be a raw JAX broadcast error, 512 episodes, or nothing printed."""
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_help_names_the_configs_and_where_keys_are(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "agentic_jax/train/config.py" in out and "kblookup_ppo" in out


def test_overrides_are_taken_anywhere_after_the_command():
    from agentic_jax.cli import parse

    args = parse(["train", "kbgather_delegate", "--run-dir", "D", "seed=8", "updates=3"])
    assert args.items == ["kbgather_delegate", "seed=8", "updates=3"] and args.run_dir == "D"
    with pytest.raises(SystemExit):
        parse(["eval", "RUN", "seed=8"])  # eval takes no overrides
