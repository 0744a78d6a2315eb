"""Suppressions under the gate (issue 14 part 2), end to end: real suppression files given to real
memcheck and ASan/LSan runs of tests/programs/memprog.c, what each hid in the report, stale ones listed,
and a pull request that adds a suppression for its own new leak (real git repository, --base-ref)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memgate.cli import main
from tests.cli.test_check import check, git_in
from tests.conftest import BuildProgram

VALGRIND_SUPP = """\
# known noise of a library we do not own
{
   small-leak
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:leak_small
   ...
}
{
   never-used
   Memcheck:Leak
   fun:malloc
   fun:no_such_function
}
"""
LSAN_SUPP = "# known noise\nleak:leak_small\nleak:^no_such_function$\n"
HIDE_MY_LEAK = {
    "valgrind.supp": "{\n   hide-my-new-leak\n   Memcheck:Leak\n   fun:malloc\n   fun:leak_many\n}\n",
    "lsan.supp": "leak:leak_many\n",
}


def project(folder: Path, binary: Path, tool: str, *scenarios: str, suppressions: str = "") -> Path:
    """memgate.toml of one suite ``unit`` running ``binary scenarios...`` under ``tool``, with both
    suppression files at the top level (each tool takes the one of its format)."""
    folder.mkdir(exist_ok=True)
    (folder / "valgrind.supp").write_text(VALGRIND_SUPP + suppressions)
    (folder / "lsan.supp").write_text(LSAN_SUPP)
    args = "".join(f', "{scenario}"' for scenario in scenarios)
    config = folder / "memgate.toml"
    config.write_text(f'suppressions = ["valgrind.supp", "lsan.supp"]\n\n[[suite]]\nname = "unit"\n'
                      f'command = ["{binary}"{args}]\ntool = "{tool}"\n')
    return config


@pytest.fixture
def binaries(build_program: BuildProgram) -> dict[str, Path]:
    return {"memcheck": build_program("memprog.c"),
            "asan": build_program("memprog.c", flags=("-fsanitize=address",))}


@pytest.mark.parametrize("tool", ["memcheck", "asan"])
def test_a_suppression_hides_a_known_leak_and_the_reports_say_what_it_hid_and_what_is_stale(
    tmp_path: Path, binaries: dict[str, Path], tool: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(tmp_path, binaries[tool], tool, "leak_small", "leak_many")
    assert main(["baseline", "update", "--config", str(config), "--jobs", "1"]) == 0
    baseline = json.loads((tmp_path / "baselines" / "unit.json").read_text())
    assert baseline["metrics"]["leak_definite_bytes"] == 300, "leak_small's 16 bytes are hidden"
    assert [site["bytes"] for site in baseline["leaks"]] == [300]

    capsys.readouterr()
    assert check(config, "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "c.md")) == 0
    suite = json.loads((tmp_path / "r.json").read_text())["suites"][0]
    file = "valgrind.supp" if tool == "memcheck" else "lsan.supp"
    hid = {"memcheck": [("small-leak", 1, None), ("never-used", 0, 0)],
           "asan": [("leak_small", 1, 16), ("^no_such_function$", 0, 0)]}[tool]
    assert [(use["name"], use["file"], use["count"], use["bytes"]) for use in suite["suppressions"]] == [
        (name, file, count, size) for name, count, size in hid]
    out = capsys.readouterr().out
    used, stale = hid[0][0], hid[1][0]
    assert f"unit: suppressions hid: `{used}` ({file}) 1" in out
    assert f"unit: stale suppressions (hid nothing in this run): `{stale}` ({file})" in out
    markdown = (tmp_path / "c.md").read_text()
    assert "suppressions hid:" in markdown and "stale suppressions" in markdown


def test_lsan_reads_the_leak_lines_and_memcheck_the_blocks_of_the_same_top_level_list(
    tmp_path: Path, binaries: dict[str, Path]
) -> None:
    """The launch of each tool: memcheck gets --suppressions=valgrind.supp only; ASan's leak check gets
    one joined file of the leak: lines in LSAN_OPTIONS (LSan takes a single file)."""
    from memgate.config import load_config
    from memgate.tools import get_tool
    from memgate.tools.base import ToolOptions

    config = load_config(project(tmp_path, binaries["asan"], "asan"))
    suite = config.suites[0]
    files = tuple(config.suppressions_for(suite))
    assert [file.shown for file in files] == ["lsan.supp"]
    logdir = tmp_path / "logs"
    logdir.mkdir()
    launch = get_tool("asan").launch(["true"], logdir, ToolOptions(suppressions=files))
    assert f"suppressions={logdir.resolve()}/memgate-lsan-suppressions" in launch.env["LSAN_OPTIONS"]
    assert "leak:leak_small" in (logdir / "memgate-lsan-suppressions").read_text()
    memcheck = config.model_copy(update={"suites": [suite.model_copy(update={"tool": "memcheck"})]})
    valgrind_files = memcheck.suppressions_for(memcheck.suites[0])
    argv = get_tool("memcheck").launch(["true"], logdir, ToolOptions(suppressions=tuple(valgrind_files))).argv
    assert [arg for arg in argv if arg.startswith("--suppressions")] == [
        f"--suppressions={(tmp_path / 'valgrind.supp').resolve()}"]


@pytest.mark.parametrize(("problem", "expected"), [
    ("missing", "suppression file gone.supp not found"),
    ("wrong format", "suppression file lsan.supp is in lsan format, which memcheck does not read"),
    ("outside", "is not a path inside the project"),
])
def test_a_bad_suppression_file_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, binaries: dict[str, Path], capsys: pytest.CaptureFixture[str], problem: str, expected: str
) -> None:
    config = project(tmp_path, binaries["memcheck"], "memcheck", "clean")
    own = {"missing": "gone.supp", "wrong format": "lsan.supp", "outside": "../x.supp"}[problem]
    config.write_text(config.read_text() + f'suppressions = ["{own}"]\n')
    capsys.readouterr()
    assert check(config) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err and "memgate.toml" in err


@pytest.mark.parametrize("tool", ["memcheck", "asan"])
def test_a_pull_request_cannot_hide_its_own_new_leak_with_a_suppression(
    tmp_path: Path, binaries: dict[str, Path], tool: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    config = project(repo, binaries[tool], tool, "leak_small")
    git = git_in(repo)
    git("init", "-q", "-b", "main")
    assert main(["baseline", "update", "--config", str(config), "--jobs", "1"]) == 0
    git("add", "-A")
    git("commit", "-q", "-m", "gate with a known, suppressed leak")
    target = git("rev-parse", "HEAD")

    # The request adds a leak and a suppression for it, in the file the config already names.
    git("checkout", "-q", "-b", "pr")
    project(repo, binaries[tool], tool, "leak_small", "leak_many")
    supp = "valgrind.supp" if tool == "memcheck" else "lsan.supp"
    (repo / supp).write_text((repo / supp).read_text() + HIDE_MY_LEAK[supp])
    git("commit", "-qam", "hide my leak")

    assert check(config) == 0, "with its own suppressions the request would pass"
    capsys.readouterr()
    assert check(config, "--base-ref", target, "--markdown", str(tmp_path / "pr.md")) == 1
    out = capsys.readouterr().out
    assert "new definite leak at leak_many < main" in out
    name = "hide-my-new-leak" if tool == "memcheck" else "leak_many"
    markdown = (tmp_path / "pr.md").read_text()
    assert f"this request adds or edits suppressions \\({supp}\\)" in markdown
    assert (f"suite unit: the request's own suppressions would hide 1 leak of this run: definite 300 B at "
            f"leak\\_many &lt; main by \\`{name.replace('_', chr(92) + '_')}\\` \\({supp}\\)") in markdown
