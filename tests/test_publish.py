"""Where a comparison goes besides the terminal (``memgate.publish``): report files, the comment body
from a Markdown file, GitHub's job summary, step outputs and annotations. End-to-end comments against a
local forge are in tests/cli/test_comment.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from recordkit import leak, suite

from memgate import publish
from memgate.baselines.model import Baseline
from memgate.comparison import Comparison, compare
from memgate.errors import UsageError
from memgate.report.markdown import MARKER


def new_leaks(count: int) -> Comparison:
    """A suite with ``count`` new leak sites (prog.c, relative to the repository root /repo)."""
    leaks = [leak("definite", 16, 1, f"leaky_{index}") for index in range(count)]
    return compare([suite(leaks=leaks)], {"unit": Baseline.from_suite(suite())})



def test_the_comment_body_has_one_marker_at_the_top_and_no_live_mentions(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    path.write_text(f"{MARKER}\n## memgate\ncc @someone {MARKER}\n")
    body = publish.comment_body_from_file(path)
    assert body.startswith(f"{MARKER}\n") and body.count(MARKER) == 1
    assert "@someone" not in body and "@\u200bsomeone" in body


def test_a_markdown_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    path.write_text("x" * publish.MAX_COMMENT_FILE_BYTES)
    assert publish.comment_body_from_file(path).count("x") == publish.MAX_COMMENT_FILE_BYTES
    path.write_text("x" * (publish.MAX_COMMENT_FILE_BYTES + 1))
    with pytest.raises(UsageError, match="holds more than the 1,000,000 bytes"):
        publish.comment_body_from_file(path)


def test_a_missing_markdown_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the Markdown file"):
        publish.comment_body_from_file(tmp_path / "missing.md")


def test_annotations_are_one_per_new_site_up_to_the_limit() -> None:
    lines = publish.annotation_lines(new_leaks(publish.MAX_ANNOTATIONS + 2), Path("/repo"))
    assert len(lines) == publish.MAX_ANNOTATIONS + 1
    assert all(line.startswith("::error title=memgate%3A new leak in suite unit::") for line in lines[:-1])
    assert lines[-1] == "::notice::2 more new sites: see the job summary"


def test_a_grown_site_that_fails_is_annotated_as_grown() -> None:
    before = suite(leaks=[leak("definite", 16, 1, "leaky")])
    now = suite(leaks=[leak("definite", 48, 3, "leaky")])
    lines = publish.annotation_lines(compare([now], {"unit": Baseline.from_suite(before)}), Path("/repo"))
    assert lines == ["::error title=memgate%3A grown leak in suite unit::definite: leaky"]


def test_job_outputs_only_under_github_actions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs, summary = tmp_path / "output", tmp_path / "summary"
    env = {"GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)}

    def job_outputs(env: dict[str, str]) -> None:
        publish.github_job_outputs(new_leaks(1), "# summary", repo_root=Path("/repo"),
                                   report_json=tmp_path / "report.json", markdown_path=None,
                                   comment_url="https://forge.test/c/1", env=env)

    job_outputs(env)
    assert not outputs.exists() and not summary.exists() and capsys.readouterr().out == ""
    job_outputs({**env, "GITHUB_ACTIONS": "true"})
    assert summary.read_text().startswith("# summary")
    written = outputs.read_text().splitlines()
    assert written == ["verdict=fail", f"report-json={(tmp_path / 'report.json').resolve()}", "markdown=",
                       "comment-url=https://forge.test/c/1"]
    assert capsys.readouterr().out.startswith("::error ")
