"""The comment body cut shared by both forges: marker kept, limit held, fences closed, pointer added."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memgate.forges.base import MARKER, cut_body

POINTER = "https://ci.example.test/runs/1"


def test_a_short_body_is_unchanged() -> None:
    assert cut_body(f"{MARKER}\nshort", 100, POINTER) == f"{MARKER}\nshort"


def test_the_marker_is_added_when_missing() -> None:
    assert cut_body("short", 100, POINTER) == f"{MARKER}\nshort"


def test_the_cut_falls_on_a_line_and_points_to_the_full_report() -> None:
    body = MARKER + "\n" + "".join(f"line {n}\n" for n in range(100))
    cut = cut_body(body, 300, POINTER)
    assert len(cut) <= 300
    kept, note = cut.split("\n\n**memgate:")
    assert body.startswith(kept + "\n")
    assert note == f" report truncated to fit the comment limit.** The full report: {POINTER}\n"


def test_an_open_code_fence_is_closed() -> None:
    body = f"{MARKER}\n```\n" + "frame #0 in leak()\n" * 100
    cut = cut_body(body, 400, None)
    assert len(cut) <= 400
    assert cut.count("```") == 2
    assert cut.endswith(
        "\n```\n\n**memgate: report truncated to fit the comment limit.** The full report is "
        "in the job log.\n"
    )


def test_a_marker_below_the_cut_moves_to_the_top() -> None:
    cut = cut_body("x" * 5000 + MARKER, 400, POINTER)
    assert cut.startswith(MARKER + "\n")
    assert cut.count(MARKER) == 1 and len(cut) <= 400


def test_a_limit_too_small_for_the_note_is_a_bug() -> None:
    with pytest.raises(ValueError, match="too small"):
        cut_body("x" * 500, 50, POINTER)


@given(
    body=st.lists(st.sampled_from(["row | 1 |", "```", MARKER, "", "é✗", "x" * 80]), max_size=400).map(
        "\n".join
    ),
    limit=st.integers(min_value=300, max_value=4000),
)
def test_any_body_fits_and_keeps_the_marker(body: str, limit: int) -> None:
    cut = cut_body(body, limit, POINTER)
    assert len(cut) <= limit
    assert MARKER in cut
    if len(body) <= limit and MARKER in body:
        assert cut == body
    if len(body) > limit:  # cut: whatever was kept has its code fences closed
        kept = cut.split("\n\n**memgate: report truncated")[0]
        assert kept.count("```") % 2 == 0


def test_the_renderer_and_the_forges_agree_on_the_marker() -> None:
    from memgate.report.markdown import MARKER as RENDERED_MARKER

    assert RENDERED_MARKER == MARKER
