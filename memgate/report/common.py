"""What every renderer shares: tool strings made safe to print, figures, labels and the verdict line."""

from __future__ import annotations

import functools
import hashlib
import operator
import os
import posixpath
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, get_args

from pydantic import BaseModel

from memgate.metrics import MetricName, format_value
from memgate.records import Frame
from memgate.thresholds import Verdict
from memgate.units import format_bytes, format_percent_change, signed_bytes

if TYPE_CHECKING:  # annotations only: `memgate run` prints its table without the comparison's models
    from memgate.comparison import Comparison, HeapGrowth, MetricRow, SiteRow, SuiteComparison

#: Longest tool-provided string shown (C++ template names run to kilobytes); reports keep the rest.
MAX_TEXT = 300

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """One printable line: control characters (a terminal escape sequence, a newline that would break
    a table) and invisible format characters (bidi overrides) become U+FFFD; long text is shortened."""
    text = _UNSAFE.sub("\ufffd", text)
    if not text.isascii():
        text = "".join("\ufffd" if unicodedata.category(char) in ("Cf", "Zl", "Zp", "Cs") else char
                       for char in text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def format_delta(row: MetricRow) -> str:
    if row.delta is None:
        return "-"
    sign = "+" if row.delta > 0 else ""
    figure = f"{sign}{format_value(row.metric, row.delta)}"
    if row.delta != 0 and row.delta_pct is not None:
        figure += f" ({format_percent_change(row.delta_pct)})"
    return figure


def format_figure(metric: MetricName, value: int | None) -> str:
    return format_value(metric, value)


def site_size(site: SiteRow) -> str:
    """"16 B in 1 block" for a leak, "3 occurrences" for an error."""
    if site.category == "leak":
        blocks = site.blocks or 0
        return f"{format_bytes(site.bytes or 0)} in {blocks:,} block{_s(blocks)}"
    count = site.count or 0
    return f"{count:,} occurrence{_s(count)}"


def site_title(site: SiteRow) -> str:
    """"definite leak" or "InvalidRead error" (the kind is the tool's own name)."""
    return f"{site.kind} {site.category}"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def suites_in_order(comparison: Comparison) -> list[SuiteComparison]:
    """Failing suites first, then incomplete, then warned, then the rest, each group in run order:
    what needs attention is at the top of a long list."""
    def rank(suite: SuiteComparison) -> int:
        if suite.verdict is Verdict.FAIL:
            return 0
        return 1 if suite.incomplete else 2 if suite.verdict is Verdict.WARN else 3

    return sorted(comparison.suites, key=rank)


def site_growth(site: SiteRow) -> str:
    """"+32 B, +2 blocks (48 B in 3 blocks, was 16 B in 1 block)" for a grown leak site."""
    if site.category == "leak":
        blocks = site.delta_blocks or 0
        change = f"{signed_bytes(site.delta_bytes or 0)}, {blocks:+,} block{_s(abs(blocks))}"
        before = site.model_copy(update={"bytes": site.baseline_bytes, "blocks": site.baseline_blocks})
    else:
        count = site.delta_count or 0
        change = f"{count:+,} occurrence{_s(abs(count))}"
        before = site.model_copy(update={"count": site.baseline_count})
    return f"{change} ({site_size(site)}, was {site_size(before)})"


def heap_growth_text(item: HeapGrowth) -> str:
    """"+1.50 MiB, +3 blocks at grow < main (2.00 MiB, was 512.00 KiB)": bytes allocated (DHAT) or
    live at the peak (massif, which counts no blocks)."""
    was = (f"was {format_bytes(item.baseline_bytes)}" if item.baseline_bytes is not None
           else "not among the baseline's largest stacks")
    change = item.delta_blocks
    blocks = "" if change is None else f", {change:+,} block{_s(abs(change))}"
    return f"{signed_bytes(item.delta_bytes)}{blocks} at {item.site} ({format_bytes(item.bytes)}, {was})"


def moved_text(site: SiteRow) -> str:
    """" (was possible in the baseline)" for a site memcheck classified differently; "" otherwise."""
    return f" (was {site.moved_from} in the baseline)" if site.moved_from else ""


def status_word(suite: SuiteComparison) -> str:
    return "incomplete" if suite.incomplete else suite.status.value


def headline(comparison: Comparison) -> str:
    """The verdict's reason in one sentence: what failed, what is missing, what warned."""
    total = len(comparison.suites)
    if not total:
        return "no suites were compared"
    if comparison.outcome == "fail":
        failed = [s.suite for s in comparison.suites if s.verdict is Verdict.FAIL]
        return f"{len(failed)} of {total} suite{_s(total)} failed: {_names(failed)}"
    if comparison.outcome == "incomplete":
        missing = [s.suite for s in comparison.suites if s.incomplete]
        return f"figures are missing or truncated for {_names(missing)}: no verdict on them"
    if comparison.outcome == "warn":
        warned = [s.suite for s in comparison.suites if s.verdict is Verdict.WARN]
        return f"{len(warned)} of {total} suite{_s(total)} with warnings: {_names(warned)}"
    return f"{total} suite{_s(total)} compared, no regression"


def _names(names: list[str], shown: int = 10) -> str:
    more = f" and {len(names) - shown:,} more" if len(names) > shown else ""
    return ", ".join(clean(name, limit=100) for name in names[:shown]) + more


def changes_summary(suite: SuiteComparison) -> str:
    """"1 new leak site, 2 metrics changed" (or "no change")."""
    parts = []
    new_leaks = sum(1 for s in suite.sites if s.status == "new" and s.category == "leak")
    new_errors = sum(1 for s in suite.sites if s.status == "new" and s.category == "error")
    grown = sum(1 for s in suite.sites if s.status == "grown")
    fixed = sum(1 for s in suite.sites if s.status == "fixed")
    changed = sum(1 for r in suite.rows if r.changed)
    for count, what in ((new_leaks, "new leak site"), (new_errors, "new error site"), (grown, "grown site"),
                        (fixed, "fixed site"),
                        (changed, "metric changed" if changed == 1 else "metrics changed")):
        if count:
            parts.append(f"{count:,} {what}{_s(count) if 'site' in what else ''}")
    return ", ".join(parts + tests_summary(suite)) or "no change"


VERDICT_WORD: dict[Verdict, str] = {
    Verdict.PASS: "pass",
    Verdict.WARN: "WARN",
    Verdict.FAIL: "FAIL",
    Verdict.IMPROVED: "improved",
    Verdict.NEW: "new",
}


# --- locations and identities for the CI reports (JUnit, code quality, SARIF) ----------------------

#: Where a finding with no frame in the repository is placed when a format requires a location.
DEFAULT_FALLBACK_PATH = "memgate.toml"


@dataclass(frozen=True)
class SourceLocation:
    """A place in the repository: a repo-relative POSIX path and, when the tool knew it, a line."""

    path: str
    line: int | None = None


def repo_relative(path: str | None, repo_root: str | os.PathLike[str]) -> str | None:
    """A tool's frame path as a POSIX path relative to the repository root (``src/a.c``, never with
    ``./``), or None when it lies outside the repository or is not a path (``<unknown>``, ``??``).

    - An absolute path is inside when it is under the root as given or with symlinks resolved
      (``/tmp`` may be a link; compilers record whichever path they were given).
    - A relative path depends on the folder the compiler ran in, which the report does not know: it
      is kept when it names a file under the root (``tests/programs/memprog.c``, ``./src/a.c``), or,
      for a build folder inside the repository, when it does so without its leading ``../``
      (``../src/a.c``). Otherwise it is None: a path that names no file cannot be shown in a review.
    """
    if not path or _NOT_A_PATH.search(path) or path.startswith(("<", "?")) or not _is_unicode(path):
        return None
    root = os.path.abspath(os.fspath(repo_root))
    if posixpath.isabs(path):
        return _inside(posixpath.normpath(path), root)
    relative = re.sub(r"^(\.\./)+", "", posixpath.normpath(path))
    if relative in (".", "..") or not os.path.isfile(os.path.join(root, relative)):
        return None
    return relative


_NOT_A_PATH = re.compile(r"[\x00-\x1f\x7f]")


def _is_unicode(text: str) -> bool:
    """False for a name with undecodable bytes kept as surrogates: no UTF-8 report can carry it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _inside(path: str, root: str) -> str | None:
    for base in dict.fromkeys((root, os.path.realpath(root))):
        for candidate in dict.fromkeys((path, os.path.realpath(path))):
            prefix = base.rstrip("/") + "/"
            if candidate.startswith(prefix) and len(candidate) > len(prefix):
                return candidate[len(prefix):]
    return None


_Model = TypeVar("_Model", bound=BaseModel)


def with_repo_relative_frames(record: _Model, repo_root: str | os.PathLike[str]) -> _Model:
    """``record`` with the file and object of every frame in it (leaks, errors, any stack a record
    holds) made relative to the repository root when they lie under it: memcheck records absolute paths, the
    sanitizers what the compiler was given, and a report or baseline must not depend on the folder
    the repository was cloned into. Files outside the repository are kept as the tool gave them."""
    relative = functools.cache(lambda path: repo_relative(path, repo_root))
    # Parsers share one Frame between the stacks that hold it: each is rewritten once. (The record
    # keeps every frame alive, so an id is not reused while this runs.)
    done: dict[int, Frame] = {}

    def frame(old: Frame) -> Frame:
        new = done.get(id(old))
        if new is None:
            # The binary or library of a frame too: a program built in the repository is under it.
            update = {name: path for name in ("file", "object")
                      if (value := getattr(old, name)) and (path := relative(value)) not in (None, value)}
            new = done[id(old)] = old.model_copy(update=update) if update else old
        return new

    mapped = _map_frames(record, frame)
    assert isinstance(mapped, type(record))
    return mapped


def _map_frames(value: object, frame: Callable[[Frame], Frame]) -> object:
    """``value`` with ``frame`` applied to every Frame within it; unchanged parts are kept as they
    are (the same objects), so a record without frames costs one walk."""
    if value is None or isinstance(value, (str, int, float)):  # most fields: first, and cheap
        return value
    if isinstance(value, Frame):
        return frame(value)
    if isinstance(value, tuple):
        items: tuple[object, ...]
        if value and isinstance(value[0], Frame):  # a stack (tuple[Frame, ...]): the usual tuple
            items = tuple(map(frame, value))
        else:
            items = tuple(_map_frames(item, frame) for item in value)
        return value if all(map(operator.is_, items, value)) else items
    if isinstance(value, BaseModel):
        changed = {name: new for name in _frame_fields(type(value))
                   if (new := _map_frames(getattr(value, name), frame)) is not getattr(value, name)}
        return value.model_copy(update=changed) if changed else value
    return value


@functools.cache
def _frame_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` whose type can hold a Frame: only those are walked."""
    return tuple(name for name, field in model.model_fields.items() if _may_hold_frames(field.annotation))


def _may_hold_frames(annotation: object) -> bool:
    if annotation is Frame:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return bool(_frame_fields(annotation))
    return any(_may_hold_frames(argument) for argument in get_args(annotation))


def source_location(frames: Sequence[Frame], repo_root: str | os.PathLike[str]) -> SourceLocation | None:
    """The first frame in the repository: where a leak or error is shown in a review. Frames are
    innermost first, so this is the project's own code closest to the allocation or the fault."""
    for frame in frames:
        path = repo_relative(frame.file, repo_root)
        if path is not None:
            return SourceLocation(path, frame.line if frame.line and frame.line > 0 else None)
    return None


def frame_text(frame: Frame, repo_root: str | os.PathLike[str]) -> str:
    """A frame as one line, its file repo-relative when it is in the repository."""
    path = repo_relative(frame.file, repo_root)
    if path is None:
        return clean(frame.label())
    return clean(frame.model_copy(update={"file": path}).label())


def finding_id(*parts: str) -> str:
    """A stable identity (hex SHA-256) for a finding of a report: the same parts give the same id on
    every run and machine, so the forges match a finding with the one of the target branch."""
    # surrogatepass: names a parser kept undecodable bytes in still hash, the same on every run
    return hashlib.sha256("\x1f".join(("memgate", *parts)).encode("utf-8", "surrogatepass")).hexdigest()


def site_id(site: SiteRow) -> str:
    """A site's identity across runs: its suite, category, kind and memgate fingerprint (no line
    numbers or addresses, so unrelated edits do not make it a new finding)."""
    return finding_id("site", site.suite, site.category, site.kind, site.fingerprint)


def site_summary(site: SiteRow) -> str:
    """"new definite leak: 16 B in 1 block at leak_small < main" (one line), "... in test Pool.Grow"
    when its test is known; a grown site says by how much it grew."""
    description = f" ({site.description})" if site.description else ""
    size = site_growth(site) if site.status == "grown" else site_size(site)
    return clean(f"{site.status} {site_title(site)}: {size}{description} at {site.site}{in_test(site.test)}"
                 f"{moved_text(site)}", limit=1000)


def in_test(test: str | None) -> str:
    """" in test Pool.Grow", or "" when the test is not known."""
    return f" in test {test}" if test else ""


def gone_tests_text(suite: SuiteComparison, shown: int = 20) -> str:
    """"gone tests (in the baseline, not in this run; not a failure): A, B and 3 more"."""
    count = len(suite.gone_tests)
    return (f"{count:,} gone test{_s(count)} (in the baseline, not in this run; not a failure): "
            f"{_names(list(suite.gone_tests), shown)}")


def metric_name(row: MetricRow) -> str:
    """"allocs_per_op", or "allocs_per_op of test BenchmarkParse" for a test's figure."""
    return f"{row.metric} of test {row.test}" if row.test is not None else row.metric


def tests_summary(suite: SuiteComparison) -> list[str]:
    """"1 test changed", "2 new tests", "1 gone test": the per-test part of ``changes_summary``."""
    results = suite.per_test()
    changed = sum(1 for test in results if test.changed and not test.new)
    new, gone = len(suite.new_tests), len(suite.gone_tests)
    return [f"{count:,} {what}{'' if count == 1 else 's'}{after}"
            for count, what, after in ((changed, "test", " changed"), (new, "new test", ""),
                                       (gone, "gone test", "")) if count]


def metric_summary(row: MetricRow) -> str:
    """"heap_peak_bytes: 1.02 MiB, +68.36 KiB (+7.0%) from 976.56 KiB (limit warn 5% / fail 10%)";
    a test's figure is "allocs_per_op of test BenchmarkParse: ..."."""
    now, name = format_figure(row.metric, row.current), metric_name(row)
    if row.current is None:
        text = f"{name}: not measured in this run (baseline {format_figure(row.metric, row.baseline)})"
    elif row.baseline is None:
        text = f"{name}: {now}, no baseline"
    else:
        text = f"{name}: {now}, {format_delta(row)} from {format_figure(row.metric, row.baseline)}"
    text = f"{text} (limit {row.limit})" if row.limit else text
    if row.reclassified:
        moved = format_figure(row.metric, abs(row.reclassified))
        text += f"; {moved} of it only moved between definite and possible (not judged)"
    if row.causes:
        text += f"; caused by: {'; '.join(row.causes)}"
    return clean(text, limit=2000)
