"""AddressSanitizer (``asan``) and standalone LeakSanitizer (``lsan``): options in, text reports out.

The sanitizers are compiled into the program, so memgate wraps nothing: ``launch`` returns the
command unchanged and sets ``ASAN_OPTIONS`` / ``LSAN_OPTIONS``. Precedence, lowest first: memgate's
defaults, the user's variables (the suite's ``env``, else memgate's own environment), the suite's
``tool_args`` (each one ``name=value``), and last ``log_path``, which memgate owns: every process
writes ``<logdir>/asan.<pid>`` (``lsan.<pid>``).

Defaults, and why:

- ``detect_leaks=1``: leaks are half of what this tool gates on.
- ``exitcode=0``: a finding no longer changes the exit status, so the status stays the program's
  own and a known (baselined) leak does not fail the suite; findings reach the gate through the
  log. It also lets ASan go on to print its exit statistics after a leak report.
- ``atexit=1`` (ASan): at exit, *after* the leak check (atexit handlers run in reverse order),
  ASan prints "AddressSanitizer exit stats:". Every instrumented process that ends normally thus
  writes a log, which tells a clean process (statistics, no report) from one whose leak check never
  ran (killed, ``_exit()``, exec) and a suite with no instrumented program at all (no log). The
  statistics give ``alloc_calls`` ("malloced ... by N calls": every malloc/calloc/realloc/new,
  the C library's own included, as Valgrind counts them; a forked child starts from its parent's
  count). ``print_stats=1`` is not set: it only adds the same block after every error report.
  Measured cost of ``atexit=1``: none visible (3 M malloc/free pairs, 0.6-1.1 s either way), since
  ASan keeps these counters anyway.
- ``verbosity=2`` (LSan): standalone LSan has no exit statistics; at verbosity 2 its leak check
  logs "Attached to thread" / "Detached from thread" from the thread that stops the world, which is
  the sign that the check ran. It costs a few lines per process (one more per thread).
- ``print_summary=1``, ``symbolize=1``: the SUMMARY line closes a report (a log that ends before
  it is truncated) and totals the leaks, which are checked against the records.

``halt_on_error`` is left to the user. With the default (1) the first error ends the process, so
there is no leak check: the record is incomplete, with the error. ``halt_on_error=0`` only
continues after instrumented accesses in code built with ``-fsanitize-recover=address``; memgate
parses the several reports that then precede the leak report and the exit statistics.

In ASan builds, ``LSAN_OPTIONS`` overrides ASan's common options (``log_path``, ``exitcode``,
``detect_leaks``), so the ``asan`` tool sets ``log_path`` there too. The effective options are kept
in ``<logdir>/memgate-sanitizer-options`` so that ``collect`` knows when the user turned leak
detection off (the records then say ``leak_check=False``, and no leak metric is reported).

Metrics: definite ("Direct leak") and indirect ("Indirect leak") bytes and blocks; ``errors`` (one
per ERROR report; a SEGV the sanitizer reports is one, and sets ``fatal_signal``); ``alloc_calls``
from ASan's exit statistics. LeakSanitizer has no "possibly lost" or "still reachable" kinds: those
metrics are absent, not 0.

``version()`` cannot know which compiler built the program under test; it names the sanitizer and
the gcc and clang versions on PATH (the usual source of the runtime), e.g. "AddressSanitizer
(compiler runtime; gcc 12.2.0, clang 14.0.6 on PATH)". It never fails: the runtime is in the
program, not on PATH.

Parsing: one ``ProcessRecord`` per file (pid from the file name, else the ``==PID==`` prefix). The
log is read in chunks of about a megabyte, and one regular expression finds the lines the state
machine needs, so the shadow-byte maps, legends and statistics it skips never reach Python; memory
stays bounded whatever the log holds. A frame is known by its text without the pc (ASLR moves it);
``Frame.address`` keeps the module offset when one is printed (``symbolize=0``, no debug info),
which is the same in every run. An error's stack is its access stack (the first after the ERROR
line), never the allocation or free stack. Only the last leak report of a process counts: a
program that calls ``__lsan_do_recoverable_leak_check()`` has its still-lost blocks reported again
at exit. A record is incomplete, with the reason, when the log ends inside a report, the runtime
failed, the leak records do not add up to the SUMMARY (``max_leaks``), or nothing shows that the
leak check ran after the last error or signal.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from memgate.errors import ConfigError, ParseError, ToolError
from memgate.fingerprint import fingerprint, site_of
from memgate.metrics import LeakKind, MetricName, leak_metrics
from memgate.proc import Outcome
from memgate.records import Frame, Leak, MemError, ProcessRecord
from memgate.tools.base import Launch, ToolOptions
from memgate.units import NumberTooLong, count_of

OPTIONS_FILE = "memgate-sanitizer-options"
ASAN_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("detect_leaks", "1"), ("exitcode", "0"), ("atexit", "1"), ("print_summary", "1"), ("symbolize", "1"),
)
LSAN_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("detect_leaks", "1"), ("exitcode", "0"), ("verbosity", "2"), ("print_summary", "1"), ("symbolize", "1"),
)

_READ_CHARS = 1 << 20  # one read: about a megabyte of text
_MAX_LINE = 1 << 16  # longer lines are cut: no sanitizer line is that long
_MAX_RUN = 1 << 23  # a run of frame lines is kept in one chunk up to this size
_MAX_DETAIL = 300  # characters kept of each line of an error's description
_CACHE_LIMIT = 1 << 13  # frames (and stacks) remembered while parsing: a few MB at most
_RUNS_LIMIT, _RUN_CHARS = 1 << 8, 1 << 14  # runs of leak records remembered whole: 4 MB at most

# Signals the sanitizers catch and report as "ERROR: ...Sanitizer: SEGV on unknown address ...".
DEADLY_KINDS = frozenset({"SEGV", "BUS", "FPE", "ILL", "ABRT", "TRAP", "stack-overflow"})


# --------------------------------------------------------------------------------------------------
# Options


def split_options(text: str) -> list[tuple[str, str]]:
    """``name=value`` pairs of a sanitizer option string, as the runtime splits it: separated by
    ``:``, ``,``, spaces or newlines, a value optionally quoted with ``'`` or ``"``."""
    pairs: list[tuple[str, str]] = []
    for match in _OPTION.finditer(text):
        name, value = match["name"], match["value"]
        if value[:1] in "'\"" and value[-1:] == value[:1] and len(value) > 1:
            value = value[1:-1]
        pairs.append((name, value))
    return pairs


_OPTION = re.compile(r"""(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>'[^']*'|"[^"]*"|[^\s:,]*)""")


def _quote(value: str, what: str) -> str:
    if not re.search(r"[\s:,'\"]", value):
        return value
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    raise ToolError(f"cannot pass {what} to the sanitizer: it contains both kinds of quotes",
                    hint="use a log folder without quote characters")


def merge_options(user: str, defaults: Sequence[tuple[str, str]], extra: Sequence[tuple[str, str]],
                  log_path: str) -> str:
    """Defaults the user did not set, then the user's string untouched, then ``extra``, then
    ``log_path`` (the runtime lets a later ``name=`` win)."""
    user_names = {name for name, _ in split_options(user)} | {name for name, _ in extra}
    parts = [f"{name}={value}" for name, value in defaults if name not in user_names]
    if user.strip():
        parts.append(user.strip().strip(":"))
    parts += [f"{name}={_quote(value, name)}" for name, value in extra]
    parts.append(f"log_path={_quote(log_path, 'the log folder')}")
    return ":".join(part for part in parts if part)


def _extra_options(extra_args: Sequence[str], tool: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for argument in extra_args:
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", argument.strip())
        if not match:
            raise ConfigError(
                f"tool_args for {tool} are sanitizer options (name=value), and {argument!r} is not one",
                hint="write each as name=value, e.g. \"malloc_context_size=50\"",
            )
        pairs.append((match[1], match[2]))
    return pairs


def leak_detection_enabled(options: Mapping[str, str], variables: Sequence[str]) -> bool:
    """Whether the effective options (later variables override earlier ones) leave leak checking on."""
    effective: dict[str, str] = {}
    for variable in variables:
        effective.update(split_options(options.get(variable, "")))
    return all(effective.get(name, "1").lower() not in ("0", "no", "false")
               for name in ("detect_leaks", "leak_check_at_exit"))


def _read_options_file(logdir: Path) -> dict[str, str]:
    try:
        text = (logdir / OPTIONS_FILE).read_text(encoding="utf-8")
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# --------------------------------------------------------------------------------------------------
# Frames

_BUILD_ID = re.compile(r"\s+\(BuildId: [0-9a-fA-F]+\)$")
_MODULE = re.compile(r"(?P<object>[^()]*?)(?:\+(?P<offset>0x[0-9a-fA-F]+))?\)")  # after the "("
_LOCATION = re.compile(r"(?P<file>\S+?):(?P<line>\d+)(?::\d+)?")


_FRAME_PREFIX = re.compile(r"#\d+ 0x[0-9a-fA-F]+ +")  # what frame_text drops, for a whole run of frames
# A leak record as printed: its header line and its frame lines.
_LEAK_TEXT = r"(?:Direct|Indirect) leak of \d+ byte\(s\) in \d+ object\(s\) allocated from:(?:\n {4}#[^\n]*)*"
# One record of a run, its pcs dropped: the header, then its frame lines.
_LEAK_RECORD = re.compile(r"(?P<kind>Direct|Indirect) leak of (?P<bytes>\d+) byte\(s\) in (?P<blocks>\d+) "
                          r"object\(s\) allocated from:\n?(?P<stack>.*)", re.DOTALL)


def frame_text(line: str) -> str | None:
    """A frame line without its number and pc: ``in function file:line`` or ``(object+0xoffset)``.
    The pc changes from run to run (ASLR) and adds nothing to the rest, so frames are known by this."""
    parts = line.split(None, 2)
    if len(parts) < 3 or not parts[0].startswith("#") or not parts[1].startswith("0x"):
        return None
    return parts[2].rstrip()


def parse_frame(line: str) -> Frame | None:
    """One ``    #N 0xPC in function file:line[:column]`` line, gcc or clang, or None."""
    text = frame_text(line)
    return None if text is None else frame_of(text)


def frame_of(text: str) -> Frame:
    """A frame from its text (``frame_text``). The module form ``(object+0xoffset)`` (no debug
    info, ``symbolize=0``) keeps the offset as ``address``: unlike the pc, it is the same in every run."""
    text = text.strip()
    if text.startswith("in "):
        text = text[3:].lstrip()
    if "(BuildId: " in text:
        text = _BUILD_ID.sub("", text)
    if text.endswith(")"):
        function, _, module = text.rpartition("(")
        where = _MODULE.fullmatch(module) if not function or function[-1].isspace() else None
        if where:
            return Frame(function=function.rstrip() or None, object=where["object"] or None,
                         address=where["offset"])
    function, _, location = text.rpartition(" ")
    source = _LOCATION.fullmatch(location)
    if source:
        return Frame(function=function.rstrip() or None, file=source["file"], line=count_of(source["line"]))
    return Frame(function=text or None)


_LEAK_CATEGORY: dict[LeakKind, str] = {"definite": "leak:definite", "indirect": "leak:indirect"}
_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True)
class _Identity:
    stack: tuple[Frame, ...]
    site: str
    fingerprint: str
    key: str  # the stack's frames without their pcs


class FrameCache:
    """Frames, stacks and records already worked out, shared by the logs of one run: a process
    repeats its call sites, and a suite's processes print the same ones. Bounded: emptied when full.
    The records are frozen, so one object can stand for every identical record."""

    def __init__(self, limit: int = _CACHE_LIMIT) -> None:
        self.limit = limit
        self._frames: dict[str, Frame] = {}
        self._identities: dict[tuple[str, str], _Identity] = {}
        self._leaks: dict[str, Leak] = {}
        self._runs: dict[str, tuple[Leak, ...]] = {}
        self._errors: dict[tuple[str, str, str], MemError] = {}

    def identify(self, category: str, frames: str) -> _Identity:
        """The stack, site and fingerprint of a record in ``category`` ("leak:definite", ...) whose
        stack is ``frames``, its frame lines as printed."""
        return self._identity(category, _FRAME_PREFIX.sub("", frames))

    def _identity(self, category: str, key: str) -> _Identity:
        """``identify`` for frame lines already without their numbers and pcs."""
        known = self._identities.get((category, key))
        if known is None:
            stack = tuple(self._frame(line) for line in key.split("\n") if line and not line.isspace())
            site = site_of(stack)
            known = _Identity(stack, site, fingerprint(category, stack, site), key)
            self._remember(self._identities, (category, key), known)
        return known

    def leaks(self, records: str) -> Sequence[Leak]:
        """The records of a run of "Direct"/"Indirect" leak records as printed (each its header line
        and frame lines, blank lines between them). The run's pcs are dropped at once; a short run
        seen before (a suite's processes print the same leaks) is one lookup, and so is a record."""
        text = _FRAME_PREFIX.sub("", records)
        if len(text) > _RUN_CHARS:
            return self._records(text)
        leaks = self._runs.get(text)
        if leaks is None:
            leaks = tuple(self._records(text))
            self._remember(self._runs, text, leaks, _RUNS_LIMIT)
        return leaks

    def _records(self, text: str) -> list[Leak]:
        known = self._leaks
        return [known.get(record) or self._new_leak(record) for record in text.split("\n\n") if record]

    def _new_leak(self, text: str) -> Leak:
        record = _LEAK_RECORD.match(text.lstrip("\n"))
        assert record is not None, "_EVENT's leaks group holds leak records only"
        kind: LeakKind = "definite" if record["kind"] == "Direct" else "indirect"
        identity = self._identity(_LEAK_CATEGORY[kind], record["stack"])
        leak = Leak(kind=kind, bytes=count_of(record["bytes"]), blocks=count_of(record["blocks"]),
                    stack=identity.stack, fingerprint=identity.fingerprint, site=identity.site)
        self._remember(self._leaks, text, leak)
        return leak

    def error(self, kind: str, description: str, frames: str) -> MemError:
        identity = self.identify(f"error:{kind}", frames)
        key = (kind, description, identity.key)
        error = self._errors.get(key)
        if error is None:
            error = MemError(kind=kind, description=description, count=1, stack=identity.stack,
                             fingerprint=identity.fingerprint, site=identity.site)
            self._remember(self._errors, key, error)
        return error

    def _remember(self, cache: dict[_K, _V], key: _K, value: _V, limit: int | None = None) -> None:
        if len(cache) >= (limit or self.limit):
            cache.clear()
        cache[key] = value

    def _frame(self, text: str) -> Frame:
        frame = self._frames.get(text)
        if frame is None:
            frame = frame_of(text)
            if len(self._frames) >= self.limit:
                self._frames.clear()
            self._frames[text] = frame
        return frame


# --------------------------------------------------------------------------------------------------
# Report lines

_PID_PREFIX = re.compile(r"==(\d+)==")
_ERROR_LINE = re.compile(r"ERROR: (?P<tool>\w+Sanitizer):? (?P<message>.*)")
_LEAK_SUMMARY = re.compile(r"SUMMARY: \w+Sanitizer: (\d+) byte\(s\) leaked in (\d+) allocation\(s\)\.")
_ERROR_SUMMARY = re.compile(r"SUMMARY: \w+Sanitizer: (\S+)")
_CALLS = re.compile(r"Stats: .* malloced .* by (\d+) calls")
_TOP_LEAKS = re.compile(r"The (\d+) top leak\(s\):")
# The lines of an error report kept for its description: the access, and where the address lies.
_DETAIL = re.compile(r"(?:READ|WRITE|ACCESS) of size|The signal is caused|(?:Address )?0x\w+ is located ")
# The registers an ERROR line ends with, "at pc ... sp ..." or "(pc ... sp ... T0)": they differ in every run.
_REGISTERS = re.compile(r" (?:at |\()pc 0x[0-9a-fA-F]+ bp 0x[0-9a-fA-F]+ sp 0x[0-9a-fA-F]+(?: T\d+\))?")

# ERROR lines whose first word is not the kind; the SUMMARY line, when there is one, has the last word.
_ERROR_PHRASES: tuple[tuple[str, str], ...] = (
    ("attempting double-free", "double-free"),
    ("attempting free on address which was not malloc()-ed", "bad-free"),
    ("requested allocation size", "allocation-size-too-big"),
    ("calloc parameters overflow", "calloc-overflow"),
    ("reallocarray parameters overflow", "reallocarray-overflow"),
    ("pvalloc parameters overflow", "pvalloc-overflow"),
    ("invalid allocation alignment", "invalid-allocation-alignment"),
    ("invalid alignment requested in aligned_alloc", "invalid-aligned-alloc-alignment"),
    ("invalid alignment requested in posix_memalign", "invalid-posix-memalign-alignment"),
    ("allocator is out of memory", "out-of-memory"),
    ("out of memory", "out-of-memory"),
    ("requested allocation size exceeds", "allocation-size-too-big"),
)
_PHRASES_BY_WORD = {  # error_kind looks only at the phrases that start with the message's first word
    word: [(phrase, kind) for phrase, kind in _ERROR_PHRASES if phrase.split(" ", 1)[0] == word]
    for word in {phrase.split(" ", 1)[0] for phrase, _ in _ERROR_PHRASES}
}
# The runtime itself gave up: nothing after this line can be trusted to be complete.
_RUNTIME_FAILURES: tuple[tuple[str, str], ...] = (
    ("LeakSanitizer has encountered a fatal error",
     "LeakSanitizer has encountered a fatal error, so no leak check ran (it does not work under "
     "ptrace: strace, gdb)"),
    ("CHECK failed", "the sanitizer runtime failed an internal check"),
    ("failed to allocate", "the sanitizer runtime ran out of memory"),
    ("nested bug", "the sanitizer runtime hit a bug while reporting one"),
)


def error_kind(message: str) -> str:
    """The kind of an ERROR line's message, e.g. "heap-buffer-overflow" or "double-free"."""
    word = message.split(" ", 1)[0]
    for phrase, kind in _PHRASES_BY_WORD.get(word, ()):
        if message.startswith(phrase):
            return kind
    return word.rstrip(":") or "unknown"


@dataclass
class _PendingError:
    kind: str
    message: str
    details: list[str] = field(default_factory=list)
    frames: str | None = None  # the first run of frames after the ERROR line: the access stack
    located: bool = False  # the "... is located ..." line is in details


@dataclass
class Findings:
    """What one log says, before memgate decides whether it is complete."""

    path: Path
    pid: int | None = None
    leaks: list[Leak] = field(default_factory=list)
    errors: list[MemError] = field(default_factory=list)
    sanitizer_output: bool = False  # at least one line the sanitizer writes
    leak_report_seen: bool = False
    leak_check_done: bool = False  # a finished leak report, ASan exit stats or LSan's tracer
    alloc_calls: int | None = None
    summary_total: tuple[int, int] | None = None  # bytes and blocks in the leak report's SUMMARY
    omitted_leaks: bool = False
    halted_by: str | None = None  # the error kind after which the runtime printed ABORTING
    fatal_signal: str | None = None
    runtime_failure: str | None = None
    truncated: str | None = None
    # Signs of several processes in one file (a captured stderr of a program that forks): the process
    # ids of the ERROR lines, and how many exit statistics there are (each process prints them once).
    report_pids: set[int] = field(default_factory=set)
    exit_stats: int = 0

    def listed_total(self) -> tuple[int, int]:
        """Bytes and blocks of the leak records, to be held against the SUMMARY's."""
        return sum(leak.bytes for leak in self.leaks), sum(leak.blocks for leak in self.leaks)

    def several_processes(self) -> str | None:
        """What shows that the file holds more than one process's output, or None."""
        if len(self.report_pids) > 1:
            return f"reports of processes {', '.join(map(str, sorted(self.report_pids)[:5]))}"
        if self.exit_stats > 1:
            return f"{self.exit_stats} sets of exit statistics"
        return None


# The parser's states between events.
_OUTSIDE, _LEAKS, _ERROR, _STATS = range(4)

# What the parser looks at, each found after a newline: a run of leak records with their frames, a
# run of frame lines, or a line the state machine needs. Everything else (shadow-byte maps, legends,
# the allocator's statistics, hints, blank lines, a program's own output, and the separator before
# an ERROR line, which opens the report anyway) is skipped by the regex engine without reaching
# Python. Each alternative starts with a literal, which the engine rejects at a glance.
_EVENT = re.compile(
    r"\n(?:(?P<leaks>" + _LEAK_TEXT + r"(?:\n\n+" + _LEAK_TEXT + r")*)"
    r"|(?P<frames> {4}#[^\n]*(?:\n {4}#[^\n]*)*)"
    r"|(?P<text>(?:=(?!={19,}\n==\d+==ERROR: \w+Sanitizer:? )(?:={19,}(?![^\n])"
    r"|=\d+==(?:ERROR: |ABORTING|Detached |The signal |LeakSanitizer(?: has| CHECK failed|: nested bug)"
    r"|AddressSanitizer(?: CHECK failed|: nested bug)))"
    r"|S(?:UMMARY: |tats: \S+ malloced )"
    r"|A(?:ddressSanitizer exit stats:|ddress 0x[0-9a-fA-F]+ is located |CCESS of size )"
    r"|READ of size |WRITE of size |0x[0-9a-fA-F]+ is located "
    r"|Omitting |T(?:oo many leaks|he \d+ top leak))[^\n]*))"
)


_SANITIZER_LINE = re.compile(r"\n(?:==\d+==|={20,}\n|SUMMARY: \w+Sanitizer|AddressSanitizer exit stats)")
_OWN_PID_LINE = re.compile(r"\n==(\d+)==(?!Attached|Detached|Could not attach|Failed suspending)")


class LogParser:
    """A state machine over one sanitizer log (one process), fed blocks of whole lines."""

    def __init__(self, path: Path, cache: FrameCache | None = None) -> None:
        self.findings = Findings(path=path)
        self._cache = cache or FrameCache()
        self._state = _OUTSIDE
        self._error: _PendingError | None = None

    def feed(self, lines: Iterable[str]) -> None:
        """Whole lines, without their line ends (a run of frames must not be split between calls)."""
        self.feed_text("\n" + "\n".join(lines))

    def feed_text(self, text: str) -> None:
        """Whole lines, each after a newline: ``"\\nline\\nline"``."""
        if self.findings.pid is None or not self.findings.sanitizer_output:
            self._recognise(text)
        for records, frames, line in _EVENT.findall(text):  # '' for a group not there
            if records:
                if self._state != _LEAKS:
                    self._close_report()
                    self._start_leak_report()
                self.findings.leaks += self._cache.leaks(records)
            elif frames:
                self._frames(frames)
            else:
                self._text_line(line)

    def _recognise(self, text: str) -> None:
        """Whether the sanitizer wrote this (the events leave its chatter out), and its process id."""
        findings = self.findings
        findings.sanitizer_output = findings.sanitizer_output or bool(_SANITIZER_LINE.search(text))
        if findings.pid is None and (own := _OWN_PID_LINE.search(text)):
            findings.pid = count_of(own[1])

    def _frames(self, frames: str) -> None:
        """The first run of frames after an ERROR line is the access stack; the allocation and free
        stacks that follow stay out of the record."""
        error = self._error
        if error is not None and error.frames is None:
            error.frames = frames

    def _text_line(self, line: str) -> None:
        first = line[0]
        if first == "=":
            self._marker_line(line)
        elif first == "S":
            self._s_line(line)
        elif line.startswith("AddressSanitizer exit stats:"):
            self._close_report()
            self.findings.leak_check_done = True
            self.findings.exit_stats += 1
            self._state = _STATS
        elif self._state == _ERROR:
            self._error_text(line)
        elif self._state == _LEAKS:
            self._leak_report_text(line)

    # -- lines that start with "=" ----------------------------------------------------------------

    def _marker_line(self, line: str) -> None:
        if line.startswith("====="):  # the separator before a report
            self._close_report()
            self.findings.sanitizer_output = True
            return
        prefix = _PID_PREFIX.match(line)
        if not prefix:
            return
        self.findings.sanitizer_output = True
        text = line[prefix.end():]
        if text.startswith("Detached from thread"):
            # LSan's stop-the-world tracer, under its own pid: the leak check has run
            self.findings.leak_check_done = True
            return
        if self.findings.pid is None:
            self.findings.pid = count_of(prefix[1])
        if text.startswith("ERROR: "):
            self.findings.report_pids.add(count_of(prefix[1]))
            self._open_report(text)
        elif text.startswith("ABORTING"):
            self._abort()
        elif self._state == _ERROR:
            self._error_text(text)
        else:
            self._runtime_failure(text)

    def _open_report(self, text: str) -> None:
        match = _ERROR_LINE.match(text)
        if not match:
            return
        self._close_report()
        message = match["message"].strip()
        if message.startswith("detected memory leaks"):
            self._start_leak_report()
            return
        for phrase, reason in _RUNTIME_FAILURES:
            if phrase in message:
                self._runtime_failure(message, reason)
                return
        self._error = _PendingError(kind=error_kind(message), message=_REGISTERS.sub("", message).rstrip(":"))
        self._state = _ERROR

    def _abort(self) -> None:
        kind = self._error.kind if self._error else (
            self.findings.errors[-1].kind if self.findings.errors else "an error")
        self._close_report()
        self.findings.halted_by = kind
        self.findings.leak_check_done = False  # an earlier, explicit leak check was not the last word

    def _runtime_failure(self, text: str, reason: str | None = None) -> None:
        for phrase, known in _RUNTIME_FAILURES:
            if reason is None and phrase in text:
                reason = known
        if reason and self.findings.runtime_failure is None:
            text = text.strip().rstrip(".")[:_MAX_DETAIL]
            self.findings.runtime_failure = reason if text in reason else f"{reason}: {text}"

    # -- lines that start with "S" ----------------------------------------------------------------

    def _s_line(self, line: str) -> None:
        if line.startswith("SUMMARY: "):
            self._summary(line)
        elif line.startswith("Stats: ") and self._state == _STATS:
            calls = _CALLS.match(line)
            if calls:
                self.findings.alloc_calls = count_of(calls[1])

    def _summary(self, line: str) -> None:
        self.findings.sanitizer_output = True
        leaked = _LEAK_SUMMARY.match(line)
        if leaked and self._state == _LEAKS:
            # The records are this report's to the end: a record after the SUMMARY starts a new one.
            self.findings.summary_total = (count_of(leaked[1]), count_of(leaked[2]))
            self.findings.leak_check_done = True
            self._state = _OUTSIDE
            return
        kind = _ERROR_SUMMARY.match(line)
        if self._error is not None and kind:
            self._error.kind = kind[1]
        self._close_report()

    # -- inside reports ---------------------------------------------------------------------------

    def _error_text(self, text: str) -> None:
        """Lines between the ERROR line and the SUMMARY: the access and where the address lies are
        kept for the description."""
        error = self._error
        assert error is not None
        if _DETAIL.match(text) and len(error.details) < 3:
            if " is located " in text:
                if error.located:
                    return
                error.located = True
            error.details.append(text.strip()[:_MAX_DETAIL])

    def _leak_report_text(self, line: str) -> None:
        if line.startswith(("Omitting ", "Too many leaks")) or _TOP_LEAKS.match(line):
            self.findings.omitted_leaks = True

    def _start_leak_report(self) -> None:
        """Only the last leak report of a process counts: a program that calls
        ``__lsan_do_recoverable_leak_check()`` gets its still-lost blocks reported again at exit."""
        findings = self.findings
        findings.leaks.clear()
        findings.summary_total = None
        findings.omitted_leaks = False
        findings.leak_report_seen = True
        findings.sanitizer_output = True
        self._state = _LEAKS

    def _close_error(self) -> None:
        error = self._error
        if error is None:
            return
        self._error = None
        description = "; ".join([error.message, *error.details])
        self.findings.errors.append(self._cache.error(error.kind, description, error.frames or ""))
        if error.kind in DEADLY_KINDS:
            self.findings.fatal_signal = self.findings.fatal_signal or error.kind
            self.findings.leak_check_done = False

    def _close_report(self) -> None:
        """A report ends at its SUMMARY, ABORTING, the next report or the exit statistics."""
        self._close_error()
        self._state = _OUTSIDE

    # -- end of file ------------------------------------------------------------------------------

    def finish(self) -> Findings:
        findings = self.findings
        if self._state == _LEAKS:
            findings.truncated = "the log ends inside the leak report (no SUMMARY line)"
        elif self._state == _ERROR and self._error is not None:
            findings.truncated = f"the log ends inside the {self._error.kind} report (no SUMMARY line)"
        self._close_report()
        return findings


# --------------------------------------------------------------------------------------------------
# Reading files


def read_chunks(path: Path) -> Iterator[str]:
    """The file as chunks of whole lines, each line after a newline (``"\\nline\\nline"``), a run of
    frame lines never split between two chunks. Memory stays bounded whatever the file holds: chunks
    are about a megabyte, and a line that has no end within one is cut to its first 64 KiB."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            yield from _chunks(handle.read, path)
    except OSError as error:
        raise ParseError(f"cannot read the sanitizer log: {error.strerror}", path=path,
                         hint="check the path and its permissions") from None


def _chunks(read: Callable[[int], str], path: Path) -> Iterator[str]:
    carry = ""
    while block := read(_READ_CHARS):
        if "\x00" in block:
            raise ParseError("this is not a sanitizer log: it holds binary data", path=path,
                             hint="give the files ASan/LSan wrote (log_path) or a captured stderr")
        text = carry + block
        cut = _last_cut(text)
        if cut < 0:
            if "\n" not in text:  # a line with no end yet: keep its start only
                carry = text[:_MAX_LINE]
                continue
            if len(text) < _MAX_RUN:  # a run of frames still going on: wait for its end
                carry = text
                continue
            cut = text.rfind("\n")  # a run of frames megabytes long: cut it anyway
        carry = text[cut + 1:]
        yield "\n" + text[:cut]
    if carry:
        yield "\n" + carry


def _last_cut(text: str) -> int:
    """Where a chunk may end: before its last line (which may be unfinished), moved back over the
    run of frame lines and the leak record's first line before it, which the next read may go on."""
    cut = text.rfind("\n")
    if cut < 0 or not "    #".startswith(text[cut + 1:cut + 6]):
        return cut
    while cut >= 0 and text.startswith("    #", (previous := text.rfind("\n", 0, cut)) + 1):
        cut = previous  # -1 once the run goes back to the start of the text: no cut yet
    if cut > 0 and text.endswith("allocated from:", 0, cut):
        cut = text.rfind("\n", 0, cut)
    return cut


def pid_from_name(path: Path) -> int | None:
    match = re.search(r"\.(\d+)$", path.name)
    return int(match[1]) if match else None


def parse_log(path: Path, cache: FrameCache | None = None) -> Findings:
    parser = LogParser(path, cache)
    try:
        for chunk in read_chunks(path):
            parser.feed_text(chunk)
    except NumberTooLong as error:
        raise ParseError(f"this is not a sanitizer log: it holds {error.message}", path=path,
                         hint="give the files ASan/LSan wrote (log_path) or a captured stderr") from None
    findings = parser.finish()
    several = findings.several_processes()
    if several:
        # Frame and SUMMARY lines carry no process id, so the reports cannot be told apart safely;
        # reading them as one process would lose all but the last leak report.
        raise ParseError(
            f"this file holds the output of several processes ({several}): they cannot be told apart",
            path=path, hint="give each process its own log: ASAN_OPTIONS=log_path=<folder>/asan "
            "(LSAN_OPTIONS for lsan) writes <folder>/asan.<pid>, as memgate check does")
    findings.pid = pid_from_name(path) or findings.pid
    return findings


# --------------------------------------------------------------------------------------------------
# From findings to records


@dataclass(frozen=True)
class _Context:
    """What memgate knows about the run beyond the log."""

    tool_label: str
    leak_detection: bool = True
    outcome: Outcome | None = None


def _incomplete_reason(findings: Findings, context: _Context) -> str | None:
    if findings.truncated:
        return findings.truncated
    if findings.runtime_failure:
        return findings.runtime_failure
    if not findings.sanitizer_output:
        return f"no {context.tool_label} output in this file"
    if findings.omitted_leaks or (findings.summary_total is not None
                                  and findings.summary_total != findings.listed_total()):
        return _totals_problem(findings)
    if context.leak_detection and not findings.leak_check_done:
        return _no_leak_check(findings, context)
    return None


def _totals_problem(findings: Findings) -> str:
    listed, total = findings.listed_total(), findings.summary_total
    counted = (f"its SUMMARY counts {total[0]} bytes in {total[1]} blocks" if total is not None
               else "it says it leaves some out, and has no SUMMARY to count them")
    return (f"the leak report lists {listed[0]} bytes in {listed[1]} blocks but {counted} "
            "(some records were left out, e.g. by max_leaks)")


def _no_leak_check(findings: Findings, context: _Context) -> str:
    if findings.fatal_signal:
        return f"no leak check after {findings.fatal_signal}"
    if findings.halted_by:
        return f"the sanitizer stopped the process at the first error ({findings.halted_by}): no leak check"
    outcome = context.outcome
    if outcome is not None and outcome.timed_out:
        return "no leak check: the run timed out and was killed"
    if outcome is not None and outcome.signal is not None:
        return f"no leak check: the run was killed by signal {outcome.signal}"
    return ("no sign that the leak check ran (no leak report, no exit statistics): the process was "
            "killed, or left through _exit() or exec()")


def _metrics(findings: Findings, measured_leaks: bool) -> dict[MetricName, int]:
    metrics: dict[MetricName, int] = {}
    if measured_leaks:
        for kind in ("definite", "indirect"):
            bytes_name, blocks_name = leak_metrics(kind)
            metrics[bytes_name] = sum(leak.bytes for leak in findings.leaks if leak.kind == kind)
            metrics[blocks_name] = sum(leak.blocks for leak in findings.leaks if leak.kind == kind)
    if findings.sanitizer_output:
        metrics["errors"] = sum(error.count for error in findings.errors)
    if findings.alloc_calls is not None:
        metrics["alloc_calls"] = findings.alloc_calls
    return metrics


def to_record(findings: Findings, context: _Context) -> ProcessRecord:
    reason = _incomplete_reason(findings, context)
    # A leak report, even a cut one, was a leak check; without one, only a sign that the check ran.
    leak_check = findings.leak_report_seen or (context.leak_detection and findings.leak_check_done)
    return ProcessRecord(
        pid=findings.pid,
        log_files=(str(findings.path),),
        metrics=_metrics(findings, leak_check),
        leaks=tuple(findings.leaks),
        errors=tuple(findings.errors),
        leak_check=leak_check,
        complete=reason is None,
        incomplete_reason=reason,
        fatal_signal=findings.fatal_signal,
    )


def _missing_output(logdir: Path, outcome: Outcome, context: _Context, prefix: str) -> ProcessRecord:
    if outcome.timed_out:
        reason = f"no {context.tool_label} log: the run timed out before any process wrote one"
    elif outcome.signal is not None:
        reason = f"no {context.tool_label} log: the run was killed by signal {outcome.signal} first"
    else:
        reason = (f"no {context.tool_label} log ({prefix}.<pid>) in {logdir}: is the program built with "
                  f"{'-fsanitize=address' if prefix == 'asan' else '-fsanitize=leak'}, and run directly "
                  "rather than through a tool that clears the environment?")
    return ProcessRecord(leak_check=False, complete=False, incomplete_reason=reason)


# --------------------------------------------------------------------------------------------------
# The tools


class SanitizerTool:
    """``asan`` or ``lsan``: the two differ in options, log name and what they measure."""

    def __init__(self, name: str, label: str, variable: str, defaults: tuple[tuple[str, str], ...],
                 metrics: frozenset[MetricName]) -> None:
        self.name = name
        self.label = label
        self.variable = variable  # the options variable the runtime reads
        self.defaults = defaults
        self.metrics = metrics

    def version(self) -> str:
        compilers = ", ".join(_compiler_versions()) or "no gcc or clang"
        return f"{self.label} (compiler runtime; {compilers} on PATH)"

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        log_path = str(logdir.resolve() / self.name)
        extra = _extra_options(options.extra_args, self.name)
        user = _user_value(self.variable, options)
        env = {self.variable: merge_options(user, self.defaults, extra, log_path)}
        if self.variable != "LSAN_OPTIONS":
            # In ASan builds LSAN_OPTIONS overrides ASan's common options, log_path included.
            env["LSAN_OPTIONS"] = merge_options(_user_value("LSAN_OPTIONS", options), (), (), log_path)
        _write_options_file(logdir, env)
        return Launch(argv=list(command), env=env)

    def collect(self, logdir: Path, outcome: Outcome) -> list[ProcessRecord]:
        recorded = _read_options_file(logdir)
        variables = (self.variable, "LSAN_OPTIONS") if self.variable != "LSAN_OPTIONS" else (self.variable,)
        context = _Context(tool_label=self.label, outcome=outcome,
                           leak_detection=leak_detection_enabled(recorded, variables))
        logs = sorted((path for path in logdir.glob(f"{self.name}.*") if path.is_file()),
                      key=lambda path: (pid_from_name(path) or 0, path.name))
        if not logs:
            return [_missing_output(logdir, outcome, context, self.name)]
        cache = FrameCache()
        return [to_record(parse_log(path, cache), context) for path in logs]

    def parse(self, paths: Sequence[Path]) -> list[ProcessRecord]:
        context = _Context(tool_label=self.label)
        cache = FrameCache()
        return [to_record(parse_log(Path(path), cache), context) for path in paths]


def _user_value(variable: str, options: ToolOptions) -> str:
    return options.env.get(variable, os.environ.get(variable, ""))


def _write_options_file(logdir: Path, env: Mapping[str, str]) -> None:
    try:
        (logdir / OPTIONS_FILE).write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    except OSError as error:
        raise ToolError(f"cannot write to the log folder: {error.strerror}", path=logdir,
                        hint="make the artifacts folder writable") from None


@functools.lru_cache(maxsize=1)
def _compiler_versions() -> tuple[str, ...]:
    found: list[str] = []
    for compiler, flag in (("gcc", "-dumpfullversion"), ("clang", "-dumpversion")):
        if shutil.which(compiler) is None:
            continue
        try:
            result = subprocess.run([compiler, flag], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0 and result.stdout.strip():
            found.append(f"{compiler} {result.stdout.strip()}")
    return tuple(found)


_LEAK_METRICS: frozenset[MetricName] = frozenset(
    {"leak_definite_bytes", "leak_definite_blocks", "leak_indirect_bytes", "leak_indirect_blocks", "errors"}
)

ASAN = SanitizerTool("asan", "AddressSanitizer", "ASAN_OPTIONS", ASAN_DEFAULTS,
                     _LEAK_METRICS | {"alloc_calls"})
LSAN = SanitizerTool("lsan", "LeakSanitizer", "LSAN_OPTIONS", LSAN_DEFAULTS, _LEAK_METRICS)
