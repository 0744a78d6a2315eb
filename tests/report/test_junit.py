"""JUnit XML: real ASan runs rendered and validated against the Jenkins xunit junit-10.xsd (with the
``file``/``line`` testcase attributes GitLab and the GitHub reporters read), then edge cases."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from recordkit import error, leak, suite

from memgate.comparison import compare
from memgate.records import Frame, Leak, SuiteStatus
from memgate.report.junit import render_junit

from .conftest import MEMPROG_PATH, REPO_ROOT, RealRun, assert_no_absolute_paths, source_line

SCHEMAS = Path(__file__).parent / "schemas"
XS = "http://www.w3.org/2001/XMLSchema"


def junit_schema(*, with_locations: bool = True) -> etree.XMLSchema:
    """junit-10.xsd as shipped, or with the two testcase attributes it lacks (GitLab reads ``file``;
    action-junit-report and others read ``file`` and ``line``)."""
    tree = etree.parse(str(SCHEMAS / "junit-10.xsd"))
    if with_locations:
        (testcase,) = tree.xpath("/xs:schema/xs:element[@name='testcase']/xs:complexType",
                                 namespaces={"xs": XS})
        etree.SubElement(testcase, f"{{{XS}}}attribute", name="file", type="xs:string")
        etree.SubElement(testcase, f"{{{XS}}}attribute", name="line", type="xs:positiveInteger")
    return etree.XMLSchema(tree)


def validate(text: str) -> ET.Element:
    """Valid against the extended schema; against the shipped one, only file/line are refused."""
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    document = etree.fromstring(text.encode("utf-8"))
    schema = junit_schema()
    assert schema.validate(document), schema.error_log
    plain = junit_schema(with_locations=False)
    if not plain.validate(document):
        problems = {entry.message for entry in plain.error_log}
        allowed = ("Element 'testcase', attribute 'file'", "Element 'testcase', attribute 'line'")
        assert all(message.startswith(allowed) for message in problems), problems
    return ET.fromstring(text)


OUTCOMES = ("failure", "error", "skipped")


@dataclass(frozen=True)
class Case:
    outcome: str  # "pass", "failure" or "error"
    type: str | None
    message: str | None
    text: str | None
    file: str | None
    line: str | None
    output: str | None


def cases(root: ET.Element) -> dict[str, dict[str, Case]]:
    """suite -> testcase name -> what it says; checks the counts and GitLab's unique keys."""
    found: dict[str, dict[str, Case]] = {}
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for testsuite in root.findall("testsuite"):
        name = testsuite.get("name", "")
        assert name.startswith("memgate.")
        by_name: dict[str, Case] = {}
        for testcase in testsuite.findall("testcase"):
            assert testcase.get("classname") == name
            key = testcase.get("name", "")
            assert key not in by_name, f"duplicate testcase {key!r}: GitLab would keep only the first"
            outcome = next((child for child in testcase if child.tag in OUTCOMES), None)
            output = testcase.find("system-out")
            by_name[key] = Case(
                outcome="pass" if outcome is None else outcome.tag,
                type=None if outcome is None else outcome.get("type"),
                message=None if outcome is None else outcome.get("message"),
                text=None if outcome is None else outcome.text,
                file=testcase.get("file"),
                line=testcase.get("line"),
                output=None if output is None else output.text,
            )
        counts = {"tests": len(by_name),
                  "failures": sum(case.outcome == "failure" for case in by_name.values()),
                  "errors": sum(case.outcome == "error" for case in by_name.values())}
        assert {key: int(testsuite.get(key, "-1")) for key in counts} == counts
        assert testsuite.get("skipped") == "0"
        for key in totals:
            totals[key] += counts[key]
        found[name.removeprefix("memgate.")] = by_name
    assert {key: int(root.get(key, "-1")) for key in totals} == totals
    return found


def test_real_runs_validate_and_every_row_and_site_is_a_testcase(real_run: RealRun) -> None:
    text = render_junit(real_run.comparison, REPO_ROOT)
    root = validate(text)
    assert_no_absolute_paths(text)
    assert root.tag == "testsuites" and root.get("name") == "memgate"
    found = cases(root)
    assert list(found) == ["unit", "errs", "crashy"]

    unit = found["unit"]
    assert list(unit) == [
        "run", "leak_definite_bytes", "leak_definite_blocks", "leak_indirect_bytes", "leak_indirect_blocks",
        "errors", "alloc_calls",
        "leak indirect at leak_tree < main", "leak definite at leak_tree < main",
        "leak definite at leak_small < main", "leak definite at leak_many < main",
    ]
    assert unit["run"] == Case("pass", None, None, None, None, None, "asan: ok")
    assert unit["leak_definite_bytes"].outcome == "pass"
    assert unit["leak_definite_bytes"].output == (
        "improved: leak_definite_bytes: 48 B, -268 B (-84.8%) from 316 B (limit fail +0)")
    message = ("leak_indirect_bytes: 64 B, +64 B from 0 B (limit fail +0); caused by: new indirect leak at "
               "leak_tree < main: 64 B in 1 block")
    assert unit["leak_indirect_bytes"] == Case("failure", "MemoryRegression", message, message,
                                               None, None, None)
    assert unit["errors"].output == "pass: errors: 0, 0 from 0 (limit fail +0)"
    # A warning passes, and says so (the gate passes on warnings unless --fail-on warn).
    assert unit["alloc_calls"].outcome == "pass"
    assert (unit["alloc_calls"].output or "").startswith("WARN: alloc_calls: ")
    assert (unit["alloc_calls"].output or "").endswith(", +1 (+12.5%) from 8 (limit warn 5%)")

    main_calls_tree = source_line('"leak_tree")) leak_tree();')
    tree = unit["leak definite at leak_tree < main"]
    assert tree == Case(
        "failure", "MemoryRegression", "new definite leak: 32 B in 1 block at leak_tree < main",
        "\n".join(["new definite leak: 32 B in 1 block at leak_tree < main",
                   f"  at leak_tree ({MEMPROG_PATH}:{source_line('struct node *parent = malloc')})",
                   f"  at main ({MEMPROG_PATH}:{main_calls_tree})"]),
        MEMPROG_PATH, str(source_line("struct node *parent = malloc")), None)
    child = unit["leak indirect at leak_tree < main"]
    assert (child.outcome, child.message, child.file, child.line) == (
        "failure", "new indirect leak: 64 B in 1 block at leak_tree < main", MEMPROG_PATH,
        str(source_line("parent->child = malloc(64)")))
    main_calls_small = source_line('"leak_small")) leak_small();')
    known = unit["leak definite at leak_small < main"]
    small = source_line("void leak_small")
    assert (known.outcome, known.file, known.line) == ("pass", MEMPROG_PATH, str(small))
    assert known.output == "\n".join([
        "known definite leak: 16 B in 1 block at leak_small < main",
        f"  at leak_small ({MEMPROG_PATH}:{small})",
        f"  at main ({MEMPROG_PATH}:{main_calls_small})",
        "in the baseline (16 B in 1 block): accepted, it does not fail the gate",
    ])
    fixed = unit["leak definite at leak_many < main"]
    assert (fixed.outcome, fixed.line) == ("pass", str(source_line("g_sink = malloc(100)")))
    assert (fixed.output or "").splitlines()[0] == (
        "fixed definite leak: 300 B in 3 blocks at leak_many < main")
    assert (fixed.output or "").endswith("in the baseline and gone from this run: fixed")

    errs = found["errs"]
    assert list(errs) == ["run", "errors", "error heap-buffer-overflow at invalid_read < main"]
    assert (errs["run"].outcome, errs["run"].type) == ("error", "IncompleteFigures")
    assert errs["run"].message == ("incomplete figures: the sanitizer stopped the process at the first error "
                                   "(heap-buffer-overflow): no leak check")
    assert errs["errors"].message == "errors: 1, no baseline (limit fail +0)"
    overflow = errs["error heap-buffer-overflow at invalid_read < main"]
    assert (overflow.outcome, overflow.type, overflow.file, overflow.line) == (
        "failure", "MemoryRegression", MEMPROG_PATH, str(source_line("int value = ((volatile int *)a)[10];")))
    assert (overflow.message or "").startswith(
        "new heap-buffer-overflow error: 1 occurrence (heap-buffer-overflow on address 0x")
    assert (overflow.message or "").endswith(") at invalid_read < main")

    crashy = found["crashy"]
    assert list(crashy) == ["run", "errors", "error SEGV at crash < main"]
    assert (crashy["run"].outcome, crashy["run"].type) == ("error", "SuiteCrashed")
    pid = real_run.records["crashy"].processes[0].pid
    assert crashy["run"].message == f"the suite crashed: killed by SIGSEGV (process {pid})"
    assert (crashy["run"].text or "").splitlines() == list(real_run.comparison.suites[2].notes)
    segv = crashy["error SEGV at crash < main"]
    assert (segv.outcome, segv.file, segv.line) == ("failure", MEMPROG_PATH, str(source_line("*null = 1;")))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("17", "8", "2")


def test_fail_on_warn_makes_a_warning_a_failure(real_run: RealRun) -> None:
    root = validate(render_junit(real_run.comparison, REPO_ROOT, fail_on_warn=True))
    alloc = cases(root)["unit"]["alloc_calls"]
    assert (alloc.outcome, alloc.type) == ("failure", "MemoryWarning")
    assert (alloc.message or "").startswith("alloc_calls: ")
    assert root.get("failures") == "9"


def frames(*places: tuple[str, str | None, int | None]) -> tuple[Frame, ...]:
    return tuple(Frame(function=function, file=file, line=line) for function, file, line in places)


def with_stack(record: Leak, stack: tuple[Frame, ...]) -> Leak:
    return record.model_copy(update={"stack": stack})


def test_hostile_strings_stay_valid_xml() -> None:
    evil = "evil\x00\x1b[31m<b>&\"'\ufffe\ufeff\u202e]]>\udcff\nnext"  # \udcff: an undecodable byte kept
    record = suite(evil, errors=[error(f"Invalid{evil}", f"fn{evil}", "main", description=evil)])
    text = render_junit(compare([record], {}), REPO_ROOT)
    text.encode("utf-8")  # no lone surrogate left
    found = cases(validate(text))
    (name,) = found
    assert name == "evil\ufffd\ufffd[31m<b>&\"'\ufffd\ufffd\ufffd]]>\ufffd\ufffdnext"
    site = next(case for key, case in found[name].items() if key.startswith("error "))
    assert site.outcome == "failure" and "\n" not in (site.message or "") and "\x00" not in text


def test_names_shortened_to_the_same_text_get_the_fingerprint() -> None:
    long_a, long_b = "f" * 1200 + "_a", "f" * 1200 + "_b"
    record = suite(errors=[error("InvalidRead", long_a), error("InvalidRead", long_b)])
    comparison = compare([record], {})
    found = cases(validate(render_junit(comparison, REPO_ROOT)))
    names = [name for name in found["unit"] if name.startswith("error ")]
    assert len(names) == 2 and len(set(names)) == 2
    fingerprints = {site.fingerprint for site in comparison.suites[0].sites}
    assert any(name.endswith("]") and name[-17:-1] in fingerprints for name in names)


def test_frames_outside_the_repository_give_no_file() -> None:
    stack = frames(("g_main_loop_run", "/usr/include/glib.h", 10), ("run", None, None))
    record = suite(leaks=[with_stack(leak("definite", 8, 1, "run"), stack)])
    found = cases(validate(render_junit(compare([record], {}), REPO_ROOT)))
    site = found["unit"]["leak definite at run"]
    assert (site.file, site.line, site.outcome) == (None, None, "failure")
    assert (site.text or "").splitlines()[1:] == ["  at g_main_loop_run (/usr/include/glib.h:10)", "  at run"]


def test_relative_and_build_folder_paths_are_repo_relative() -> None:
    stack = frames(("inner", "../tests/programs/memprog.c", 25), ("outer", "./tests/programs/memprog.c", 0))
    record = suite(leaks=[with_stack(leak("definite", 8, 1, "inner", "outer"), stack)])
    found = cases(validate(render_junit(compare([record], {}), REPO_ROOT)))
    site = found["unit"]["leak definite at inner < outer"]
    assert (site.file, site.line) == (MEMPROG_PATH, "25")
    assert (site.text or "").splitlines()[1:] == [
        f"  at inner ({MEMPROG_PATH}:25)", f"  at outer ({MEMPROG_PATH})"]


def test_timeout_and_failed_suites_are_errors_and_no_suites_is_empty() -> None:
    records = [suite("slow", status=SuiteStatus.TIMEOUT, status_detail="killed after the 5 s timeout"),
               suite("bad", status=SuiteStatus.FAILED)]
    found = cases(validate(render_junit(compare(records, {}), REPO_ROOT)))
    assert (found["slow"]["run"].type, found["slow"]["run"].message) == (
        "SuiteTimeout", "the suite timeout: killed after the 5 s timeout")
    assert (found["bad"]["run"].type, found["bad"]["run"].message) == ("SuiteFailed", "the suite failed")
    empty = render_junit(compare([], {}), REPO_ROOT)
    assert empty == ('<?xml version="1.0" encoding="UTF-8"?>\n'
                     '<testsuites name="memgate" tests="0" failures="0" errors="0" />\n')
    validate(empty)
