"""The bad-input matrix, file side: folders memgate cannot write, baseline files that are corrupt,
foreign or from a newer memgate, and every configuration key with a value that is wrong. Each through
the real CLI: one ``memgate: error:`` line naming the file (and the key), exit 2 or 3, nothing
overwritten."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from memgate.baselines.model import Baseline
from memgate.config import Config, SuiteConfig, parse_config
from memgate.errors import ConfigError
from memgate.thresholds import Threshold
from tests.baselines.conftest import Remote, git
from tests.conftest import BuildProgram

from .clikit import memgate, suite_config, tree_snapshot

# --------------------------------------------------------------------------------------------------
# Folders that cannot be written. The tests run as root, who may write anywhere: a path that goes
# through a regular file (ENOTDIR) is unwritable for everyone.


@pytest.fixture(scope="module")
def clean_program(build_program: BuildProgram) -> list[str]:
    return [str(build_program("memprog.c")), "clean"]


def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "somefile"
    path.write_text("not a folder\n")
    return path


@pytest.mark.parametrize("command", ["check", "run"])
def test_artifacts_folder_that_cannot_exist_is_exit_2_naming_it(
    command: str, clean_program: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file(tmp_path)
    config = suite_config(tmp_path, clean_program, "rusage", top='artifacts_dir = "somefile/x"')
    run = memgate(capsys, command, "--config", config, "--jobs", "1")
    run.one_error(2, str(tmp_path / "somefile" / "x" / "report.json"), "Not a directory", "writable path")


def test_artifacts_folder_that_cannot_exist_with_the_report_elsewhere_is_exit_3_naming_it(
    clean_program: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file(tmp_path)
    config = suite_config(tmp_path, clean_program, "rusage", top='artifacts_dir = "somefile/x"')
    run = memgate(capsys, "check", "--config", config, "--json", tmp_path / "report.json")
    run.one_error(3, "cannot prepare the artifacts folder: Not a directory",
                  str(tmp_path / "somefile" / "x" / "unit"), "artifacts_dir")
    (suite,) = json.loads((tmp_path / "report.json").read_text())["suites"]
    assert suite["status"] == "incomplete"


@pytest.mark.parametrize("flag", ["--markdown", "--junit", "--sarif", "--codequality", "--openmetrics",
                                  "--json"])
def test_a_report_path_that_cannot_be_written_is_exit_2_naming_it(
    flag: str, clean_program: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file(tmp_path)
    config = suite_config(tmp_path, clean_program, "rusage")
    target = tmp_path / "somefile" / "report.out"
    run = memgate(capsys, "check", "--config", config, "--jobs", "1", flag, target)
    run.one_error(2, str(target), "cannot write")


def test_a_baseline_folder_that_cannot_exist_is_exit_2_and_nothing_is_written(
    clean_program: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file(tmp_path)
    config = suite_config(tmp_path, clean_program, "rusage", top='baseline_dir = "somefile/x"')
    before = tree_snapshot(tmp_path)
    run = memgate(capsys, "baseline", "update", "--config", config, "--jobs", "1")
    run.one_error(2, "cannot write the baseline: Not a directory",
                  str(tmp_path / "somefile" / "x" / "unit.json"))
    after = tree_snapshot(tmp_path)
    assert {name: data for name, data in after.items() if not name.startswith(".memgate/")} == before


@pytest.mark.parametrize(("baseline_dir", "words"), [
    ("somefile", "the baseline folder is a file, not a folder"),
    ("somefile/x", "the baseline folder cannot exist: {file} is a file, not a folder"),
    ("somefile/x/y", "the baseline folder cannot exist: {file} is a file, not a folder"),
])
def test_a_baseline_folder_that_is_or_goes_through_a_file_is_exit_2_before_any_suite_runs(
    baseline_dir: str, words: str, clean_program: list[str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Read as "no baselines", such a folder made every suite pass as new."""
    file = a_file(tmp_path)
    config = suite_config(tmp_path, clean_program, "rusage", top=f"baseline_dir = {json.dumps(baseline_dir)}")
    before = tree_snapshot(tmp_path)
    run = memgate(capsys, "check", "--config", config, "--jobs", "1")
    line = run.one_error(2, words.format(file=file), f"({tmp_path / baseline_dir})", "baseline_dir")
    assert line.count(str(tmp_path)) == (1 if baseline_dir == "somefile" else 2)
    assert "new" not in run.out
    assert not (tmp_path / ".memgate").exists(), "no suite may run against a baseline folder that cannot be"
    assert tree_snapshot(tmp_path) == before


def test_compare_against_a_baseline_folder_under_a_file_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = a_file(tmp_path)
    report = tmp_path / "current.json"
    report.write_text(json.dumps({"schema_version": 1, "memgate_version": "0.1.0",
                                  "created_at": "2024-01-01T00:00:00+00:00", "suites": []}))
    run = memgate(capsys, "compare", file / "baselines", report)
    run.one_error(2, f"no such baseline file or folder: {file} is a file, not a folder",
                  f"({file / 'baselines'})", "pass a baselines folder")


@pytest.mark.parametrize("artifacts_dir", ["", ".", "build"])
def test_a_folder_memgate_did_not_make_is_never_emptied(
    artifacts_dir: str, clean_program: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """artifacts_dir = "" put the log folder of a suite named "src" on the source folder, and the run
    emptied it before writing its logs there."""
    sources = tmp_path / (artifacts_dir or ".") / "src"
    sources.mkdir(parents=True, exist_ok=True)
    (sources / "main.c").write_text("int main(void) { return 0; }\n")
    before = tree_snapshot(tmp_path)
    config = suite_config(tmp_path, clean_program, "rusage", name="src",
                          top=f"artifacts_dir = {json.dumps(artifacts_dir)}")
    run = memgate(capsys, "run", "--config", config, "--jobs", "1")
    run.one_error(2, "memgate did not make it", str(sources.resolve()), "artifacts_dir")
    assert {name: data for name, data in tree_snapshot(tmp_path).items() if name != "memgate.toml"} == {
        name: data for name, data in before.items() if name != "memgate.toml"}


def test_memgates_own_log_folder_is_emptied_for_the_next_run(
    clean_program: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = suite_config(tmp_path, clean_program, "rusage", top='artifacts_dir = "logs"')
    (tmp_path / "logs" / "unit").mkdir(parents=True)  # an empty folder may be used
    for _ in range(2):
        run = memgate(capsys, "run", "--config", config, "--jobs", "1")
        assert run.code == 0, run.err
    (tmp_path / "logs" / "unit" / "stale.log").write_text("from an earlier run\n")
    assert memgate(capsys, "run", "--config", config, "--jobs", "1").code == 0
    assert not (tmp_path / "logs" / "unit" / "stale.log").exists()


@pytest.mark.parametrize("layout", [("stdout.log", "stderr.log"), ("run-1/stdout.log", "run-1/stderr.log")])
def test_a_log_folder_of_a_memgate_without_the_mark_is_still_reused(
    layout: tuple[str, ...], clean_program: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Log folders made before memgate marked them hold the two logs every run writes."""
    config = suite_config(tmp_path, clean_program, "rusage")
    folder = tmp_path / ".memgate" / "artifacts" / "unit"
    for name in (*layout, "memcheck.12.xml"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("from an earlier run\n")
    assert memgate(capsys, "run", "--config", config, "--jobs", "1").code == 0
    assert not (folder / "memcheck.12.xml").exists() and (folder / "rusage.txt").exists()


# --------------------------------------------------------------------------------------------------
# Baseline files: corrupt, foreign, from a newer memgate


@pytest.fixture(scope="module")
def real_baseline(clean_program: list[str], tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The baseline file a real rusage run of memprog makes."""
    from memgate.cli import main

    folder = tmp_path_factory.mktemp("made")
    config = suite_config(folder, clean_program, "rusage")
    assert main(["baseline", "update", "--config", str(config), "--jobs", "1"]) == 0
    return (folder / "baselines" / "unit.json").read_bytes()


def _edited(real: bytes, **changes: object) -> bytes:
    data = json.loads(real)
    data.update(changes)
    return json.dumps(data).encode()


def _long_figure(real: bytes, digits: int) -> bytes:
    """The real baseline with its peak RSS ``digits`` long: json.loads' int() failed on 4,301 or more
    (exit 4), and no count has more than 20."""
    edited = re.sub(rb'("rss_peak_bytes": )\d+', rb"\g<1>" + b"9" * digits, real, count=1)
    assert edited != real
    return edited


def _nested_figure(real: bytes) -> bytes:
    """The real baseline with its peak RSS 5,000 arrays deep."""
    edited = re.sub(rb'("rss_peak_bytes": )\d+', rb"\g<1>" + b"[" * 5000 + b"1" + b"]" * 5000, real, count=1)
    assert edited != real
    return edited


# case -> (the file's bytes from the real baseline, words of the error)
BAD_BASELINES = {
    "not JSON": (lambda real: b"{not json", "not valid JSON (line 1, column 2"),
    "merge conflict": (lambda real: b"<<<<<<< HEAD\n" + real + b"=======\n" + real + b">>>>>>> pr\n",
                       "merge conflict"),
    "empty": (lambda real: b"", "not valid JSON"),
    "cut in half": (lambda real: real[: len(real) // 2], "not valid JSON"),
    "binary": (lambda real: b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
    "a list": (lambda real: b"[]", "not a JSON object"),
    "another program's JSON": (lambda real: b'{"name": "my-package", "version": "1.0.0"}',
                               "not a memgate baseline"),
    "a memgate report": (lambda real: b'{"schema_version": 1, "suites": [], "memgate_version": "0.1.0"}',
                         "not a memgate baseline"),
    "another suite's": (lambda real: _edited(real, suite="other"), "baseline of suite 'other', not 'unit'"),
    "newer schema": (lambda real: _edited(real, schema_version=99),
                     "schema version 99, newer than this memgate reads (1): it was made by a newer memgate"),
    # pydantic's lax mode read these as version 1 (or 999) without a word
    "schema version as a string": (lambda real: _edited(real, schema_version="1"),
                                   'its schema_version is "1" (a string), not a whole number'),
    "newer schema version as a string": (lambda real: _edited(real, schema_version="999"),
                                         'its schema_version is "999" (a string), not a whole number'),
    "schema version as a decimal": (lambda real: _edited(real, schema_version=1.0),
                                    "its schema_version is 1.0 (a decimal number), not a whole number"),
    "schema version as a boolean": (lambda real: _edited(real, schema_version=True),
                                    "its schema_version is true (a boolean), not a whole number"),
    "schema version 0": (lambda real: _edited(real, schema_version=0), "schema version 0, which no memgate"),
    # json recursed once per "[": a RecursionError, exit 4
    "nested thousands deep": (lambda real: b"[" * 100_000 + b"]" * 100_000,
                              "the file nests JSON arrays or objects thousands deep"),
    "a figure nested thousands deep": (lambda real: _nested_figure(real),
                                       "the file nests JSON arrays or objects thousands deep"),
    "a figure that is text": (lambda real: _edited(real, metrics={"rss_peak_bytes": "lots"}),
                              "rss_peak_bytes"),
    "an unknown metric": (lambda real: _edited(real, metrics={"bogus": 1}), "metrics.bogus"),
    "a figure of 5,000 digits": (lambda real: _long_figure(real, 5000),
                                 "the file holds a number of 5,000 digits"),
    "a figure of 21 digits": (lambda real: _long_figure(real, 21), "the file holds a number of 21 digits"),
}


@pytest.mark.parametrize("case", sorted(BAD_BASELINES))
def test_a_bad_baseline_file_is_exit_2_naming_it_before_any_suite_runs(
    case: str, real_baseline: bytes, clean_program: list[str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make, words = BAD_BASELINES[case]
    path = tmp_path / "baselines" / "unit.json"
    path.parent.mkdir()
    path.write_bytes(make(real_baseline))
    config = suite_config(tmp_path, clean_program, "rusage")
    before = tree_snapshot(tmp_path)

    run = memgate(capsys, "check", "--config", config, "--jobs", "1")
    run.one_error(2, words, f"({path})")
    assert not (tmp_path / ".memgate").exists(), "no suite may run against an unreadable baseline"
    assert tree_snapshot(tmp_path) == before

    report = tmp_path / "current.json"
    report.write_text(json.dumps({"schema_version": 1, "memgate_version": "0.1.0",
                                  "created_at": "2024-01-01T00:00:00+00:00", "suites": []}))
    compare = memgate(capsys, "compare", tmp_path / "baselines", report)
    compare.one_error(2, words, f"({path})")


def _report(**changes: object) -> bytes:
    data: dict[str, object] = {"schema_version": 1, "memgate_version": "0.1.0",
                               "created_at": "2024-01-01T00:00:00+00:00", "suites": []}
    return json.dumps({**data, **changes}).encode()


# case -> (the JSON report's bytes, words of the error)
BAD_REPORTS = {
    "nested thousands deep": (b"[" * 100_000 + b"]" * 100_000, "nests JSON arrays or objects thousands deep"),
    "suites nested thousands deep": (
        _report().replace(b'"suites": []', b'"suites": ' + b"[" * 5000 + b"]" * 5000),
        "nests JSON arrays or objects thousands deep"),
    "schema version as a string": (_report(schema_version="1"), 'its schema_version is "1" (a string)'),
    "newer schema version as a string": (_report(schema_version="999"),
                                         'its schema_version is "999" (a string)'),
    "schema version as a decimal": (_report(schema_version=1.0),
                                    "its schema_version is 1.0 (a decimal number)"),
    "schema version as a boolean": (_report(schema_version=False), "its schema_version is false (a boolean)"),
    "schema version as a list": (_report(schema_version=[1]), "its schema_version is [1] (a list)"),
    "newer schema": (_report(schema_version=3), "schema version 3, newer than this memgate reads (2): it was "
                                                "made by a newer memgate"),
    "schema version -1": (_report(schema_version=-1), "schema version -1, which no memgate wrote"),
}


@pytest.mark.parametrize("case", sorted(BAD_REPORTS))
@pytest.mark.parametrize("side", ["current", "baseline"])
def test_a_bad_report_given_to_compare_is_exit_2_naming_it(
    case: str, side: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, good = tmp_path / "bad.json", tmp_path / "good.json"
    bad.write_bytes(BAD_REPORTS[case][0])
    good.write_bytes(_report())
    run = memgate(capsys, "compare", *((good, bad) if side == "current" else (bad, good)))
    run.one_error(2, BAD_REPORTS[case][1], f"({bad})")


def test_the_report_the_bad_ones_are_made_from_is_compared(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(_report())
    run = memgate(capsys, "compare", good, good)
    run.assert_clean()
    assert run.code == 0, run.err


def test_the_real_baseline_is_read(real_baseline: bytes) -> None:
    """The cases above are edits of a file that is itself fine."""
    baseline = Baseline.model_validate_json(real_baseline)
    assert baseline.tool == "rusage" and baseline.metrics["rss_peak_bytes"] > 0


# --------------------------------------------------------------------------------------------------
# Every configuration key with a wrong value: exit 2, one line naming the file and the key.

SUITE = 'name = "unit"\ncommand = ["/bin/true"]\ntool = "rusage"\n'

# (key path shown, TOML at the top level or None, TOML in the suite or None, words of the message)
BAD_VALUES: list[tuple[str, str | None, str | None, str]] = [
    ("baseline_dir", "baseline_dir = 5", None, "valid string"),
    ("artifacts_dir", "artifacts_dir = []", None, "valid string"),
    ("thresholds", "thresholds = 3", None, "valid dictionary"),
    ("thresholds.bogus", '[thresholds]\nbogus = {fail = "1%"}', None, "'heap_peak_bytes'"),
    ("thresholds.heap_peak_bytes", '[thresholds]\nheap_peak_bytes = "10%"', None, "valid dictionary"),
    ("thresholds.heap_peak_bytes.fail", '[thresholds]\nheap_peak_bytes = {fail = "ten"}', None,
     "'ten' is not a limit"),
    ("thresholds.heap_peak_bytes.fail", "[thresholds]\nheap_peak_bytes = {fail = true}", None,
     "not true/false"),
    ("thresholds.heap_peak_bytes.warn", "[thresholds]\nheap_peak_bytes = {warn = -1}", None,
     "cannot be negative"),
    ("thresholds.heap_peak_bytes.warn", '[thresholds]\nheap_peak_bytes = {warn = "5 apples"}', None,
     "unknown unit 'apples'"),
    ("thresholds.heap_peak_bytes.noise[0]", '[thresholds]\nheap_peak_bytes = {noise = "1 parsec"}', None,
     "unknown unit 'parsec'"),
    ("thresholds.heap_peak_bytes.level", '[thresholds]\nheap_peak_bytes = {level = "1%"}', None,
     "unknown key"),
    ("fail_on_new_leak_kinds[0]", 'fail_on_new_leak_kinds = ["bogus"]', None, "'definite'"),
    ("fail_on_new_leak_kinds", 'fail_on_new_leak_kinds = "definite"', None, "valid list"),
    ("fail_on_new_errors", "fail_on_new_errors = 2", None, "2 is not a boolean: write true or false"),
    ("fail_on_new_errors", 'fail_on_new_errors = "maybe"', None, "'maybe' is not a boolean"),
    # pydantic's lax mode took these as booleans: a quoted "false" switched the check on.
    ("fail_on_new_errors", 'fail_on_new_errors = "false"', None, "'false' is not a boolean"),
    ("fail_on_new_errors", 'fail_on_new_errors = "yes"', None, "'yes' is not a boolean"),
    ("fail_on_new_errors", "fail_on_new_errors = 1", None, "1 is not a boolean"),
    ("fail_on_new_errors", "fail_on_new_errors = 0", None, "0 is not a boolean"),
    ("surprise", "surprise = 1", None, "unknown key (check its spelling)"),
    ("alloc_wrappers", 'alloc_wrappers = "xmalloc"', None, "valid list"),
    ("alloc_wrappers[0]", "alloc_wrappers = [1]", None, "valid string"),
    ("suppressions", 'suppressions = "valgrind.supp"', None, "valid list"),
    ("suppressions[0]", "suppressions = [1]", None, "valid string"),
    ("suite[0].suppressions[0]", None, "suppressions = [2]", "valid string"),
    ("history_limit", "history_limit = -1", None, "greater than or equal to 0"),
    ("history_limit", "history_limit = 501", None, "less than or equal to 500"),
    # strict: neither a quoted number nor a boolean is taken as a count of commits
    ("history_limit", 'history_limit = "20"', None, "valid integer"),
    ("history_limit", "history_limit = true", None, "valid integer"),
    ("alloc_wrappers", 'alloc_wrappers = ["xmalloc", "*"]', None, "'*' would match every function"),
    ("suite[0].alloc_wrappers", None, 'alloc_wrappers = ["**"]', "'**' would match every function"),
    ("suite", 'suite = "tests"', "REMOVE", "valid list"),
    ("suite[0].name", None, 'name = "../x"', "not a usable suite name"),
    ("suite[0].name", None, 'name = "a b"', "not a usable suite name"),
    ("suite[0].name", None, 'name = ""', "not a usable suite name"),
    ("suite[0].name", None, "name = 5", "valid string"),
    ("suite[0]", None, "command = []", "command is empty"),
    ("suite[0]", None, 'command = "./tests -v"', "command is a string"),
    ("suite[0].command[0]", None, "command = [1, 2]", "valid string"),
    ("suite[0].tool", None, 'tool = "vlagrind"', "unknown tool 'vlagrind'"),
    ("suite[0].tool", None, "tool = 1", "valid string"),
    ("suite[0].timeout", None, 'timeout = "soon"', "not a duration"),
    ("suite[0].timeout", None, "timeout = 0", "greater than zero"),
    ("suite[0].timeout", None, "timeout = -5", "greater than zero"),
    ("suite[0].timeout", None, "timeout = true", "a duration is a number"),
    # numbers float() makes infinite or int() cannot read (OverflowError, ValueError: exit 4)
    ("suite[0].timeout", None, f"timeout = {'9' * 400}", "a duration of 400 digits is no timeout"),
    ("a number of 5,000 digits (at line 1)", f"baseline_dir = {'9' * 5000}", None, "invalid TOML"),
    ("thresholds.heap_peak_bytes.fail", f'[thresholds]\nheap_peak_bytes = {{fail = "+{"9" * 400}MiB"}}', None,
     "its number has 400 characters"),
    ("thresholds.heap_peak_bytes.warn", f'[thresholds]\nheap_peak_bytes = {{warn = "{"9" * 5000}%"}}', None,
     "its number has 5,000 characters"),
    # TOML's nan, inf and huge numbers: a timeout that never ends (or overflows the clock)
    ("suite[0].timeout", None, "timeout = nan", "nan is no duration"),
    ("suite[0].timeout", None, "timeout = inf", "inf is no duration"),
    ("suite[0].timeout", None, "timeout = -inf", "-inf is no duration"),
    ("suite[0].timeout", None, "timeout = 1e999", "inf is no duration"),
    ("suite[0].timeout", None, "timeout = -1", "greater than zero"),
    ("suite[0].timeout", None, "timeout = 1e300", "longer than any job runs"),
    ("suite[0].timeout", None, 'timeout = "99999999999999999999999h"', "longer than any job runs"),
    ("suite[0].timeout", None, 'timeout = "nan"', "'nan' is not a duration"),
    ("suite[0].timeout", None, 'timeout = "inf"', "'inf' is not a duration"),
    ("thresholds.heap_peak_bytes.fail", '[thresholds]\nheap_peak_bytes = {fail = "nan%"}', None,
     "'nan%' is not a limit"),
    ("thresholds.heap_peak_bytes.fail", '[thresholds]\nheap_peak_bytes = {fail = "+inf"}', None,
     "'+inf' is not a limit"),
    ("thresholds.heap_peak_bytes.fail", '[thresholds]\nheap_peak_bytes = {fail = "1e999%"}', None,
     "'1e999%' is not a limit"),
    ("thresholds.heap_peak_bytes.warn", '[thresholds]\nheap_peak_bytes = {warn = "+nan"}', None,
     "'+nan' is not a limit"),
    ("thresholds.heap_peak_bytes.fail", "[thresholds]\nheap_peak_bytes = {fail = nan}", None,
     "nan is not a limit"),
    ("thresholds.heap_peak_bytes.fail", "[thresholds]\nheap_peak_bytes = {fail = inf}", None,
     "inf is not a limit"),
    ("thresholds.heap_peak_bytes.noise[0]", "[thresholds]\nheap_peak_bytes = {noise = 1.5}", None,
     "1.5 is not a limit"),
    # a NUL byte: no argument, path or environment variable can carry one (ValueError: exit 4), and a
    # baseline_dir holding one was read as "no baselines": every suite passed as new
    ("suite[0].command[0]", None, 'command = ["/bin/tr\\u0000ue"]', "holds a NUL byte"),
    ("suite[0].command[1]", None, 'command = ["/bin/true", "a\\u0000b"]', "holds a NUL byte"),
    ("suite[0].cwd", None, 'cwd = "sub\\u0000dir"', "holds a NUL byte"),
    ("suite[0].env.A", None, 'env = {A = "x\\u0000y"}', "holds a NUL byte"),
    ("suite[0].env.A\\u0000B", None, 'env = {"A\\u0000B" = "x"}', "holds a NUL byte"),
    ("suite[0].tool_args[0]", None, 'tool_args = ["-\\u0000"]', "holds a NUL byte"),
    ("baseline_dir", 'baseline_dir = "base\\u0000lines"', None, "holds a NUL byte"),
    ("artifacts_dir", 'artifacts_dir = "a\\u0000x"', None, "holds a NUL byte"),
    ("invalid TOML: arrays or tables nested thousands deep", "deep = " + "[" * 5000 + "]" * 5000, None,
     "no setting nests more than a few levels"),
    ("suite[0].cwd", None, "cwd = 5", "valid string"),
    ("suite 'unit': cwd", None, 'cwd = "no/such/folder"', "is not a folder"),
    ("suite[0].env", None, 'env = ["A=1"]', "valid dictionary"),
    ("suite[0].env.A", None, "env = {A = 1}", "valid string"),
    ("suite[0]", None, "shell = true", "shell = true needs command as one string"),
    ("suite[0].shell", None, 'shell = "perhaps"', "'perhaps' is not a boolean: write true or false"),
    ("suite[0].shell", None, 'shell = "true"', "'true' is not a boolean"),
    ("suite[0].shell", None, 'shell = "yes"', "'yes' is not a boolean"),
    ("suite[0].shell", None, "shell = 1", "1 is not a boolean"),
    ("suite[0].shell", None, "shell = 0", "0 is not a boolean"),
    ("suite[0].tool_args", None, 'tool_args = "--x"', "valid list"),
    ("suite[0].tool_args[0]", None, "tool_args = [1]", "valid string"),
    ("suite 'unit': the rusage tool takes no tool_args", None, 'tool_args = ["-v"]', "remove tool_args"),
    ("suite[0].accept_exit_codes", None, 'accept_exit_codes = "0"', "valid list"),
    ("suite[0].accept_exit_codes[0]", None, "accept_exit_codes = [1.5]", "fractional part"),
    ("suite[0].thresholds.bogus", None, 'thresholds = {bogus = {fail = "1%"}}', "'heap_peak_bytes'"),
    ("suite[0].thresholds", None, "thresholds = 1", "valid dictionary"),
    ("suite[0].repeat", None, "repeat = 0", "from 1 to 50"),
    ("suite[0].repeat", None, "repeat = 51", "from 1 to 50"),
    ("suite[0].repeat", None, 'repeat = "3"', "from 1 to 50"),
    ("suite[0].surprise", None, "surprise = 1", "unknown key"),
    ("suite names must be unique", "[[suite]]\n" + SUITE, None, "repeated: unit"),
    ("no [[suite]] defined", "", "REMOVE", "add a [[suite]]"),
]


def _config_text(top: str | None, in_suite: str | None) -> str:
    if in_suite == "REMOVE":
        return top or ""
    lines = SUITE.splitlines()
    if in_suite is not None:
        key = in_suite.split("=")[0].strip()
        lines = [line for line in lines if not line.startswith(f"{key} =")] + [in_suite]
    return f"{top or ''}\n[[suite]]\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(("key", "top", "in_suite", "words"), BAD_VALUES,
                         ids=[f"{key}={top or in_suite}"[:60] for key, top, in_suite, _ in BAD_VALUES])
def test_every_invalid_config_value_is_exit_2_naming_file_and_key(
    key: str, top: str | None, in_suite: str | None, words: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "memgate.toml"
    config.write_text(_config_text(top, in_suite))
    for command in (("check",), ("run",), ("baseline", "update")):
        run = memgate(capsys, *command, "--config", config, "--jobs", "1")
        line = run.one_error(2, key, words, f"({config})")
        assert line.index(key) < line.index(f"({config})")
    assert not (tmp_path / "baselines").exists()


@pytest.mark.parametrize("value", ["[300]", "[-1]"])
def test_an_exit_status_no_process_can_have_is_refused(value: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "memgate.toml"
    config.write_text(_config_text(None, f"accept_exit_codes = {value}"))
    memgate(capsys, "run", "--config", config, "--jobs", "1").one_error(2, "suite[0].accept_exit_codes")


def test_the_table_covers_every_key() -> None:
    """A key added to the configuration needs its rows above."""
    shown = {key for key, _, _, _ in BAD_VALUES}
    keys = {name for name, field in Config.model_fields.items() if not field.exclude}
    keys = {"suite" if name == "suites" else name for name in keys}
    missing = {key for key in keys if not any(row.split("[")[0].split(".")[0] == key for row in shown)}
    missing |= {f"suite.{name}" for name in SuiteConfig.model_fields
                if not any(f"suite[0].{name}" in row or f"suite {name}" in row or
                           (name in ("command", "shell") and row == "suite[0]") or
                           (name in ("cwd", "tool_args") and row.startswith("suite 'unit'"))
                           for row in shown)}
    missing |= {f"threshold.{name}" for name in Threshold.model_fields
                if not any(row.startswith("thresholds.heap_peak_bytes." + name) for row in shown)}
    assert missing == set()


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.parametrize("tool", ["dhat", "massif"])
@pytest.mark.parametrize("name", ["profile.out", "profile.%p.out"])
def test_a_users_own_profile_file_is_refused_with_or_without_pid(
    tool: str, name: str, clean_program: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Several processes of a suite writing one --dhat-out-file/--massif-out-file would overwrite each
    other: memgate names the file itself (<tool>.%p.<suffix>, one per process) and refuses the user's,
    even with %p (memgate could not find it)."""
    option = f"--{tool}-out-file={tmp_path / name}"
    config = suite_config(tmp_path, clean_program, tool, suite=f"tool_args = [{json.dumps(option)}]")
    run = memgate(capsys, "check", "--config", config, "--jobs", "1")
    run.one_error(2, f"suite 'unit': tool_args for {tool} cannot contain {option!r}: memgate sets it",
                  f"({config})", "remove it from the suite's tool_args")
    assert not list(tmp_path.glob("profile.*")), "nothing ran"


def _boolean_keys() -> list[tuple[str, str]]:
    """(where, key) of every boolean setting: "top" for the top level, "suite" for a [[suite]]."""
    return [(where, name) for where, model in (("top", Config), ("suite", SuiteConfig))
            for name, field in model.model_fields.items() if field.annotation is bool]


def test_the_boolean_keys_are_the_known_ones() -> None:
    """A new switch is covered by the test below without more rows; this one shows it found them."""
    assert _boolean_keys() == [("top", "fail_on_new_errors"), ("suite", "shell")]


@pytest.mark.parametrize(("where", "key"), _boolean_keys())
@pytest.mark.parametrize("value", ['"yes"', '"true"', '"false"', '"on"', "1", "0", "1.0", "[]"])
def test_every_boolean_key_takes_a_toml_boolean_only(where: str, key: str, value: str,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "memgate.toml"
    top, in_suite = (f"{key} = {value}", None) if where == "top" else (None, f"{key} = {value}")
    with pytest.raises(ConfigError) as caught:
        parse_config(_config_text(top, in_suite), path)
    shown = key if where == "top" else f"suite[0].{key}"
    assert caught.value.message.startswith(f"{shown}: ")
    assert "is not a boolean: write true or false, without quotes" in caught.value.message
    assert caught.value.path == str(path)
    assert "\n" not in caught.value.one_line()
    for boolean in ("true", "false"):
        # shell = true needs the command as one string: that line replaces the list.
        command = 'command = "/bin/true"\n' if key == "shell" and boolean == "true" else ""
        text = _config_text(f"{key} = {boolean}", None) if where == "top" else _config_text(
            None, f"{command}{key} = {boolean}")
        config = parse_config(text, path)
        setting = config if where == "top" else config.suites[0]
        assert getattr(setting, key) is (boolean == "true")


# --------------------------------------------------------------------------------------------------
# `baseline update --commit` in the checkouts CI makes: everything committing and pushing need is
# checked before the suites run (they take minutes), and --branch puts a detached HEAD's commit on a
# branch. A real clone of a bare remote, the real CLI, a real suite.


@pytest.fixture
def ci_clone(remote: Remote, clean_program: list[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone whose memgate.toml runs memprog under rusage, pushed; then detached at main's tip with
    no local branch, as GitLab CI (and GitHub's checkout of a commit) leaves it."""
    for variable in ("GITHUB_ACTIONS", "GITLAB_CI", "MEMGATE_BRANCH"):
        monkeypatch.delenv(variable, raising=False)
    clone = remote.clone("ci")
    suite_config(clone, clean_program, "rusage")
    (clone / ".gitignore").write_text(".memgate/\n")
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "run memprog")
    git(clone, "push", "--quiet", "origin", "main")
    git(clone, "checkout", "--quiet", "--detach", "HEAD")
    git(clone, "branch", "--quiet", "-D", "main")
    return clone


def _nothing_ran(clone: Path) -> bool:
    return not (clone / ".memgate").exists() and git(clone, "status", "--porcelain") == ""


@pytest.mark.usefixtures("isolated_git")
def test_a_detached_head_is_refused_before_the_suites_run(
    ci_clone: Path, remote: Remote, capsys: pytest.CaptureFixture[str]
) -> None:
    run = memgate(capsys, "baseline", "update", "--config", ci_clone / "memgate.toml", "--commit", "--push")
    run.one_error(2, "HEAD is detached and no branch to update was given", "pass --branch NAME")
    assert _nothing_ran(ci_clone), "the check comes before the suites run, not after"
    assert remote.main_sha() == git(ci_clone, "rev-parse", "HEAD")


@pytest.mark.usefixtures("isolated_git")
def test_no_origin_remote_is_refused_before_the_suites_run(
    ci_clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(ci_clone, "remote", "remove", "origin")
    run = memgate(capsys, "baseline", "update", "--config", ci_clone / "memgate.toml", "--commit",
                  "--branch", "main")
    run.one_error(2, "no git remote named 'origin'", "git remote -v")
    assert _nothing_ran(ci_clone)


@pytest.mark.usefixtures("isolated_git")
@pytest.mark.parametrize("how", ["flag", "env"])
def test_branch_puts_a_detached_heads_baseline_commit_on_the_remotes_main(
    how: str, ci_clone: Path, remote: Remote, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tip = remote.main_sha()
    branch: tuple[str, ...] = ("--branch", "main")
    if how == "env":
        monkeypatch.setenv("MEMGATE_BRANCH", "main")
        branch = ()
    run = memgate(capsys, "baseline", "update", "--config", ci_clone / "memgate.toml", "--jobs", "1",
                  "--commit", "--push", *branch)
    run.assert_clean()
    assert run.code == 0, run.err
    assert f"pushed {remote.main_sha()[:12]} to origin/main" in run.out
    assert git(remote.bare, "rev-parse", "main~1") == tip
    assert "[skip ci]" in git(remote.bare, "log", "-1", "--format=%s", "main")
    assert git(remote.bare, "diff", "--name-only", "main~1", "main") == "baselines/unit.json"
    assert json.loads(remote.file("baselines/unit.json"))["tool"] == "rusage"
    assert git(ci_clone, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(ci_clone, "rev-parse", "HEAD") == remote.main_sha()


@pytest.mark.parametrize("value", ["-main", "a..b", "feature branch", "main.lock", "refs/heads/"])
def test_a_branch_that_is_no_branch_name_is_a_usage_error(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "memgate.toml"
    config.write_text(_config_text(None, None))
    with pytest.raises(SystemExit) as flag:  # argparse's own usage error
        memgate(capsys, "baseline", "update", "--config", config, "--commit", f"--branch={value}")
    assert flag.value.code == 2 and f"--branch: {value!r} is not a branch name" in capsys.readouterr().err
    monkeypatch.setenv("MEMGATE_BRANCH", value)
    env = memgate(capsys, "baseline", "update", "--config", config, "--commit")
    env.one_error(2, "environment variable MEMGATE_BRANCH", "is not a branch name", "as --branch")
    assert not (tmp_path / ".memgate").exists()


# --------------------------------------------------------------------------------------------------
# Every MEMGATE_* variable with a bad value: validated as the flag it stands for, one error line naming
# the variable, exit 2, before anything runs. MEMGATE_JOBS=abc was a traceback when the parser was
# built (exit 1, for every command, --help too); MEMGATE_FAIL_ON=warning was taken without a word.

# (variable, bad value, the command, words of the error)
BAD_ENVIRONMENT: list[tuple[str, str, tuple[str, ...], str]] = [
    ("MEMGATE_JOBS", "abc", ("run",), "'abc' is not a whole number"),
    ("MEMGATE_JOBS", "0", ("check",), "'0' must be 1 or more"),
    ("MEMGATE_JOBS", "-2", ("baseline", "update"), "'-2' must be 1 or more"),
    ("MEMGATE_JOBS", "1.5", ("run",), "'1.5' is not a whole number"),
    ("MEMGATE_FAIL_ON", "warning", ("check",), "'warning' is not one of fail, warn"),
    ("MEMGATE_FAIL_ON", "FAIL", ("check",), "'FAIL' is not one of fail, warn"),
    ("MEMGATE_BASE_REF", "--output=/tmp/x", ("check",), "'--output=/tmp/x' is not a commit or ref name"),
    ("MEMGATE_BASE_REF", "main branch", ("check",), "'main branch' is not a commit or ref name"),
    ("MEMGATE_BRANCH", "a..b", ("baseline", "update", "--commit"), "'a..b' is not a branch name"),
    ("MEMGATE_ALLOW_ERRORS", "perhaps", ("baseline", "update"), "'perhaps' is neither on nor off"),
    ("MEMGATE_FORGE_MAX_WAIT", "soon", ("check", "--comment"), "'soon' is not a number of seconds"),
    ("MEMGATE_FORGE_MAX_WAIT", "inf", ("check", "--comment"), "'inf' is not a number of seconds"),
    ("MEMGATE_FORGE_MAX_WAIT", "-5", ("check", "--comment"), "'-5' is not a number of seconds"),
    ("MEMGATE_GITHUB_BOT_LOGIN", "my bot", ("check", "--comment"), "'my bot' is not a GitHub login"),
    ("MEMGATE_GITHUB_BOT_LOGIN", "bot\x1b[2K", ("check", "--comment"), "is not a GitHub login"),
    ("MEMGATE_GITLAB_TOKEN", "glpat-abc def", ("check", "--comment"), "its value is not a token"),
    ("MEMGATE_GITLAB_TOKEN", "glpat-é", ("check", "--comment"), "its value is not a token"),
]
#: Read elsewhere and checked there: a path is taken as the flag takes it (and a missing file is the
#: same error as for --config), the git identity by git itself before the suites run.
CHECKED_ELSEWHERE = {"MEMGATE_CONFIG", "MEMGATE_JSON", "MEMGATE_GIT_AUTHOR_NAME", "MEMGATE_GIT_AUTHOR_EMAIL"}


@pytest.mark.parametrize(("variable", "value", "command", "words"), BAD_ENVIRONMENT,
                         ids=[f"{variable}={value!r}" for variable, value, _, _ in BAD_ENVIRONMENT])
def test_every_memgate_variable_with_a_bad_value_is_exit_2_naming_it(
    variable: str, value: str, command: tuple[str, ...], words: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "memgate.toml"
    config.write_text(_config_text(None, None))
    monkeypatch.setenv(variable, value)
    run = memgate(capsys, *command, "--config", config)
    line = run.one_error(2, f"environment variable {variable}: ", words, "or unset it")
    assert not (tmp_path / ".memgate").exists(), "nothing ran"
    if variable == "MEMGATE_GITLAB_TOKEN":
        assert value not in run.err, "a token is never printed"
    assert "\x1b" not in line


@pytest.mark.parametrize(("variable", "flag", "good"), [
    ("MEMGATE_JOBS", "--jobs", "1"), ("MEMGATE_FAIL_ON", "--fail-on", "fail"),
    ("MEMGATE_BASE_REF", "--base-ref", "HEAD"),
])
def test_the_flag_beats_its_variable(variable: str, flag: str, good: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad variable is not read when the flag is given; the flag's own check is the same."""
    config = tmp_path / "memgate.toml"
    config.write_text(_config_text(None, None))
    bad = {"MEMGATE_JOBS": "0", "MEMGATE_FAIL_ON": "sometimes", "MEMGATE_BASE_REF": "-x"}[variable]
    monkeypatch.setenv(variable, bad)
    run = memgate(capsys, "check", "--config", config, flag, good)
    assert f"environment variable {variable}" not in run.err
    with pytest.raises(SystemExit):
        memgate(capsys, "check", "--config", config, flag, bad)


def test_memgate_runs_with_every_variable_unset_or_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty variable (a CI input left blank) is the built-in default, as an unset one."""
    config = tmp_path / "memgate.toml"
    config.write_text(_config_text(None, None))
    for variable in _memgate_variables():
        monkeypatch.setenv(variable, "")
    run = memgate(capsys, "run", "--config", config)
    run.assert_clean()
    assert run.code == 0, run.err


def _memgate_variables() -> set[str]:
    package = Path(__file__).parents[2] / "memgate"
    return {name for path in package.rglob("*.py")
            for name in re.findall(r"MEMGATE_[A-Z][A-Z_]*[A-Z]", path.read_text())}


def test_the_table_covers_every_memgate_variable() -> None:
    """A MEMGATE_* variable added to memgate needs its rows above."""
    assert _memgate_variables() - CHECKED_ELSEWHERE - {row[0] for row in BAD_ENVIRONMENT} == set()


@pytest.mark.usefixtures("isolated_git")
def test_an_author_identity_git_refuses_is_found_before_the_suites_run(
    ci_clone: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMGATE_GIT_AUTHOR_NAME", "<>")
    run = memgate(capsys, "baseline", "update", "--config", ci_clone / "memgate.toml", "--commit",
                  "--branch", "main")
    run.one_error(2, "git refuses the identity '<>'", "MEMGATE_GIT_AUTHOR_NAME")
    assert _nothing_ran(ci_clone)
