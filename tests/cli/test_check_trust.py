"""``memgate check`` on real memcheck runs: no false alarm from memcheck's definite/possible flip, a
grown known site named as the cause, and the JSON report carrying the comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memgate.cli import main
from tests.cli.test_check import check, write_config
from tests.conftest import BuildProgram

MOVED = "64 bytes moved from {0} to {1} at make_table < main: memcheck's classification, not a new leak"


def flip_builds(build_program: BuildProgram) -> dict[str, Path]:
    """The same 64-byte leak: definitely lost (plain), possibly lost (-DINTERIOR), and possibly lost
    next to a real new 24-byte leak (-DINTERIOR -DEXTRA)."""
    return {"definite": build_program("flip.c"),
            "possible": build_program("flip.c", flags=("-DINTERIOR",)),
            "possible+new": build_program("flip.c", flags=("-DINTERIOR", "-DEXTRA")),
            "definite+new": build_program("flip.c", flags=("-DEXTRA",))}


@pytest.mark.parametrize(("before", "after"), [("definite", "possible"), ("possible", "definite")])
def test_a_leak_memcheck_classifies_the_other_way_passes_with_a_note(
    tmp_path: Path, build_program: BuildProgram, capsys: pytest.CaptureFixture[str], before: str, after: str
) -> None:
    builds = flip_builds(build_program)
    config = write_config(tmp_path, builds[before], "memcheck")
    assert main(["baseline", "update", "--config", str(config), "--jobs", "1"]) == 0
    baseline = json.loads((tmp_path / "baselines" / "unit.json").read_text())
    assert [(site["kind"], site["bytes"]) for site in baseline["leaks"]] == [(before, 64)]

    write_config(tmp_path, builds[after], "memcheck")
    capsys.readouterr()
    assert check(config, "--json", str(tmp_path / "report.json")) == 0
    out = capsys.readouterr().out
    assert MOVED.format(before, after) in out and "memgate: PASS" in out
    suite = json.loads((tmp_path / "report.json").read_text())["comparison"]["suites"][0]
    assert [(s["status"], s["kind"], s["moved_from"]) for s in suite["sites"]] == [("known", after, before)]
    rows = {row["metric"]: row for row in suite["rows"]}
    assert rows[f"leak_{after}_bytes"]["delta"] == 64 and rows[f"leak_{after}_bytes"]["reclassified"] == 64
    assert rows[f"leak_{before}_bytes"]["reclassified"] == -64
    assert {row["verdict"] for row in rows.values()} == {"pass"}


@pytest.mark.parametrize("after", ["possible+new", "definite+new"])
def test_a_real_new_leak_next_to_the_flip_still_fails(
    tmp_path: Path, build_program: BuildProgram, capsys: pytest.CaptureFixture[str], after: str
) -> None:
    builds = flip_builds(build_program)
    config = write_config(tmp_path, builds["possible" if after == "definite+new" else "definite"], "memcheck")
    assert main(["baseline", "update", "--config", str(config), "--jobs", "1"]) == 0
    write_config(tmp_path, builds[after], "memcheck")
    capsys.readouterr()
    assert check(config) == 1
    out = capsys.readouterr().out
    assert ("leak_definite_bytes, leak_definite_blocks FAIL: new definite leak at extra_leak < main: 24 B in "
            "1 block") in out
    assert "memgate: FAIL" in out


def test_a_known_site_that_grew_is_named_as_the_cause_in_every_report(
    tmp_path: Path, build_program: BuildProgram, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, build_program("memprog.c"), "memcheck", "leak_small", "leak_many")
    assert main(["baseline", "update", "--config", str(config), "--jobs", "1"]) == 0
    write_config(tmp_path, build_program("memprog.c"), "memcheck", "leak_small", "leak_many", "leak_many")
    capsys.readouterr()
    reports = {name: tmp_path / f"report.{name}" for name in ("md", "xml", "sarif", "cq", "json")}
    assert check(config, "--markdown", str(reports["md"]), "--junit", str(reports["xml"]),
                 "--sarif", str(reports["sarif"]), "--codequality", str(reports["cq"]),
                 "--json", str(reports["json"])) == 1
    cause = "grown definite leak at leak_many < main: +300 B, +3 blocks"
    out = capsys.readouterr().out
    assert f"unit: leak_definite_bytes, leak_definite_blocks FAIL: {cause}" in out
    assert "FAIL     unit: definite leak, +300 B, +3 blocks (600 B in 6 blocks, was 300 B in 3 blocks)" in out
    markdown = reports["md"].read_text()
    assert "grown definite leak · +300 B, +3 blocks (600 B in 6 blocks, was 300 B in 3 blocks)" in markdown
    assert "already in the baseline" not in markdown
    assert cause.replace("<", "&lt;") in reports["xml"].read_text()
    results = json.loads(reports["sarif"].read_text())["runs"][0]["results"]
    assert [(r["properties"]["status"], r["level"]) for r in results] == [("grown", "error")]
    issues = json.loads(reports["cq"].read_text())
    assert ("memgate/leak/definite", "major") in [(i["check_name"], i["severity"]) for i in issues]
    document = json.loads(reports["json"].read_text())
    assert document["schema_version"] == 2 and document["exit_code"] == 1
    assert document["comparison"]["outcome"] == "fail"
    (suite,) = document["comparison"]["suites"]
    sites = {(s["status"], s["site"]): s for s in suite["sites"]}
    grown = sites[("grown", "leak_many < main")]
    assert (grown["delta_bytes"], grown["delta_blocks"], grown["verdict"]) == (300, 3, "fail")
    assert ("known", "leak_small < main") in sites
    bytes_row = next(row for row in suite["rows"] if row["metric"] == "leak_definite_bytes")
    assert (bytes_row["baseline"], bytes_row["current"], bytes_row["delta"]) == (316, 616, 300)
    assert (bytes_row["crossed"], bytes_row["verdict"], bytes_row["causes"]) == ("fail +0", "fail", [cause])


def test_compare_writes_the_comparison_and_reads_reports_of_both_schema_versions(
    tmp_path: Path, build_program: BuildProgram, capsys: pytest.CaptureFixture[str]
) -> None:
    builds = flip_builds(build_program)
    config = write_config(tmp_path, builds["definite"], "memcheck")
    assert main(["run", "--config", str(config), "--jobs", "1", "--json", str(tmp_path / "before.json")]) == 0
    write_config(tmp_path, builds["definite+new"], "memcheck")
    assert check(config, "--json", str(tmp_path / "after.json")) == 1  # no baseline: a new suite's leak fails
    after = json.loads((tmp_path / "after.json").read_text())
    assert after["schema_version"] == 2 and after["comparison"]["suites"][0]["has_baseline"] is False
    # A report of schema version 1 (the run only, as memgate wrote it before) is read as it was.
    old = json.loads((tmp_path / "before.json").read_text())
    old["schema_version"] = 1
    (tmp_path / "before-v1.json").write_text(json.dumps(old))

    code = main(["compare", "--json", str(tmp_path / "compared.json"), str(tmp_path / "before-v1.json"),
                 str(tmp_path / "after.json")])
    assert code == 1
    compared = json.loads((tmp_path / "compared.json").read_text())
    assert compared["exit_code"] == 1 and compared["comparison"]["outcome"] == "fail"
    assert compared["suites"] == after["suites"]  # the run, as it was read
    (suite,) = compared["comparison"]["suites"]
    assert [(s["status"], s["site"]) for s in suite["sites"]] == [
        ("new", "extra_leak < main"), ("known", "make_table < main")]
    # A report that carries a comparison is a baseline source as well.
    assert main(["baseline", "update", "--config", str(config), "--from-report",
                 str(tmp_path / "compared.json")]) == 0
    baseline = json.loads((tmp_path / "baselines" / "unit.json").read_text())
    assert baseline["metrics"]["leak_definite_bytes"] == 88


def clone_and_check(folder: Path) -> tuple[dict[str, object], dict[str, object], str]:
    """tests/programs/memprog.c in a git repository at ``folder``, built there for ASan and for
    memcheck and checked (no baseline yet): the JSON report, the SARIF log, the baseline it writes."""
    import shutil
    import subprocess

    from tests.cli.test_check import git_in
    from tests.conftest import PROGRAMS

    (folder / "src").mkdir(parents=True)
    shutil.copy(PROGRAMS / "memprog.c", folder / "src" / "memprog.c")
    git_in(folder)("init", "-q")
    for name, flags in (("plain", []), ("asan", ["-fsanitize=address"])):
        # A relative source path, as a build system in the repository gives it: ASan records it as is.
        subprocess.run(["gcc", "-g", "-O0", "-fno-omit-frame-pointer", *flags, "-o", f"memprog-{name}",
                        "src/memprog.c"], cwd=folder, check=True)
    (folder / "memgate.toml").write_text(
        f'[[suite]]\nname = "vg"\ncommand = ["{folder}/memprog-plain", "leak_small", "invalid_read"]\n'
        'tool = "memcheck"\n\n'
        f'[[suite]]\nname = "asan"\ncommand = ["{folder}/memprog-asan", "leak_small"]\ntool = "asan"\n')
    config = str(folder / "memgate.toml")
    assert main(["check", "--config", config, "--jobs", "1", "--json", str(folder / "r.json"),
                 "--sarif", str(folder / "r.sarif")]) == 1  # new suites with a leak
    # The invalid read is on purpose: its site is compared too, so the baseline records it.
    assert main(["baseline", "update", "--config", config, "--jobs", "1", "--allow-errors"]) == 0
    baselines = "".join(path.read_text() for path in sorted((folder / "baselines").glob("*.json")))
    return (json.loads((folder / "r.json").read_text()), json.loads((folder / "r.sarif").read_text()),
            baselines)


def test_frames_reports_and_sarif_are_the_same_whichever_folder_the_repository_is_in(
    tmp_path: Path, build_program: BuildProgram
) -> None:
    build_program("memprog.c", flags=("-fsanitize=address",))  # skips without the compiler
    first = clone_and_check(tmp_path / "a" / "repo")
    second = clone_and_check(tmp_path / "b" / "other-name")

    def findings(report: dict[str, object]) -> list[object]:
        suites = report["suites"]
        assert isinstance(suites, list)
        return [(suite["name"], process["leaks"], process["errors"]) for suite in suites
                for process in suite["processes"]]

    assert findings(first[0]) == findings(second[0])
    leaks = [leak for _, found, _ in findings(first[0]) for leak in found]
    assert {leak["stack"][1]["file"] for leak in leaks} == {"src/memprog.c"}  # memcheck and ASan alike
    assert first[0]["comparison"] == second[0]["comparison"]
    assert first[1]["runs"][0]["results"] == second[1]["runs"][0]["results"]
    uris = {location["physicalLocation"]["artifactLocation"]["uri"]
            for result in first[1]["runs"][0]["results"] for location in result["locations"]}
    assert uris == {"src/memprog.c"}
    assert first[2] == second[2] and "src/memprog.c" in first[2] and str(tmp_path) not in first[2]


def test_heap_growth_names_the_dhat_stacks_whose_bytes_grew_most(
    tmp_path: Path, build_program: BuildProgram, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = build_program("heapprog.c")
    config = write_config(tmp_path, binary, "dhat", "peak", "calls")
    assert main(["baseline", "update", "--config", str(config), "--jobs", "1"]) == 0
    baseline = json.loads((tmp_path / "baselines" / "unit.json").read_text())
    kept = {site["site"]: (site["bytes"], site["blocks"]) for site in baseline["heap_sites"]}
    assert kept["peak < main"] == (8_389_608, 3) and kept["calls < main"] == (3_900, 20)

    # peak twice: alloc_calls +3 (+13%, over its warn limit), and a new 4 KiB stack.
    write_config(tmp_path, binary, "dhat", "peak", "peak", "calls", "leak")
    capsys.readouterr()
    assert check(config, "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")) == 0
    out = capsys.readouterr().out
    assert "unit: +8.00 MiB, +3 blocks at peak < main (16.00 MiB, was 8.00 MiB)" in out
    assert "unit: +4.00 KiB, +1 block at leak < main (4.00 KiB, not among the baseline's" in out
    (suite,) = json.loads((tmp_path / "r.json").read_text())["comparison"]["suites"]
    assert [(item["site"], item["delta_bytes"], item["delta_blocks"]) for item in suite["heap_growth"]] == [
        ("peak < main", 8_389_608, 3), ("leak < main", 4_096, 1)]
    assert "peak &lt; main" in (tmp_path / "r.md").read_text()


def test_heap_growth_names_the_massif_stacks_that_grew_at_the_peak(
    tmp_path: Path, build_program: BuildProgram, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = build_program("sizeprog.c")
    config = write_config(tmp_path, binary, "massif", "peak=1000000")
    assert main(["baseline", "update", "--config", str(config), "--jobs", "1"]) == 0
    baseline = json.loads((tmp_path / "baselines" / "unit.json").read_text())
    assert [(site["site"], site["bytes"], site["peak_bytes"]) for site in baseline["heap_sites"]] == [
        ("peak < main", 1_000_000, 1_000_000)]

    write_config(tmp_path, binary, "massif", "peak=1500000")
    capsys.readouterr()
    assert check(config, "--json", str(tmp_path / "r.json")) == 1  # heap_peak_bytes +50%
    assert "unit: +488.28 KiB at peak < main (1.43 MiB, was 976.56 KiB)" in capsys.readouterr().out
    (suite,) = json.loads((tmp_path / "r.json").read_text())["comparison"]["suites"]
    assert [(item["site"], item["delta_bytes"], item["delta_blocks"]) for item in suite["heap_growth"]] == [
        ("peak < main", 500_000, None)]
