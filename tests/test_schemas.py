"""The JSON Schemas committed under memgate/schemas/ are those the records generate, and a report of a
repeated suite (runs, nondeterministic metrics, processes with their run) validates against its schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from recordkit import leak, suite

from memgate.report.json import render_report
from memgate.runner.suite import combine_runs
from memgate.runner.suites import make_report
from memgate.schemas import FOLDER, render, schemas


@pytest.mark.parametrize("name", sorted(schemas()))
def test_committed_schema_is_current(name: str) -> None:
    committed = (FOLDER / name).read_text(encoding="utf-8")
    assert committed == render(schemas()[name]), f"run `python -m memgate.schemas` to regenerate {name}"


def test_a_repeated_suite_report_validates() -> None:
    runs = [suite(metrics={"heap_peak_bytes": peak}, leaks=leaks)
            for peak, leaks in ((100, []), (150, [leak("definite", 64, 1, "leak_once", "main")]), (100, []))]
    report = make_report([combine_runs(runs, repeat=3, artifacts_dir="/a/unit")])
    document = json.loads(render_report(report))
    schema = json.loads((FOLDER / "report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    (record,) = document["suites"]
    assert [run["index"] for run in record["runs"]] == [1, 2, 3]
    assert [spread["metric"] for spread in record["nondeterministic"]] == [
        "leak_definite_bytes", "leak_definite_blocks", "heap_peak_bytes"]
    assert [process["run"] for process in record["processes"]] == [1, 2, 3]
