"""GitLab code quality: real ASan runs rendered and checked against the fields GitLab requires
(tests/report/schemas/gitlab-codequality.schema.json), exact issues, stable fingerprints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from recordkit import error, leak, suite

from memgate.baselines.model import Baseline
from memgate.comparison import compare
from memgate.config import Config
from memgate.fingerprint import fingerprint, site_of
from memgate.records import Frame, Leak
from memgate.report.codequality import render_codequality

from .conftest import MEMPROG_PATH, REPO_ROOT, RealRun, assert_no_absolute_paths, source_line

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "gitlab-codequality.schema.json").read_text())


def issues(text: str) -> list[dict[str, Any]]:
    """Parsed, valid for GitLab, no BOM, fingerprints unique (GitLab would merge duplicates)."""
    assert text.startswith("[") and text.endswith("]\n")
    data = json.loads(text)
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    fingerprints = [issue["fingerprint"] for issue in data]
    assert len(set(fingerprints)) == len(fingerprints)
    assert all(len(fingerprint) == 32 and int(fingerprint, 16) >= 0 for fingerprint in fingerprints)
    return list(data)


def summary(data: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    return [(issue["check_name"], issue["severity"], issue["location"]["path"],
             issue["location"]["lines"]["begin"]) for issue in data]


def test_real_runs_give_gitlabs_fields_and_exact_issues(real_run: RealRun) -> None:
    text = render_codequality(real_run.comparison, REPO_ROOT)
    assert_no_absolute_paths(text)
    data = issues(text)
    assert summary(data) == [
        ("memgate/metric/leak_indirect_bytes", "major", "memgate.toml", 1),
        ("memgate/metric/leak_indirect_blocks", "major", "memgate.toml", 1),
        ("memgate/metric/alloc_calls", "minor", "memgate.toml", 1),
        ("memgate/leak/indirect", "major", MEMPROG_PATH, source_line("parent->child = malloc(64)")),
        ("memgate/leak/definite", "major", MEMPROG_PATH, source_line("struct node *parent = malloc")),
        ("memgate/leak/definite", "info", MEMPROG_PATH, source_line("void leak_small")),
        ("memgate/suite/incomplete", "major", "memgate.toml", 1),
        ("memgate/metric/errors", "major", "memgate.toml", 1),
        ("memgate/error/heap-buffer-overflow", "critical", MEMPROG_PATH,
         source_line("int value = ((volatile int *)a)[10];")),
        ("memgate/suite/crashed", "critical", "memgate.toml", 1),
        ("memgate/metric/errors", "major", "memgate.toml", 1),
        ("memgate/error/SEGV", "critical", MEMPROG_PATH, source_line("*null = 1;")),
    ]
    descriptions = [issue["description"] for issue in data]
    assert descriptions[0] == ("[unit] over its fail threshold: leak_indirect_bytes: 64 B, +64 B from 0 B "
                               "(limit fail +0); caused by: new indirect leak at leak_tree < main: 64 B in "
                               "1 block")
    assert descriptions[2].startswith("[unit] over its warn threshold: alloc_calls: ")
    assert descriptions[3] == "[unit] new indirect leak: 64 B in 1 block at leak_tree < main"
    assert descriptions[5] == "[unit] known definite leak: 16 B in 1 block at leak_small < main"
    assert descriptions[6] == ("[errs] incomplete figures, no verdict: the sanitizer stopped the process "
                               "at the first error (heap-buffer-overflow): no leak check")
    pid = real_run.records["crashy"].processes[0].pid
    assert descriptions[9] == f"[crashy] the suite crashed: killed by SIGSEGV (process {pid})"
    assert {issue["type"] for issue in data} == {"issue"}
    categories = [issue["categories"] for issue in data][:4]
    assert categories == [["Bug Risk"], ["Bug Risk"], ["Performance"], ["Bug Risk"]]


@pytest.mark.clang
def test_fingerprints_are_the_same_for_a_clang_build(real_run: RealRun, real_run_clang: RealRun) -> None:
    """Other addresses, other code, a fresh process: the same issues, the same fingerprints."""
    gcc = issues(render_codequality(real_run.comparison, REPO_ROOT))
    clang = issues(render_codequality(real_run_clang.comparison, REPO_ROOT))
    assert [(i["check_name"], i["fingerprint"]) for i in gcc] == [
        (i["check_name"], i["fingerprint"]) for i in clang]


def leak_at(line: int) -> Leak:
    """A leak made the way the parsers make one, its frames in memprog.c at ``line``."""
    stack = (Frame(function="malloc", object="/usr/lib/libasan.so.8"),
             Frame(function="leak_small", file=MEMPROG_PATH, line=line),
             Frame(function="main", file=MEMPROG_PATH))
    return Leak(kind="definite", bytes=16, blocks=1, stack=stack,
                fingerprint=fingerprint("leak:definite", stack), site=site_of(stack))


def test_fingerprints_ignore_line_numbers_and_differ_by_suite() -> None:
    """An edit above the leak moves it: the same issue for GitLab, at its new line."""
    found = [issues(render_codequality(compare([suite(name, leaks=[leak_at(line)])], {}), REPO_ROOT))[-1]
             for name, line in (("unit", 25), ("unit", 65), ("other", 25))]
    assert [issue["location"]["lines"]["begin"] for issue in found] == [25, 65, 25]
    assert found[0]["fingerprint"] == found[1]["fingerprint"] != found[2]["fingerprint"]


def test_severity_of_each_kind_of_finding() -> None:
    """Possible leaks are not gated by default: a new one is minor; a fixed site is not an issue."""
    before = suite(leaks=[leak("definite", 8, 1, "gone", "main")],
                   metrics={"heap_peak_bytes": 1000, "alloc_calls": 10})
    now = suite(leaks=[leak("possible", 8, 1, "maybe", "main")],
                errors=[error("InvalidRead", "read", "main")], metrics={"heap_peak_bytes": 1060})
    data = issues(render_codequality(compare([now], {"unit": Baseline.from_suite(before)}), REPO_ROOT))
    assert [(i["check_name"], i["severity"], i["description"]) for i in data] == [
        ("memgate/metric/errors", "major",
         "[unit] over its fail threshold: errors: 1, +1 from 0 (limit fail +0); caused by: new InvalidRead "
         "error at read < main: 1 occurrence"),
        ("memgate/metric/heap_peak_bytes", "minor",
         "[unit] over its warn threshold: heap_peak_bytes: 1.04 KiB, +60 B (+6.0%) from 1000 B "
         "(limit warn 5% / fail 10%)"),
        ("memgate/metric/alloc_calls", "minor", "[unit] not measured: alloc_calls: not measured in this run "
                                                "(baseline 10) (limit warn 5%)"),
        ("memgate/error/InvalidRead", "critical", "[unit] new InvalidRead error: 1 occurrence at read < main "
                                                  "(no frame of its stack is in the repository)"),
        ("memgate/leak/possible", "minor", "[unit] new possible leak: 8 B in 1 block at maybe < main "
                                           "(no frame of its stack is in the repository)"),
    ]


def test_sites_outside_the_repository_go_to_the_config_file(tmp_path: Path) -> None:
    stack = (Frame(function="g_main_loop_run", file="/usr/include/glib.h", line=10), Frame(function="run"))
    record = suite(leaks=[leak("definite", 8, 1, "run").model_copy(update={"stack": stack})])
    comparison = compare([record], {})
    config = REPO_ROOT / "pyproject.toml"
    data = issues(render_codequality(comparison, REPO_ROOT, fallback_path=str(config)))
    (site,) = [i for i in data if i["check_name"] == "memgate/leak/definite"]
    assert site["location"] == {"path": "pyproject.toml", "lines": {"begin": 1}}
    assert site["description"] == ("[unit] new definite leak: 8 B in 1 block at run "
                                   "(no frame of its stack is in the repository)")
    outside = issues(render_codequality(comparison, REPO_ROOT, fallback_path=str(tmp_path / "memgate.toml")))
    assert {i["location"]["path"] for i in outside} == {"memgate.toml"}
    relative = issues(render_codequality(comparison, REPO_ROOT, fallback_path="./pyproject.toml"))
    assert {i["location"]["path"] for i in relative} == {"pyproject.toml"}


def test_hostile_text_and_nothing_to_report() -> None:
    evil = "x\x1b[2J\u202e\udcff\n\"]"
    record = suite(evil, errors=[error(evil, evil, "main", description=evil)])
    text = render_codequality(compare([record], {}), REPO_ROOT)
    text.encode("utf-8")
    data = issues(text)
    assert all("\x1b" not in i["description"] and "\n" not in i["description"] for i in data)
    assert data[-1]["check_name"] == "memgate/error/x\ufffd[2J\ufffd\ufffd\ufffd\"]"
    assert render_codequality(compare([suite(metrics={"heap_peak_bytes": 5})], {}), REPO_ROOT) == "[]\n"
    assert render_codequality(compare([], {}), REPO_ROOT) == "[]\n"
    # heap_peak_bytes has relative thresholds only, which a new suite cannot fail: nothing to report
    assert Config().thresholds_for("unit")["heap_peak_bytes"].fail is not None
