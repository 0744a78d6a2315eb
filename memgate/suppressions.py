"""Suppression files (issue 14): Valgrind's ``.supp`` blocks and LSan's ``leak:`` lines, read to name what
each suppression hid, to tell the files of one tool from the other's, and to match a run's leaks against
a change's own suppressions in Python (what they would hide, without a second run of the tool)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from memgate.errors import ConfigError
from memgate.records import Frame, Leak, Report, SuppressionUse
from memgate.units import format_bytes

Format = Literal["valgrind", "lsan"]
#: The tools that take suppression files, and the format each reads.
FORMAT_OF_TOOL: dict[str, Format] = {"memcheck": "valgrind", "asan": "lsan", "lsan": "lsan"}
_MEMCHECK_KINDS = {"definite": "definite", "indirect": "indirect", "possible": "possible",
                   "reachable": "reachable"}


@dataclass(frozen=True)
class SuppressionFile:
    """A suppression file as the config names it (``shown``, relative to the config file) and the file
    the tool reads (``path``: the same file, or the target branch's version of it in a temporary folder)."""

    shown: str
    path: Path


@dataclass(frozen=True)
class Suppression:
    """One suppression: a Valgrind block (its name, kind, leak kinds and frame patterns) or an LSan
    ``leak:`` pattern (``name`` is the pattern)."""

    name: str
    file: str
    kind: str = "Leak"  # Valgrind's "Memcheck:<kind>" (Leak, Addr4, Cond...); "Leak" for LSan
    leak_kinds: frozenset[str] | None = None  # Valgrind's match-leak-kinds; None: all
    frames: tuple[str, ...] = ()  # Valgrind's "fun:x", "obj:y", "src:z", "..."


def read_file(file: SuppressionFile) -> tuple[Format, list[Suppression]]:
    """The format and the suppressions of ``file``; a ConfigError naming it when it is unreadable or
    neither format."""
    try:
        text = file.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"suppression file {file.shown} not found", path=file.shown,
                          hint="suppressions are paths relative to the config file: fix the path or "
                               "remove it from suppressions") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read suppression file {file.shown}: {error}", path=file.shown,
                          hint="make it a readable UTF-8 text file") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if any(line == "{" for line in lines):
        return "valgrind", _valgrind_blocks(lines, file.shown)
    return "lsan", _lsan_lines(lines, file.shown)


def _valgrind_blocks(lines: Sequence[str], shown: str) -> list[Suppression]:
    found: list[Suppression] = []
    block: list[str] | None = None
    for line in lines:
        if line == "{":
            block = []
        elif line == "}" and block is not None:
            found.append(_valgrind_block(block, shown))
            block = None
        elif block is not None:
            block.append(line)
        else:
            raise _bad_file(shown, f"{line!r} is outside any {{ ... }} block")
    if block is not None:
        raise _bad_file(shown, "a { block has no closing }")
    return found


def _valgrind_block(block: Sequence[str], shown: str) -> Suppression:
    if len(block) < 2 or ":" not in block[1]:
        raise _bad_file(shown, f"a block needs a name and a Tool:kind line, got {list(block[:2])!r}")
    name, kind_line, *rest = block
    kind = kind_line.split(":", 1)[1].strip()
    leak_kinds: frozenset[str] | None = None
    if rest and rest[0].startswith("match-leak-kinds:"):
        words = {word.strip() for word in rest[0].split(":", 1)[1].split(",")}
        leak_kinds = None if "all" in words else frozenset(words - {"none"})
        rest = rest[1:]
    return Suppression(name=name, file=shown, kind=kind, leak_kinds=leak_kinds, frames=tuple(rest))


def _lsan_lines(lines: Sequence[str], shown: str) -> list[Suppression]:
    found: list[Suppression] = []
    for line in lines:
        kind, colon, pattern = line.partition(":")
        if not colon or not kind.isidentifier():
            raise _bad_file(shown, f"{line!r} is neither a Valgrind {{ ... }} block nor an LSan "
                                   "'leak:pattern' line")
        if kind == "leak":
            found.append(Suppression(name=pattern.strip(), file=shown))
    return found


def _bad_file(shown: str, problem: str) -> ConfigError:
    return ConfigError(f"suppression file {shown}: {problem}", path=shown,
                       hint="write Valgrind's { name / Memcheck:Leak / fun:... } blocks or LSan's "
                            "leak:pattern lines")


def files_for_tool(tool: str, files: Sequence[SuppressionFile], own: Sequence[str]
                   ) -> list[SuppressionFile]:
    """The files the ``tool`` can read: a top-level file of the other format is left to the other
    tools, while a file the suite names itself (``own``) must be of its tool's format."""
    wanted = FORMAT_OF_TOOL.get(tool)
    chosen: list[SuppressionFile] = []
    for file in files:
        fmt, _ = read_file(file)
        if fmt == wanted:
            chosen.append(file)
        elif file.shown in own:
            raise ConfigError(f"suppression file {file.shown} is in {fmt} format, which {tool} does not "
                              "read", path=file.shown,
                              hint=_format_hint(tool))
    return chosen


def _format_hint(tool: str) -> str:
    if tool not in FORMAT_OF_TOOL:
        return "only memcheck, asan and lsan take suppressions: remove them from this suite"
    return "memcheck reads Valgrind .supp blocks, asan and lsan read leak:pattern lines: give the suite " \
           "a file of its tool's format"


# --------------------------------------------------------------------------------------------------
# What the tool said each suppression hid


def account(used: Iterable[tuple[str, int, int | None]], files: Sequence[SuppressionFile]
            ) -> tuple[SuppressionUse, ...]:
    """Every suppression of ``files`` with what it hid (``used``: name or pattern, count, bytes, as
    the tool printed them; 0 for those it did not print), then those the tool used that are in no file
    (Valgrind's own default suppressions: ``file`` None)."""
    counts: dict[str, tuple[int, int | None]] = {}
    for name, count, size in used:
        seen_count, seen_bytes = counts.get(name, (0, 0))
        counts[name] = (seen_count + count, None if seen_bytes is None or size is None else seen_bytes + size)
    uses: list[SuppressionUse] = []
    for file in files:
        _, suppressions = read_file(file)
        for suppression in suppressions:
            count, size = counts.pop(suppression.name, (0, 0))
            uses.append(SuppressionUse(name=suppression.name, file=file.shown, count=count, bytes=size))
    uses += [SuppressionUse(name=name, file=None, count=count, bytes=size)
             for name, (count, size) in sorted(counts.items())]
    return tuple(uses)


# --------------------------------------------------------------------------------------------------
# What a change's own suppressions would hide, matched in Python


def hidden_by(suppressions: Sequence[Suppression], fmt: Format, leak: Leak) -> Suppression | None:
    """The first suppression that would hide ``leak``, as Valgrind (``fmt`` "valgrind") or LSan would."""
    for suppression in suppressions:
        if fmt == "valgrind" and _valgrind_matches(suppression, leak):
            return suppression
        if fmt == "lsan" and _lsan_matches(suppression.name, leak.stack):
            return suppression
    return None


def _valgrind_matches(suppression: Suppression, leak: Leak) -> bool:
    if suppression.kind != "Leak":
        return False
    if suppression.leak_kinds is not None and leak.kind not in suppression.leak_kinds:
        return False
    return _frames_match(suppression.frames, leak.stack)


def _frames_match(patterns: Sequence[str], stack: Sequence[Frame]) -> bool:
    """Valgrind's rule: the patterns match the stack from its top; "..." stands for any number of
    frames (none included); frames below the last pattern do not matter."""
    if not patterns:
        return True
    first, rest = patterns[0], patterns[1:]
    if first == "...":
        return any(_frames_match(rest, stack[start:]) for start in range(len(stack) + 1))
    return bool(stack) and _frame_matches(first, stack[0]) and _frames_match(rest, stack[1:])


def _frame_matches(pattern: str, frame: Frame) -> bool:
    what, _, glob = pattern.partition(":")
    if what == "fun":
        value = frame.function
    elif what == "obj":
        value = frame.object
    elif what == "src":
        value = f"{Path(frame.file).name}:{frame.line}" if frame.file and ":" in glob else (
            Path(frame.file).name if frame.file else None)
    else:
        return False
    return value is not None and fnmatch.fnmatchcase(value, glob)


def _lsan_matches(pattern: str, stack: Sequence[Frame]) -> bool:
    """LSan's rule: a frame's function, file or module contains the pattern (``*`` any text, ``^`` and
    ``$`` anchor it to the start or end)."""
    template = re.compile(_lsan_regex(pattern))
    return any(template.search(value) for frame in stack
               for value in (frame.function, frame.file, frame.object) if value)


def _lsan_regex(pattern: str) -> str:
    start = "^" if pattern.startswith("^") else ""
    end = "$" if pattern.endswith("$") and len(pattern) > len(start) else ""
    body = pattern[len(start):len(pattern) - len(end)]
    return start + ".*".join(re.escape(part) for part in body.split("*")) + end


def would_hide(files: Sequence[SuppressionFile], tool: str, leaks: Iterable[Leak]
               ) -> list[tuple[Leak, Suppression]]:
    """The leaks the suppressions of ``files`` would hide under ``tool``, each with the first to hide it."""
    fmt = FORMAT_OF_TOOL.get(tool)
    if fmt is None:
        return []
    suppressions = [suppression for file in files for suppression in _of_format(file, fmt)]
    hidden = []
    for leak in leaks:
        suppression = hidden_by(suppressions, fmt, leak)
        if suppression is not None:
            hidden.append((leak, suppression))
    return hidden


def _of_format(file: SuppressionFile, fmt: Format) -> list[Suppression]:
    file_format, suppressions = read_file(file)
    return suppressions if file_format == fmt else []


#: How many leaks a request's own suppressions would hide its note names one by one.
_HIDDEN_NAMED = 5


def own_suppression_notes(report: Report, own: Mapping[str, Sequence[SuppressionFile]]) -> list[str]:
    """For each suite whose suppressions the request adds or edits (``own``: its files, not applied),
    what they would hide of this run's leaks, matched in Python as the tool would match them."""
    notes = []
    for suite in report.suites:
        files = own.get(suite.name)
        if files is None:
            continue
        try:
            hidden = would_hide(files, suite.tool, suite.leaks)
        except ConfigError as error:  # the request's own file is broken: say so, the gate is unaffected
            notes.append(f"suite {suite.name}: the request's suppressions cannot be read: {error.message}")
            continue
        if not hidden:
            notes.append(f"suite {suite.name}: the request's own suppressions would hide none of this "
                         "run's leaks")
            continue
        shown = [f"{leak.kind} {format_bytes(leak.bytes)} at {leak.site} by `{suppression.name}` "
                 f"({suppression.file})" for leak, suppression in hidden[:_HIDDEN_NAMED]]
        more = f" and {len(hidden) - _HIDDEN_NAMED:,} more" if len(hidden) > _HIDDEN_NAMED else ""
        notes.append(f"suite {suite.name}: the request's own suppressions would hide {len(hidden):,} "
                     f"leak{'s' if len(hidden) != 1 else ''} of this run: {'; '.join(shown)}{more}")
    return notes
