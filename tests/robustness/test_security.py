"""Security: tool-provided text reaches the PR comment inert, a suite name reaches no path outside
baselines/, a command is an argument list unless the config asks for a shell, the forge tokens
reach no suite, log or report, and a slow or hostile forge (or a FIFO handed to `memgate comment`)
neither holds the job nor writes a line of the log.

A C program cannot name a function "@admins" or "<img>", so the hostile names are put into saved
real tool outputs by hand and go the whole way: the real parser, the comparison, the Markdown."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from fakeforge import FakeForge, github_env

from memgate.comparison import compare
from memgate.records import SuiteRecord, combine_processes
from memgate.report.markdown import MARKER, render_markdown
from memgate.tools import TOOL_NAMES, get_tool

from .clikit import memgate, suite_config, toml_string, tree_snapshot

DATA = Path(__file__).parent.parent / "data"

# Names no C compiler makes, each aimed at one way Markdown or HTML could come alive in a comment.
HOSTILE_NAMES = [
    "@admins",  # a mention that notifies a team
    "@org/security-team",
    "#1234",  # an issue reference
    "<img src=x onerror=alert(1)>",
    "</details><details open>",  # breaks out of our <details>
    "<!--",  # hides the rest of the comment
    MARKER,  # a second marker would make the bot update the wrong comment
    "x|y|z",  # splits a table cell
    "[click](https://evil.example/x)",  # a link
    "https://evil.example/auto",  # an autolink
    "``backticks``",
    "**bold**_under_",
    "\u202eevil",  # right-to-left override
]
HOSTILE_PATH = "/tmp/<b>@team|#77/[x](y).c"
HOSTILE_SUITE = "@admins|<b>bold</b>#12"

OUR_TAGS = re.compile(r"</?(details|summary|code|sub)>|<!-- memgate:report -->")
FENCE = re.compile(r"^(`{3,})text\n.*?^\1$", re.MULTILINE | re.DOTALL)


def outside_code(markdown: str) -> str:
    return FENCE.sub("", markdown)


def assert_inert(markdown: str) -> None:
    """Nothing of a tool's text is alive: tags, mentions, references, links, broken tables."""
    outside = outside_code(markdown)
    assert markdown.count(MARKER) == 1 and markdown.startswith(MARKER)
    assert not OUR_TAGS.sub("", outside).count("<"), "raw HTML got through"
    assert outside.count("<details>") == outside.count("</details>")
    assert not re.search(r"@[\w-]", markdown), "a mention got through"
    assert not re.search(r"#\d", re.sub(r"&#\d+;", "", outside)), "an issue reference got through"
    assert "](" not in outside and "https://evil" not in outside, "a link got through"
    assert "\u202e" not in markdown
    for line in outside.splitlines():
        if line.startswith("| ") and "suite | tool" not in line and "metric | baseline" not in line:
            assert len(re.split(r"(?<!\\)\|", line)) - 2 in (5, 6), line


def comment_of(tool: str, path: Path, suite: str = HOSTILE_SUITE) -> str:
    processes = get_tool(tool).parse([path])
    record = SuiteRecord(name=suite, tool=tool, processes=tuple(processes),
                         metrics=combine_processes(processes))
    return render_markdown(compare([record], {}))


def with_names(text: str, old: str, names: list[str], *, xml: bool = False) -> str:
    """``old`` replaced by each hostile name in turn, one occurrence each."""
    for name in names:
        assert old in text
        text = text.replace(old, escape(name) if xml else name, 1)
    return text


def test_hostile_function_names_in_a_real_memcheck_xml(tmp_path: Path) -> None:
    text = (DATA / "memcheck" / "leaks" / "memcheck.32639.xml").read_text()
    names = HOSTILE_NAMES[:4]
    text = with_names(text, "<fn>main</fn>", [f"<fn>{escape(name)}</fn>" for name in names])
    text = text.replace("<dir>/work/main/tests/programs</dir>", f"<dir>{escape(HOSTILE_PATH)}</dir>", 1)
    path = tmp_path / "memcheck.1.xml"
    path.write_text(text)
    markdown = comment_of("valgrind", path)
    assert_inert(markdown)
    assert "<code>leak_small &lt; @\u200badmins</code>" in markdown
    assert "<code>leak_tree &lt; &lt;img src=x onerror=alert&#40;1&#41;&gt;</code>" in markdown
    # in a fenced block nothing is interpreted; only the mention is broken there
    assert "leak_small (/tmp/<b>@\u200bteam|#77/[x](y).c/memprog.c:25)\n" in markdown


def test_hostile_names_in_a_real_memcheck_text_log(tmp_path: Path) -> None:
    text = (DATA / "memcheck" / "text-leaks-errors" / "memcheck.589.log").read_text()
    names = [name for name in HOSTILE_NAMES if " " not in name and "(" not in name]
    text = with_names(text, "main (memprog.c:", [f"{name} (memprog.c:" for name in names])
    text = text.replace("Invalid read of size 4", "Invalid read of size 4 @admins <b>|x|</b>", 1)
    path = tmp_path / "memcheck.589.log"
    path.write_text(text)
    markdown = comment_of("valgrind", path)
    assert_inert(markdown)
    assert "x\\|y\\|z" in markdown or "x&#124;y&#124;z" in markdown


@pytest.mark.parametrize("source", ["gcc-asan-leaks.log", "clang-asan-leaks.log"])
def test_hostile_names_in_real_asan_leak_reports(source: str, tmp_path: Path) -> None:
    text = (DATA / "asan" / source).read_text()
    names = [name for name in HOSTILE_NAMES if " " not in name]
    text = re.sub(r" in main ", lambda _: f" in {names.pop(0) if names else 'main'} ", text)
    text = text.replace(" in leak_small ", f" in leak_small {HOSTILE_PATH}:3 ", 1)
    path = tmp_path / "asan.1"
    path.write_text(text)
    markdown = comment_of("asan", path)
    assert_inert(markdown)
    assert MARKER in markdown and "new definite leak" in markdown


def test_a_hostile_error_description_in_a_real_asan_report(tmp_path: Path) -> None:
    text = (DATA / "asan" / "gcc-asan-use-after-free.log").read_text()
    hostile = "READ of size 4 @admins </summary><img src=x> [x](https://evil.example) at"
    text = text.replace("READ of size 4 at", hostile)
    path = tmp_path / "asan.2"
    path.write_text(text)
    (process,) = get_tool("asan").parse([path])
    assert "@admins" in process.errors[0].description  # the parser keeps it; the comment defuses it
    markdown = comment_of("asan", path)
    assert_inert(markdown)


def test_a_crafted_report_through_memgate_compare(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON report from an untrusted fork's run, with hostile suite and function names, rendered by
    ``memgate compare --markdown``."""
    xml = tmp_path / "memcheck.9.xml"
    text = (DATA / "memcheck" / "errors" / "memcheck.32666.xml").read_text()
    xml.write_text(with_names(text, "<fn>main</fn>", [f"<fn>{escape(n)}</fn>" for n in HOSTILE_NAMES[:3]]))
    processes = get_tool("valgrind").parse([xml])
    suites = [SuiteRecord(name=name, tool="valgrind", processes=tuple(processes),
                          metrics=combine_processes(processes)).model_dump(mode="json")
              for name in (HOSTILE_SUITE, "ok|</details>", "@here")]
    report = tmp_path / "fork.json"
    report.write_text(json.dumps({"schema_version": 1, "memgate_version": "0.1.0",
                                  "created_at": "2024-01-01T00:00:00+00:00", "suites": suites}))
    (tmp_path / "baselines").mkdir()
    run = memgate(capsys, "compare", tmp_path / "baselines", report, "--markdown", tmp_path / "comment.md")
    run.assert_clean()
    assert run.code == 1  # new errors fail
    assert_inert((tmp_path / "comment.md").read_text())
    assert "\x1b" not in run.out


# --------------------------------------------------------------------------------------------------
# Suite names and paths


def test_a_crafted_suite_name_reaches_no_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A report whose suite is named "../../x": ``compare`` looks baselines up by name, never by path,
    and ``baseline update --from-report`` refuses to make it a file name."""
    suite = {"name": "../../x", "tool": "rusage", "metrics": {"rss_peak_bytes": 1000}}
    report = tmp_path / "fork.json"
    report.write_text(json.dumps({"schema_version": 1, "memgate_version": "0.1.0",
                                  "created_at": "2024-01-01T00:00:00+00:00", "suites": [suite]}))
    project = tmp_path / "deep" / "er"
    project.mkdir(parents=True)
    config = suite_config(project, ["/bin/true"], "rusage", name="a")
    (project / "baselines").mkdir()
    before = tree_snapshot(tmp_path)

    compared = memgate(capsys, "compare", project / "baselines", report, "--markdown", tmp_path / "c.md")
    compared.assert_clean()
    assert compared.code == 0 and compared.error_lines == []
    update = memgate(capsys, "baseline", "update", "--config", config, "--from-report", report)
    update.one_error(2, "'../../x' is not a usable suite name", str(project / "baselines"))
    after = tree_snapshot(tmp_path)
    assert {name: data for name, data in after.items() if name != "c.md"} == before
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "deep" / "x.json").exists()


# --------------------------------------------------------------------------------------------------
# A command is an argument list; a shell only when the config says so


@pytest.mark.parametrize("argument", ["hello; touch pwned", "$(touch pwned)", "`touch pwned`",
                                      "a && touch pwned", "| touch pwned"])
def test_a_command_is_an_argument_list(argument: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    config = suite_config(tmp_path, ["/bin/echo", argument], "rusage")
    run = memgate(capsys, "run", "--config", config, "--jobs", "1")
    assert run.code == 0, run.err
    assert not (tmp_path / "pwned").exists(), "a shell ran the argument"
    assert (tmp_path / ".memgate" / "artifacts" / "unit" / "stdout.log").read_text() == argument + "\n"


def test_a_shell_runs_only_when_the_config_says_shell_true(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "memgate.toml"
    config.write_text('[[suite]]\nname = "unit"\ncommand = "echo hello; touch pwned"\ntool = "rusage"\n')
    refused = memgate(capsys, "run", "--config", config)
    refused.one_error(2, "command is a string", "shell = true")
    assert not (tmp_path / "pwned").exists()

    config.write_text('[[suite]]\nname = "unit"\ncommand = "echo hello; touch pwned"\ntool = "rusage"\n'
                      "shell = true\n")
    assert memgate(capsys, "run", "--config", config).code == 0
    assert (tmp_path / "pwned").exists()


# --------------------------------------------------------------------------------------------------
# No secret in reports or logs

TOKENS = {"GITHUB_TOKEN": "ghp_s3cr3tTokenValue0000000000000000000",
          "MEMGATE_GITLAB_TOKEN": "glpat-s3cr3tGitLab99"}
NEEDS = {"memcheck": "valgrind", "dhat": "valgrind", "massif": "valgrind", "heaptrack": "heaptrack"}


@pytest.mark.parametrize("tool", [tool for tool in TOOL_NAMES if tool != "go"])  # go: test_go.py
def test_forge_tokens_reach_no_suite_log_or_report(tool: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The suite prints its whole environment (as a failing test's diagnostics might). memgate keeps
    the forge tokens it was given for its comment out of the suites' environment, so they appear in
    no log that CI uploads as an artifact, no report, and nothing memgate prints."""
    if tool in NEEDS and shutil.which(NEEDS[tool]) is None:
        pytest.skip(f"{NEEDS[tool]} is not installed")
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MEMGATE_CANARY", "visible-to-the-suite")
    config = suite_config(tmp_path, ["/usr/bin/env"], tool)
    reports = [part for flag in ("json", "markdown", "junit", "sarif", "codequality", "openmetrics")
               for part in (f"--{flag}", str(tmp_path / "reports" / f"report.{flag}"))]
    run = memgate(capsys, "check", "--config", config, "--jobs", "1", *reports)
    run.assert_clean()
    stdout_log = tmp_path / ".memgate" / "artifacts" / "unit" / "stdout.log"
    assert "MEMGATE_CANARY=visible-to-the-suite" in stdout_log.read_text()  # the rest is inherited
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) > 8
    for value in TOKENS.values():
        assert value not in run.out and value not in run.err
        for path in files:
            assert value.encode() not in path.read_bytes(), path
    for name in TOKENS:
        assert f"{name}=" not in stdout_log.read_text()


def test_a_suite_may_still_set_a_token_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKENS["GITHUB_TOKEN"])
    config = suite_config(tmp_path, ["/usr/bin/env"], "rusage",
                          suite=f"env = {{ GITHUB_TOKEN = {toml_string('from-the-config')} }}")
    assert memgate(capsys, "run", "--config", config).code == 0
    printed = (tmp_path / ".memgate" / "artifacts" / "unit" / "stdout.log").read_text()
    assert "GITHUB_TOKEN=from-the-config\n" in printed and TOKENS["GITHUB_TOKEN"] not in printed


# A slow, hostile or echoing forge, and what `memgate comment` is handed

LIST_PATH = r"/api/v3/repos/octo-org/memprog/issues/7/comments"
FORGED_LINE = re.compile(r"^\s*memgate: PASS", re.MULTILINE)


@pytest.fixture
def forge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeForge]:
    """A local GitHub stand-in, and the environment of a pull_request run pointing at it."""
    with FakeForge() as server:
        for name, value in github_env(server, tmp_path).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("MEMGATE_FORGE_MAX_WAIT", raising=False)
        yield server
    assert server.errors == []


def report_file(folder: Path) -> Path:
    path = folder / "memgate.md"
    path.write_text("## memgate: 1 suite passed\n")
    return path


def committed_config(folder: Path) -> Path:
    """A git repository at ``folder`` whose one commit holds a config of one rusage suite of /bin/true."""
    config = suite_config(folder, ["/bin/true"], "rusage")
    for command in (["init", "-q"], ["add", "memgate.toml"], ["commit", "-qm", "config"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *command],
                       cwd=folder, check=True)
    return config


@pytest.mark.parametrize("slow", ["drip", "header_drip"])
def test_a_forge_sending_its_body_slowly_never_holds_check(
    forge: FakeForge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    slow: str
) -> None:
    """Each byte of the comment list (or of its headers) comes in time for a read;
    MEMGATE_FORGE_MAX_WAIT bounds the whole step: the gate's own verdict and reports are out at once,
    with a warning."""
    forge.script("GET", LIST_PATH, 200, body="[" + " " * 40 + "]", **{slow: 0.2})  # 8 s or more in all
    monkeypatch.setenv("MEMGATE_FORGE_MAX_WAIT", "1")
    config = committed_config(tmp_path)
    started = time.monotonic()
    run = memgate(capsys, "check", "--config", config, "--base-ref", "HEAD", "--comment")
    assert time.monotonic() - started < 4
    run.assert_clean()
    assert run.code == 0, "the gate's verdict, as without --comment"
    assert ("memgate: warning: no comment posted: GitHub: GET /api/v3/repos/octo-org/memprog/issues/7/"
            "comments: no complete answer within the 1 s memgate gives the forge") in run.err
    assert forge.writes() == []


@pytest.mark.parametrize("status", [200, 422])
def test_a_forge_answer_of_deeply_nested_json_is_a_warning(
    forge: FakeForge, tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    """Thousands of '[' for the comment list (or its error): one warning line, the gate's verdict."""
    forge.script("GET", LIST_PATH, status, body="[" * 100_000 + "]" * 100_000, times=5)
    config = committed_config(tmp_path)
    run = memgate(capsys, "check", "--config", config, "--base-ref", "HEAD", "--comment")
    run.assert_clean()
    assert run.code == 0, "the gate's verdict, as without --comment"
    warning = [line for line in run.err.splitlines()
               if line.startswith("memgate: warning: no comment posted")]
    assert len(warning) == 1
    assert ("with a list of comments memgate cannot read" if status == 200
            else "(an answer of JSON nested too deeply to read)") in warning[0]
    assert forge.writes() == []


def test_comment_ends_within_the_budget_and_says_so(
    forge: FakeForge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    forge.script("GET", LIST_PATH, 200, body="[" + " " * 40 + "]", drip=0.2)
    monkeypatch.setenv("MEMGATE_FORGE_MAX_WAIT", "1")
    started = time.monotonic()
    run = memgate(capsys, "comment", "--markdown", report_file(tmp_path))
    assert time.monotonic() - started < 2.5
    assert run.code == 3 and "raise MEMGATE_FORGE_MAX_WAIT" in run.err
    assert forge.writes() == []


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_a_budget_that_never_ends_is_refused(
    value: str, forge: FakeForge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked as every MEMGATE_* variable is, before anything runs: a usage error (exit 2) naming it."""
    monkeypatch.setenv("MEMGATE_FORGE_MAX_WAIT", value)
    run = memgate(capsys, "comment", "--markdown", report_file(tmp_path))
    run.one_error(2, f"environment variable MEMGATE_FORGE_MAX_WAIT: '{value}' is not a number of seconds")
    assert forge.requests == []


def test_forge_text_cannot_forge_a_log_line(
    forge: FakeForge, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A forge's error message (logged while retrying) and the comment URL it answers hold line
    breaks and terminal escapes: they are printed escaped, so no `memgate: PASS` line appears."""
    forge.script("GET", LIST_PATH, 429, headers={"Retry-After": "0"},
                 body={"message": "slow down\nmemgate: PASS\x1b[2K"})
    hostile_url = "https://github.example.test/x\r\nmemgate: PASS\x1b]0;title\x07"
    forge.script("POST", LIST_PATH, 201, body={"id": 1, "html_url": hostile_url})
    run = memgate(capsys, "comment", "--markdown", report_file(tmp_path))
    assert run.code == 0
    shown = "https://github.example.test/x\\r\\nmemgate: PASS\\x1b]0;title\\x07"
    assert f"memgate: posted the comment {shown}\n" in run.err
    assert "(slow down\\nmemgate: PASS\\x1b[2K); retrying in 0 s" in caplog.text
    for text in (run.err, caplog.text):
        assert not FORGED_LINE.search(text), text
        assert "\x1b" not in text and "\r" not in text


def test_a_forge_echoing_the_token_in_any_form_never_prints_it(
    forge: FakeForge, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The token across the 300-character cut, base64-encoded in a Basic header, in a URL's user info."""
    token = forge.github_token
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    message = f"Authorization: Basic {basic}; at https://oauth2:{token}@h.example/x; " + "x" * 180 + token
    forge.script("GET", LIST_PATH, 403, body={"message": message})
    run = memgate(capsys, "comment", "--markdown", report_file(tmp_path))
    assert run.code == 3 and "no comment posted" in run.err
    assert token[:4] not in run.err and basic[20:28] not in run.err and "oauth2:***@h.example" in run.err


SPECIAL_FILES = {
    "a FIFO": lambda folder: _fifo(folder / "report.fifo"),
    "/dev/zero": lambda folder: Path("/dev/zero"),
    "a folder": lambda folder: folder,
}


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("kind", SPECIAL_FILES)
def test_comment_refuses_what_is_not_a_regular_file_at_once(
    kind: str, forge: FakeForge, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO would block the open (a writer comes only after 3 s here, so that a memgate that waits
    fails rather than hangs); /dev/zero never ends. Neither is read, nor posted."""
    path = SPECIAL_FILES[kind](tmp_path)
    writer = threading.Timer(3, _unblock, (path,))
    writer.start()
    try:
        started = time.monotonic()
        run = memgate(capsys, "comment", "--markdown", path)
        assert time.monotonic() - started < 1
    finally:
        writer.cancel()
        writer.join()
    run.one_error(2, "the Markdown file is not a regular file (a FIFO, a device or a folder)", str(path))
    assert forge.requests == []


def _unblock(path: Path) -> None:
    if path.is_fifo():
        with path.open("w") as fifo:
            fifo.write("## memgate: from the FIFO\n")


def test_comment_refuses_a_file_over_the_cap(forge: FakeForge, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.md"
    path.write_bytes(b"x" * 1_000_001)
    run = memgate(capsys, "comment", "--markdown", path)
    run.one_error(2, "the Markdown file holds more than the 1,000,000 bytes memgate posts", str(path))
    assert forge.requests == []


def test_tool_output_quoted_in_an_error_is_one_clean_line(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The tool's name in a Valgrind XML holds a line break and a C1 escape (both legal XML)."""
    xml = tmp_path / "memcheck.xml"
    xml.write_text('<?xml version="1.0"?>\n<valgrindoutput>\n<protocolversion>4</protocolversion>\n'
                   "<protocoltool>helgrind\n\x9b2Jmemgate: PASS</protocoltool>\n</valgrindoutput>\n")
    run = memgate(capsys, "parse", "--tool", "valgrind", xml)
    line = run.one_error(3, "Valgrind XML of the helgrind \\x9b2Jmemgate: PASS tool, not memcheck")
    assert run.err == line + "\n"
    assert not FORGED_LINE.search(run.err)
