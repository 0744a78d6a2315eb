"""OpenMetrics: real ASan runs rendered and read back with prometheus_client's OpenMetrics parser
(strict: it refuses interleaved families, a bad UNIT, bad escapes and a missing ``# EOF``)."""

from __future__ import annotations

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from recordkit import suite

from memgate.baselines.model import Baseline
from memgate.comparison import compare
from memgate.metrics import METRIC_NAMES
from memgate.report.openmetrics import HELP, render_openmetrics

from .conftest import RealRun

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse(text: str) -> tuple[Samples, dict[str, tuple[str, str, str]]]:
    """family -> labels -> value, and family -> (type, unit, help)."""
    assert text.endswith("# EOF\n")
    samples: Samples = {}
    meta: dict[str, tuple[str, str, str]] = {}
    for family in text_string_to_metric_families(text):
        meta[family.name] = (family.type, family.unit, family.documentation)
        for sample in family.samples:
            assert sample.name == family.name
            samples.setdefault(family.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples, meta


def test_real_runs_parse_back_to_the_measured_figures(real_run: RealRun) -> None:
    samples, meta = parse(render_openmetrics(real_run.comparison))
    unit, errs, crashy = ((("suite", name),) for name in ("unit", "errs", "crashy"))
    measured = real_run.records["unit"].metrics
    assert samples == {
        "memgate_leak_definite_bytes": {unit: 48},
        "memgate_leak_definite_blocks": {unit: 2},
        "memgate_leak_indirect_bytes": {unit: 64},
        "memgate_leak_indirect_blocks": {unit: 1},
        "memgate_errors": {unit: 0, errs: 1, crashy: 1},
        "memgate_alloc_calls": {unit: measured["alloc_calls"]},
        "memgate_new_sites": {
            (("category", "leak"), ("suite", "unit")): 2, (("category", "error"), ("suite", "unit")): 0,
            (("category", "leak"), ("suite", "errs")): 0, (("category", "error"), ("suite", "errs")): 1,
            (("category", "leak"), ("suite", "crashy")): 0, (("category", "error"), ("suite", "crashy")): 1,
        },
    }
    assert meta["memgate_leak_definite_bytes"] == ("gauge", "bytes", HELP["leak_definite_bytes"])
    assert meta["memgate_leak_definite_blocks"] == ("gauge", "", HELP["leak_definite_blocks"])
    # The figure the comparison judged is the one exported.
    (alloc,) = [row for row in real_run.comparison.suites[0].rows if row.metric == "alloc_calls"]
    assert alloc.current == measured["alloc_calls"] and alloc.delta == 1


def test_exact_text_and_every_metric_has_help() -> None:
    record = suite(metrics={"heap_peak_bytes": 1_048_576, "rss_peak_bytes": 2_621_440})
    assert set(HELP) == set(METRIC_NAMES)
    text = render_openmetrics(compare([record], {}))
    assert text.splitlines()[-9:] == [
        "# TYPE memgate_rss_peak_bytes gauge",
        "# UNIT memgate_rss_peak_bytes bytes",
        f"# HELP memgate_rss_peak_bytes {HELP['rss_peak_bytes']}",
        'memgate_rss_peak_bytes{suite="unit"} 2621440',
        "# TYPE memgate_new_sites gauge",
        "# HELP memgate_new_sites New leak and error sites (not in the baseline).",
        'memgate_new_sites{suite="unit",category="leak"} 0',
        'memgate_new_sites{suite="unit",category="error"} 0',
        "# EOF",
    ]
    samples, _ = parse(text)
    assert samples["memgate_heap_peak_bytes"] == {(("suite", "unit"),): 1_048_576}


@pytest.mark.parametrize("name", ['a"b', "back\\slash", "new\nline", "\u202eevil\x1b[0m", "\udcffbyte"])
def test_label_values_are_escaped(name: str) -> None:
    text = render_openmetrics(compare([suite(name, metrics={"heap_peak_bytes": 7})], {}))
    text.encode("utf-8")
    samples, _ = parse(text)
    expected = name.replace("\n", "\ufffd").replace("\u202e", "\ufffd").replace("\x1b", "\ufffd")
    expected = expected.replace("\udcff", "\ufffd")
    assert samples["memgate_heap_peak_bytes"] == {(("suite", expected),): 7}


def test_missing_figures_have_no_sample_and_no_suites_is_just_eof() -> None:
    before = suite(metrics={"alloc_calls": 10})
    now = suite(metrics={"heap_peak_bytes": 5})
    samples, _ = parse(render_openmetrics(compare([now], {"unit": Baseline.from_suite(before)})))
    assert "memgate_alloc_calls" not in samples  # in the baseline, not measured now: no invented 0
    assert samples["memgate_heap_peak_bytes"] == {(("suite", "unit"),): 5}
    assert render_openmetrics(compare([], {})) == "# EOF\n"
