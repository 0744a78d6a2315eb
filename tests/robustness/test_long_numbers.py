"""Numbers longer than any count a tool writes (2**64 has 20 digits): ``int()`` refuses a decimal
string of more than 4,300 digits with a bare ValueError, which came out of every parser as "internal
error" (exit 4). Each case is a real saved output of tests/data with one number made 5,000 digits
long (and 21 digits long, where the parser uses the number): a clean error naming the file, exit 3
through ``memgate parse``, never a record. Baselines and the config are in test_bad_files.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from fakeforge import FakeClock, FakeForge

from memgate.errors import MemgateError, ParseError
from memgate.forges.base import ForgeConfigError
from memgate.forges.ci import GitHubContext, GitLabContext
from memgate.forges.http import HttpClient, RetryPolicy
from memgate.proc import Outcome
from memgate.tools.base import ToolOptions
from memgate.tools.rusage import OUTPUT, RUSAGE, read_figures

from .clikit import memgate

DATA = Path(__file__).parent.parent / "data"
HUGE = b"9" * 5000
TOO_LONG = b"9" * 21  # one digit more than 2**64 has: no count is that long


@dataclass(frozen=True)
class Case:
    tool: str
    source: str  # under tests/data
    number: bytes  # a regular expression whose group 1 is the number replaced (its first match)
    used: bool = True  # the parser turns this number into a figure (else only its length can fail)
    read_whole: bool = True  # at 5,000 digits (else the parser reads only the file's last 4 KiB)


CASES: dict[str, Case] = {
    # ASan / LSan: leak records (on the record cache's miss path), frames, pids, SUMMARY, exit stats
    "asan-leak-bytes": Case("asan", "asan/gcc-asan-leaks.log", rb"Direct leak of (\d+) byte"),
    "asan-leak-blocks": Case("asan", "asan/gcc-asan-leaks.log", rb"Indirect leak of \d+ byte\(s\) in (\d+)"),
    "asan-frame-line": Case("asan", "asan/gcc-asan-leaks.log", rb"memprog\.c:(\d+)"),
    "asan-pid": Case("asan", "asan/gcc-asan-leaks.log", rb"==(\d+)==ERROR"),
    "asan-error-pid": Case("asan", "asan/gcc-asan-use-after-free.log", rb"==(\d+)==ERROR"),
    "asan-summary": Case("asan", "asan/gcc-asan-leaks.log", rb"SUMMARY: AddressSanitizer: (\d+) byte"),
    "asan-alloc-calls": Case("asan", "asan/clang-asan-leaks.log", rb"malloced \(0M for red zones\) by (\d+)"),
    "lsan-leak-bytes": Case("lsan", "asan/gcc-lsan-leaks.log", rb"Direct leak of (\d+) byte"),
    # memcheck text: the ==PID== prefix, frames, loss records, summaries
    "memcheck-text-pid": Case("valgrind", "memcheck/text-leaks-errors/memcheck.589.log", rb"^==(\d+)=="),
    "memcheck-text-frame-line": Case("valgrind", "memcheck/text-leaks-errors/memcheck.589.log",
                                     rb"\(memprog\.c:(\d+)\)"),
    "memcheck-text-loss-record": Case("valgrind", "memcheck/text-leaks-errors/memcheck.589.log",
                                      rb"(\d+) bytes in \d+ blocks are definitely lost"),
    "memcheck-text-heap-summary": Case("valgrind", "memcheck/text-leaks-errors/memcheck.589.log",
                                       rb"in use at exit: (\d+) bytes"),
    "memcheck-text-error-summary": Case("valgrind", "memcheck/text-leaks-errors/memcheck.589.log",
                                        rb"ERROR SUMMARY: (\d+) errors"),
    # memcheck XML
    "memcheck-xml-pid": Case("valgrind", "memcheck/leaks/memcheck.32639.xml", rb"<pid>(\d+)</pid>"),
    "memcheck-xml-leaked-bytes": Case("valgrind", "memcheck/leaks/memcheck.32639.xml",
                                      rb"<leakedbytes>(\d+)</leakedbytes>"),
    "memcheck-xml-error-count": Case("valgrind", "memcheck/errors/memcheck.32666.xml",
                                     rb"<count>(\d+)</count>"),
    "memcheck-xml-heap-summary": Case("valgrind", "memcheck/protocol6-leaks/memcheck.32639.xml",
                                      rb"<bytes>(\d+)</bytes>"),
    "memcheck-xml-frame-line": Case("valgrind", "memcheck/leaks/memcheck.32639.xml", rb"<line>(\d+)</line>"),
    # memcheck's xtree report (its totals are read from the last 4 KiB of the file)
    "memcheck-xtree-pid": Case("valgrind", "memcheck/leaks/memcheck.32639.xtmemory.kcg", rb"pid: (\d+)"),
    "memcheck-xtree-totals": Case("valgrind", "memcheck/leaks/memcheck.32639.xtmemory.kcg",
                                  rb"totals: (\d+)", read_whole=False),
    # massif, memusage, DHAT
    "massif-heap": Case("massif", "massif/massif.out.4242", rb"mem_heap_B=(\d+)"),
    "massif-tree-node": Case("massif", "massif/massif.out.4242", rb"\n *n(\d+): [1-9]"),
    "memusage-heap-total": Case("memusage", "memusage/run-peak-calls-fork/memusage.14441.stderr",
                                rb"heap total: (\d+)"),
    "memusage-malloc-calls": Case("memusage", "memusage/run-peak-calls-fork/memusage.14441.stderr",
                                  rb"malloc\|\S*\s+(\d+)"),
    "memusage-realloc-free": Case("memusage", "memusage/run-peak-calls-fork/memusage.14441.stderr",
                                  rb"free:(\d+)\)"),
    "dhat-total-bytes": Case("dhat", "dhat/threads.json", rb'"tb":(\d+)'),
    "dhat-pid": Case("dhat", "dhat/threads.json", rb'"pid":(\d+)'),
    "dhat-unused-figure": Case("dhat", "dhat/threads.json", rb'"tl":(\d+)', used=False),
}

def _write_case(case: Case, number: bytes, folder: Path) -> Path:
    source = DATA / case.source
    text = source.read_bytes()
    match = re.search(case.number, text, flags=re.MULTILINE)
    assert match is not None, f"no {case.number!r} in {case.source}"
    path = folder / source.name
    path.write_bytes(text[:match.start(1)] + number + text[match.end(1):])
    return path


@pytest.mark.parametrize("name", sorted(name for name, case in CASES.items() if case.read_whole))
def test_a_number_of_5000_digits_is_exit_3_naming_the_file(name: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the log of an internal error, if any
    case = CASES[name]
    path = _write_case(case, HUGE, tmp_path)
    run = memgate(capsys, "parse", "--tool", case.tool, path)
    run.one_error(3, f"({path})", "digits")


@pytest.mark.parametrize("name", sorted(name for name, case in CASES.items() if case.used))
def test_a_count_of_21_digits_is_no_figure(name: str, tmp_path: Path) -> None:
    """Shorter than int()'s limit, so no crash before either, but longer than any count: it never
    becomes a figure."""
    case = CASES[name]
    path = _write_case(case, TOO_LONG, tmp_path)
    from memgate.tools import get_tool

    with pytest.raises(ParseError) as raised:
        get_tool(case.tool).parse([path])
    assert raised.value.path == str(path)
    assert "21 digits" in raised.value.message or "20 digits" in raised.value.message  # what was wrong


def test_the_saved_outputs_are_read() -> None:
    """The cases above are edits of files that are themselves fine."""
    from memgate.tools import get_tool

    for case in CASES.values():
        records = get_tool(case.tool).parse([DATA / case.source])
        assert records and all(record.metrics for record in records), case.source


# --------------------------------------------------------------------------------------------------
# rusage: GNU time's report, read after a real run


@pytest.mark.skipif(shutil.which("time") is None, reason="GNU time is not installed")
@pytest.mark.parametrize("number", [TOO_LONG, HUGE], ids=["21-digits", "5000-digits"])
def test_a_gnu_time_report_with_a_number_longer_than_a_count_is_a_parse_error(number: bytes,
                                                                              tmp_path: Path) -> None:
    """memgate reads 4,096 characters of the report, so int() never failed here; a figure of 21
    digits or more still is no figure."""
    launch = RUSAGE.launch(["true"], tmp_path, ToolOptions())
    subprocess.run(launch.argv, env=launch.env, check=True)
    report = tmp_path / OUTPUT
    text = report.read_text()
    (record,) = RUSAGE.collect(tmp_path, Outcome(exit_code=0))
    assert record.complete and f"major={record.metrics['page_faults_major']}" in text
    report.write_text(re.sub(r"major=\d+", "major=" + number.decode(), text))
    for read in (lambda: read_figures(report), lambda: RUSAGE.collect(tmp_path, Outcome(exit_code=0))):
        with pytest.raises(ParseError) as raised:
            read()
        assert raised.value.path == str(report) and " digits (a count has at most 20)" in raised.value.message


# --------------------------------------------------------------------------------------------------
# Forges: pull/merge request numbers from the CI environment


def test_a_merge_request_iid_of_5000_digits_is_a_config_error() -> None:
    env = {"CI_API_V4_URL": "http://127.0.0.1:9/api/v4", "CI_PROJECT_ID": "7", "MEMGATE_GITLAB_TOKEN": "t",
           "CI_MERGE_REQUEST_IID": HUGE.decode()}
    with pytest.raises(ForgeConfigError, match="CI_MERGE_REQUEST_IID='9999.* is not a merge request number"):
        GitLabContext.from_env(env)
    env["CI_MERGE_REQUEST_IID"] = "12"
    assert GitLabContext.from_env(env).mr_iid == 12


def test_a_pull_request_ref_of_5000_digits_is_a_config_error() -> None:
    env = {"GITHUB_API_URL": "http://127.0.0.1:9", "GITHUB_REPOSITORY": "o/r", "GITHUB_TOKEN": "t",
           "GITHUB_EVENT_NAME": "merge_group", "GITHUB_REF": f"refs/pull/{HUGE.decode()}/merge"}
    with pytest.raises(ForgeConfigError) as raised:
        GitHubContext.from_env(env)
    assert "names no pull request number" in raised.value.one_line() and len(raised.value.one_line()) < 300
    env["GITHUB_REF"] = "refs/pull/31/merge"
    assert GitHubContext.from_env(env).pr_number == 31


def test_a_pull_request_number_of_5000_digits_in_the_event_file_is_a_config_error(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_bytes(b'{"pull_request": {"number": ' + HUGE + b"}}")
    env = {"GITHUB_API_URL": "http://127.0.0.1:9", "GITHUB_REPOSITORY": "o/r", "GITHUB_TOKEN": "t",
           "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)}
    with pytest.raises(MemgateError) as raised:
        GitHubContext.from_env(env)
    assert isinstance(raised.value, ForgeConfigError) and raised.value.path == str(event)


@pytest.mark.parametrize("value", ["nan", "inf", "9" * 5000], ids=["nan", "inf", "5000-digits"])
def test_a_retry_after_that_no_wait_can_be_is_not_waited(value: str) -> None:
    """float() takes "nan", "inf" and 5,000 digits (inf): the client waited NaN seconds, which
    time.sleep() refuses with a ValueError (exit 4); now such a header counts as absent."""
    clock = FakeClock()
    with FakeForge() as server, requests.Session() as session:
        session.trust_env = False
        server.script("GET", r"/api/v3/repos/octo-org/memprog/issues/7/comments", 429,
                      headers={"Retry-After": value})
        http = HttpClient(session, server.github_api_url, service="GitHub", sleep=clock.sleep,
                          clock=clock.time, auth_headers={"Authorization": f"Bearer {server.github_token}"})
        response = http.request("GET", "repos/octo-org/memprog/issues/7/comments")
    assert server.errors == []
    assert response.status_code == 200
    assert clock.sleeps == [RetryPolicy().secondary_limit_wait]
