"""SARIF 2.1.0: real ASan runs rendered and validated against the OASIS schema, GitHub's code
scanning requirements and limits checked, then edge cases."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from recordkit import error, leak, suite

from memgate import __version__
from memgate.comparison import compare
from memgate.records import Frame
from memgate.report.sarif import MAX_DESCRIPTION, SCHEMA_URI, render_sarif

from .conftest import MEMPROG_PATH, REPO_ROOT, RealRun, assert_no_absolute_paths, line_in, source_line

SCHEMAS = Path(__file__).parent / "schemas"
SARIF_SCHEMA = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
# RFC 3986 URI-reference characters (the schema's "uri-reference" format, which jsonschema itself does
# not check without extra packages).
URI_REFERENCE = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#]|%[0-9A-Fa-f]{2})*$")


def sarif(text: str) -> dict[str, Any]:
    """Valid SARIF 2.1.0 with what GitHub code scanning requires and keeps."""
    log: dict[str, Any] = json.loads(text)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    assert log["$schema"] == SCHEMA_URI and log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("memgate", __version__)
    assert driver["informationUri"].startswith("https://")
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(set(rule_ids)) == len(rule_ids) <= 25_000
    for rule in driver["rules"]:
        assert 0 < len(rule["shortDescription"]["text"]) <= MAX_DESCRIPTION
        assert 0 < len(rule["fullDescription"]["text"]) <= MAX_DESCRIPTION
        assert rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("note", "warning", "error")
        assert len(rule["properties"]["tags"]) <= 20
    hashes = [result["partialFingerprints"]["primaryLocationLineHash"] for result in run["results"]]
    assert len(set(hashes)) == len(hashes)
    assert len(run["results"]) <= 25_000
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("warning", "error") and result["message"]["text"]
        assert len(result["locations"]) == 1  # GitHub uses only the first
        for location in [result["locations"][0], *thread_flow(result)]:
            physical = location["physicalLocation"]
            uri = physical["artifactLocation"]["uri"]
            assert URI_REFERENCE.match(uri) and not uri.startswith(("/", "./", "file:"))
            assert physical["region"]["startLine"] >= 1
        assert len(thread_flow(result)) <= 1_000
    return log


def thread_flow(result: dict[str, Any]) -> list[dict[str, Any]]:
    if "codeFlows" not in result:
        return []
    ((flow,),) = [code_flow["threadFlows"] for code_flow in result["codeFlows"]]
    return [step["location"] for step in flow["locations"]]


def located(result: dict[str, Any]) -> tuple[str, int]:
    physical = result["locations"][0]["physicalLocation"]
    return physical["artifactLocation"]["uri"], physical["region"]["startLine"]


def test_real_runs_validate_and_show_the_new_sites_only(real_run: RealRun) -> None:
    text = render_sarif(real_run.comparison, REPO_ROOT)
    assert_no_absolute_paths(text)
    (run,) = sarif(text)["runs"]
    results = run["results"]
    # New sites only (the known leak_small and the fixed leak_many are not alerts); failing first.
    assert [(r["ruleId"], r["level"], located(r)) for r in results] == [
        ("memgate/leak/indirect", "error", (MEMPROG_PATH, source_line("parent->child = malloc(64)"))),
        ("memgate/leak/definite", "error", (MEMPROG_PATH, source_line("struct node *parent = malloc"))),
        ("memgate/error/heap-buffer-overflow", "error",
         (MEMPROG_PATH, source_line("int value = ((volatile int *)a)[10];"))),
        ("memgate/error/SEGV", "error", (MEMPROG_PATH, source_line("*null = 1;"))),
    ]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == [
        "memgate/error/SEGV", "memgate/error/heap-buffer-overflow", "memgate/leak/definite",
        "memgate/leak/indirect"]
    assert results[0]["message"]["text"] == (
        "new indirect leak: 64 B in 1 block at leak_tree < main (suite unit)")
    assert results[0]["properties"] == {"suite": "unit", "kind": "indirect", "bytes": 64, "blocks": 1,
                                        "status": "new",
                                        "fingerprint": real_run.comparison.suites[0].sites[0].fingerprint}
    main_calls_tree = source_line('"leak_tree")) leak_tree();')
    assert [(step["message"]["text"], step["physicalLocation"]["region"]["startLine"])
            for step in thread_flow(results[1])] == [
        (f"#0 leak_tree ({MEMPROG_PATH}:{source_line('struct node *parent = malloc')})",
         source_line("struct node *parent = malloc")),
        (f"#1 main ({MEMPROG_PATH}:{main_calls_tree})", main_calls_tree),
    ]
    assert results[2]["properties"]["count"] == 1
    (invocation,) = run["invocations"]
    pid = real_run.records["crashy"].processes[0].pid
    assert invocation == {"executionSuccessful": False, "toolExecutionNotifications": [
        {"level": "warning", "message": {"text": "suite errs: incomplete figures: the sanitizer stopped "
                                                 "the process at the first error (heap-buffer-overflow): "
                                                 "no leak check"}},
        {"level": "error", "message": {"text": f"suite crashy crashed: killed by SIGSEGV (process {pid})"}},
    ]}


@pytest.mark.clang
def test_fingerprints_are_the_same_for_a_clang_build(real_run: RealRun, real_run_clang: RealRun) -> None:
    def keys(run: RealRun) -> list[tuple[str, str]]:
        (sarif_run,) = sarif(render_sarif(run.comparison, REPO_ROOT))["runs"]
        return [(result["ruleId"], result["partialFingerprints"]["primaryLocationLineHash"])
                for result in sarif_run["results"]]

    assert keys(real_run) == keys(real_run_clang)


def test_sites_outside_the_repository_and_odd_paths() -> None:
    outside = (Frame(function="g_main_loop_run", file="/usr/include/glib.h", line=10), Frame(function="run"))
    spaced = REPO_ROOT / "src dir" / "a#b.c"  # need not exist: absolute and inside the repository
    inside = (Frame(function="odd", file=str(spaced), line=None),)
    record = suite(leaks=[leak("definite", 8, 1, "run").model_copy(update={"stack": outside}),
                          leak("definite", 16, 1, "odd").model_copy(update={"stack": inside})])
    (run,) = sarif(render_sarif(compare([record], {}), REPO_ROOT, fallback_path="pyproject.toml"))["runs"]
    by_site = {r["message"]["text"].split(" at ")[1].split(" ")[0]: r for r in run["results"]}
    assert located(by_site["run"]) == ("pyproject.toml", 1)
    assert by_site["run"]["message"]["text"].endswith(
        "No frame of its stack is in the repository: it is shown at the memgate config.")
    assert "codeFlows" not in by_site["run"]
    assert located(by_site["odd"]) == ("src%20dir/a%23b.c", 1)
    assert [step["message"]["text"] for step in thread_flow(by_site["odd"])] == ["#0 odd (src dir/a#b.c)"]


def test_ungated_sites_are_warnings_and_results_are_capped_failing_first() -> None:
    record = suite(leaks=[leak("possible", 8 + i, 1, f"maybe_{i}", "main") for i in range(3)],
                   errors=[error("InvalidRead", f"read_{i}", "main") for i in range(2)])
    (run,) = sarif(render_sarif(compare([record], {}), REPO_ROOT, max_results=3))["runs"]
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [
        ("memgate/error/InvalidRead", "error"), ("memgate/error/InvalidRead", "error"),
        ("memgate/leak/possible", "warning")]
    rules = {rule["id"]: rule["defaultConfiguration"]["level"] for rule in run["tool"]["driver"]["rules"]}
    assert rules == {"memgate/error/InvalidRead": "error", "memgate/leak/possible": "warning"}
    assert run["invocations"] == [{"executionSuccessful": True, "toolExecutionNotifications": [
        {"level": "warning", "message": {
            "text": "2 more new sites are not included (GitHub's limit per run): see the JSON report"}}]}]


def test_hostile_kinds_and_no_findings() -> None:
    evil = "Bad Kind\x1b]0;x\x07\u202e\udcff\"/../"
    record = suite(evil, errors=[error(evil, "fn" + evil, "main", description=evil)])
    text = render_sarif(compare([record], {}), REPO_ROOT)
    text.encode("utf-8")
    (run,) = sarif(text)["runs"]
    (result,) = run["results"]
    assert result["ruleId"] == "memgate/error/Bad_Kind__0_x_____.._"
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    empty = sarif(render_sarif(compare([suite(metrics={"heap_peak_bytes": 5})], {}), REPO_ROOT))
    # An empty run is how code scanning learns that earlier alerts are fixed.
    assert empty["runs"][0]["results"] == [] and empty["runs"][0]["tool"]["driver"]["rules"] == []
    assert empty["runs"][0]["invocations"] == [{"executionSuccessful": True}]


VENDORED = {
    "junit-10.xsd": "a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6",
    "sarif-schema-2.1.0.json": "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e",
}


def test_schemas_are_the_vendored_files() -> None:
    """Byte for byte as shipped (tests/report/schemas/README.md says where from)."""
    for name, digest in VENDORED.items():
        assert hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == digest, name
    assert SARIF_SCHEMA["id"] == ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                                  "sarif-schema-2.1.0.json")


def test_free_and_allocation_stacks_are_related_locations(real_free_errors: RealRun) -> None:
    text = render_sarif(real_free_errors.comparison, REPO_ROOT)
    assert_no_absolute_paths(text)
    (run,) = sarif(text)["runs"]
    related = {result["properties"]["suite"]: result.get("relatedLocations", []) for result in run["results"]}
    seen = {suite: [(location["message"]["text"], location["physicalLocation"]["region"]["startLine"])
                    for location in locations] for suite, locations in related.items()}
    assert {location["physicalLocation"]["artifactLocation"]["uri"]
            for locations in related.values() for location in locations} == {MEMPROG_PATH}
    freed, allocated = line_in("use_after_free", "free(a);"), line_in("use_after_free", "malloc(")
    assert seen["uaf-asan"] == [
        (f"freed by thread T0 here: use_after_free ({MEMPROG_PATH}:{freed})", freed),
        (f"previously allocated by thread T0 here: use_after_free ({MEMPROG_PATH}:{allocated})", allocated),
    ]
    (free_text, free_line), memcheck_alloc = seen["uaf-memcheck"]
    assert free_text.startswith("Address 0x") and free_line == freed
    assert free_text.endswith(
        f"is 8 bytes inside a block of size 40 free'd: use_after_free ({MEMPROG_PATH}:{freed})")
    assert memcheck_alloc == (f"Block was alloc'd at: use_after_free ({MEMPROG_PATH}:{allocated})", allocated)
    overflow = line_in("invalid_write", "malloc(")
    assert seen["overflow-asan"] == [
        (f"allocated by thread T0 here: invalid_write ({MEMPROG_PATH}:{overflow})", overflow)]
    assert all([location["id"] for location in locations] == list(range(len(locations)))
               for locations in related.values())
