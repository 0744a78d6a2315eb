"""One sanitizer log read into ``Findings``: chunks of whole lines, the reports found in them
(``LogParser``), and the file-level checks (``parse_log``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from memgate.errors import ParseError
from memgate.records import Leak, MemError
from memgate.tools.asan.frames import FrameCache
from memgate.units import count_of, counts_read

# The log is read in chunks of about 64 KiB, and one regular expression (``_EVENT``) finds the
# lines the state machine needs, so the shadow-byte maps, legends and statistics it skips never
# reach Python; memory stays bounded whatever the log holds. Chunks that fit in the processor's
# cache are read twice as fast as chunks of a megabyte: decoding, copying and the regex each walk
# through the whole chunk.
_READ_CHARS = 1 << 16  # one read
_MAX_LINE = 1 << 16  # longer lines are cut: no sanitizer line is that long
_MAX_RUN = 1 << 23  # a run of frame lines is kept in one chunk up to this size
_MAX_DETAIL = 300  # characters kept of each line of an error's description
# Leak records are read when their report is known to be the last (a later one replaces it), or
# once this much of its text waits: a run of reports costs little, and memory stays bounded.
_PENDING_CHARS = 1 << 20

# Signals the sanitizers catch and report as "ERROR: ...Sanitizer: SEGV on unknown address ...".
DEADLY_KINDS = frozenset({"SEGV", "BUS", "FPE", "ILL", "ABRT", "TRAP", "stack-overflow"})


# --------------------------------------------------------------------------------------------------
# Report lines

_ERROR_LINE = re.compile(r"ERROR: (?P<tool>\w+Sanitizer):? (?P<message>.*)")
_LEAK_SUMMARY = re.compile(r"SUMMARY: \w+Sanitizer: (\d+) byte\(s\) leaked in (\d+) allocation\(s\)\.")
_ERROR_SUMMARY = re.compile(r"SUMMARY: \w+Sanitizer: (\S+)")
_CALLS = re.compile(r"Stats: .* malloced .* by (\d+) calls")
_SUPPRESSION_ROW = re.compile(r" +(\d+) +(\d+) (.+)")
_TOP_LEAKS = re.compile(r"The (\d+) top leak\(s\):")
# The lines of an error report kept for its description: the access, and where the address lies.
_DETAIL = re.compile(r"(?:READ|WRITE|ACCESS) of size|The signal is caused|(?:Address )?0x\w+ is located ")
# The lines that open an error report's other stacks: where the block was freed and allocated, and
# where the thread was created. Each names the run of frames that follows it.
_RELATED = re.compile(r"(?:(?:previously )?allocated|freed) by thread |Thread T\d+ .*created by ")
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
    related: list[tuple[str, str]] = field(default_factory=list)  # (its line, its frames)
    related_title: str | None = None  # the line of the next run of frames ("freed by thread T0 here")


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
    #: LSan's "Suppressions used:" table: pattern, count and bytes of each suppression that hid a leak
    suppressed: list[tuple[str, int, int]] = field(default_factory=list)

    def listed_total(self) -> tuple[int, int]:
        """Bytes and blocks of the leak records, to be held against the SUMMARY's."""
        listed_bytes = listed_blocks = 0
        for leak in self.leaks:
            listed_bytes += leak.bytes
            listed_blocks += leak.blocks
        return listed_bytes, listed_blocks

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
# Python. Every alternative starts with a literal character, which the engine tests before it enters
# the alternative (a group or a repeat first would be entered at every line); possessive repeats
# keep no backtracking state per line of a run.
_RECORD_REST = r" leak of \d+ byte\(s\) in \d+ object\(s\) allocated from:(?:\n    #[^\n]*+)*+"
_RUN_REST = _RECORD_REST + r"(?:\n\n+(?:Direct|Indirect)" + _RECORD_REST + r")*+"
_TEXT_STARTS = (
    r"=(?!={19,}\n==\d+==ERROR: \w+Sanitizer:? )(?:={19,}(?![^\n])"
    r"|=\d+==(?:ERROR: |ABORTING|Detached |The signal |LeakSanitizer(?: has| CHECK failed|: nested bug)"
    r"|AddressSanitizer(?: CHECK failed|: nested bug)))",
    r"S(?:UMMARY: |tats: \S+ malloced |uppressions used:)",
    r"A(?:ddressSanitizer exit stats:|ddress 0x[0-9a-fA-F]+ is located |CCESS of size )",
    r"READ of size ", r"WRITE of size ", r"0x[0-9a-fA-F]+ is located ", r"Omitting ",
    r"T(?:oo many leaks|he \d+ top leak|hread T\d)",
    r"freed by thread ", r"previously allocated by thread ", r"allocated by thread ",
)
_EVENT = re.compile(
    r"\n(Direct" + _RUN_REST + "|Indirect" + _RUN_REST
    + r"| (?:   #[^\n]*+(?:\n    #[^\n]*+)*+| *+\d++ ++\d++ [^\n]*)"  # frames; a suppression's row
    + "".join(f"|{start}[^\\n]*" for start in _TEXT_STARTS) + ")"
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
        self._in_suppressions = False  # after LSan's "Suppressions used:", until a line not of the table
        self._pending: list[str] = []  # runs of leak records of the current report, not read yet
        self._pending_chars = 0

    def feed(self, lines: Iterable[str]) -> None:
        """Whole lines, without their line ends (a run of frames must not be split between calls)."""
        self.feed_text("\n" + "\n".join(lines))

    def feed_text(self, text: str) -> None:
        """Whole lines, each after a newline: ``"\\nline\\nline"``."""
        if self.findings.pid is None or not self.findings.sanitizer_output:
            self._recognise(text)
        for event in _EVENT.findall(text):
            first = event[0]
            if first == "D" or first == "I":  # a run of leak records
                self._leak_records(event)
            elif first == " " and event[4] == "#":  # a run of frames ("    #0 0x...")
                self._frames(event)
            else:
                in_table, self._in_suppressions = self._in_suppressions, event == "Suppressions used:"
                if first == "=":
                    self._marker_line(event)
                elif first == "S":
                    self._s_line(event)
                else:
                    self._other_line(event, in_table)

    def inside_report(self) -> bool:
        """Between a report's ERROR line and its end (SUMMARY, ABORTING or the next report)."""
        return self._state in (_LEAKS, _ERROR)

    def _recognise(self, text: str) -> None:
        """Whether the sanitizer wrote this (the events leave its chatter out), and its process id."""
        findings = self.findings
        findings.sanitizer_output = findings.sanitizer_output or bool(_SANITIZER_LINE.search(text))
        if findings.pid is None and (own := _OWN_PID_LINE.search(text)):
            findings.pid = count_of(own[1])

    def _leak_records(self, run: str) -> None:
        if self._state != _LEAKS:
            self._close_report()
            self._start_leak_report()
        self._pending.append(run)
        self._pending_chars += len(run)
        if self._pending_chars > _PENDING_CHARS:
            self._read_pending()

    def _read_pending(self) -> None:
        for run in self._pending:
            self.findings.leaks += self._cache.leaks(run)
        self._pending.clear()
        self._pending_chars = 0

    def _frames(self, frames: str) -> None:
        """The first run of frames after an ERROR line is the access stack; the free and allocation
        stacks that follow, each after its own line, are the error's related stacks."""
        error = self._error
        if error is None:
            return
        if error.frames is None:
            error.frames = frames
        elif error.related_title is not None:
            error.related.append((error.related_title, frames))
            error.related_title = None

    def _other_line(self, line: str, in_table: bool) -> None:
        """A line the events give that starts with neither "=" nor "S"; ``in_table``: the line
        before was "Suppressions used:" or a row of its table."""
        if line[0] == " ":
            if in_table and (row := _SUPPRESSION_ROW.fullmatch(line)):
                self.findings.suppressed.append((row[3], count_of(row[1]), count_of(row[2])))
                self._in_suppressions = True
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
        """A separator, or a line under ``==PID==`` (``_EVENT`` lets no other "=" line through)."""
        self.findings.sanitizer_output = True
        if line.startswith("====="):  # the separator before a report
            self._close_report()
            return
        end = line.find("==", 2)
        if end < 0:
            return
        text = line[end + 2:]
        if text.startswith("Detached from thread"):
            # LSan's stop-the-world tracer, under its own pid: the leak check has run
            self.findings.leak_check_done = True
            return
        digits = line[2:end]
        if self.findings.pid is None:
            self.findings.pid = count_of(digits)
        if text.startswith("ERROR: "):
            self.findings.report_pids.add(count_of(digits))
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
        leaked = _LEAK_SUMMARY.match(line) if self._state == _LEAKS else None
        if leaked:
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
        if _RELATED.match(text):
            error.related_title = text.strip().rstrip(":")[:_MAX_DETAIL]
            return
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
        self._pending.clear()
        self._pending_chars = 0
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
        self.findings.errors.append(self._cache.error(error.kind, description, error.frames or "",
                                                      tuple(error.related)))
        if error.kind in DEADLY_KINDS:
            self.findings.fatal_signal = self.findings.fatal_signal or error.kind
            self.findings.leak_check_done = False

    def _close_report(self) -> None:
        """A report ends at its SUMMARY, ABORTING, the next report or the exit statistics."""
        self._close_error()
        self._state = _OUTSIDE

    # -- end of file ------------------------------------------------------------------------------

    def finish(self) -> Findings:
        self._read_pending()
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
    are about 64 KiB (more while a run of frames goes on, up to 8 MiB), and a line that has no end
    within one is cut to its first 64 KiB."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            yield from _chunks(handle.read, path)
    except OSError as error:
        raise ParseError(f"cannot read the sanitizer log: {error.strerror}", path=path,
                         hint="check the path and its permissions") from None


def _chunks(read: Callable[[int], str], path: Path) -> Iterator[str]:
    carry = ""
    while block := read(max(_READ_CHARS, len(carry))):  # a long run of frames: reads grow with it
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


def program_from_name(path: Path) -> str | None:
    """The program of a log the runtime named ``asan.<program>.<pid>`` (``lsan.``; ``log_exe_name=1``,
    as memgate runs it); None for ``asan.<pid>`` and for a file named otherwise."""
    match = re.fullmatch(r"[al]san\.(.+)\.\d+", path.name)
    return match[1] if match else None


def _log_chunks(path: Path) -> Iterator[str]:
    """``read_chunks``, without the program's name that ``log_exe_name=1`` puts into every line's
    prefix as well as into the file's name (``==prog==1234==``): processes are known by
    ``==1234==``. A log without it is read as it is."""
    program = program_from_name(path)
    if program is None:
        yield from read_chunks(path)
        return
    prefix = f"\n=={program}=="
    for chunk in read_chunks(path):
        yield chunk.replace(prefix, "\n==")


def parse_log(path: Path, cache: FrameCache | None = None) -> Findings:
    """One log, one process (the pid from the file name, else the ``==PID==`` prefix). An error's
    stack is its access stack (the first after the ERROR line), never the allocation or free stack.
    Only the last leak report of a process counts (``LogParser._start_leak_report``). A log of
    several processes is a ``ParseError`` here: ``parse_processes`` reads those."""
    (findings,) = _parse_one_or_several(path, cache, split=False)
    return findings


def parse_processes(path: Path, cache: FrameCache | None = None) -> list[Findings]:
    """The processes of one log: one, or several when reports under different ``==PID==`` prefixes
    follow one another in it (a captured stderr of a program that forks or execs children without
    ``log_path``). Each is read as a log of its own (``ProcessSplitter``), in the order they first
    appear; reports of live processes interleaved line by line are a ``ParseError``."""
    return _parse_one_or_several(path, cache, split=True)


def _parse_one_or_several(path: Path, cache: FrameCache | None, *, split: bool) -> list[Findings]:
    parser = LogParser(path, cache)
    with counts_read(path, not_a=_NOT_A_LOG, hint=_LOG_HINT):
        for chunk in _log_chunks(path):
            parser.feed_text(chunk)
        findings = parser.finish()
        several = findings.several_processes()
        if several is None:
            findings.pid = pid_from_name(path) or findings.pid
            return [findings]
        if not split:
            raise _several_processes(path, several)
        # A second reading, line by line: only logs of several processes pay for it.
        splitter = ProcessSplitter(path, cache or FrameCache())
        for chunk in _log_chunks(path):
            splitter.feed_text(chunk)
        processes = splitter.finish()
        if len(processes) < 2:  # no ==PID== prefix told them apart (exit statistics carry none)
            raise _several_processes(path, several)
        return processes


_NOT_A_LOG = "this is not a sanitizer log"
_LOG_HINT = "give the files ASan/LSan wrote (log_path) or a captured stderr"
_SPLIT_HINT = ("give each process its own log: ASAN_OPTIONS=log_path=<folder>/asan (LSAN_OPTIONS for lsan) "
               "writes <folder>/asan.<pid>, as memgate check does")


def _several_processes(path: Path, several: str) -> ParseError:
    return ParseError(f"this file holds the output of several processes ({several}) that cannot be told "
                      "apart", path=path, hint=_SPLIT_HINT)


# A line under a process's own prefix; LSan's tracer writes under the id of its own task.
_PROCESS_LINE = re.compile(r"==(\d+)==(?!Attached|Detached|Could not attach|Failed suspending)")
_SEPARATOR_LINE = re.compile(r"={20,}$")


class ProcessSplitter:
    """Several processes' reports in one log, one after another: each run of lines from a line
    under ``==PID==`` to the next line under another prefix is that process's (frame and SUMMARY
    lines carry no prefix, but they come inside a report, after its ERROR line). The separator line
    that opens a report goes with the report. Each process has its own ``LogParser``.

    When the prefix changes while the process before is inside a report (after its ERROR line, before
    its SUMMARY), the two wrote at the same time: which unprefixed line is whose cannot be known, so
    that is a ``ParseError``, never a guess."""

    def __init__(self, path: Path, cache: FrameCache) -> None:
        self.path = path
        self.cache = cache
        self.parsers: dict[int, LogParser] = {}
        self.current: int | None = None
        self.lines: list[str] = []  # the current process's lines, not yet fed
        self.held: list[str] = []  # separator lines: they go with the next line

    def feed_text(self, text: str) -> None:
        """Whole lines, each after a newline, as ``read_chunks`` gives them."""
        for line in text.split("\n")[1:]:
            process = _PROCESS_LINE.match(line)
            if process is not None and count_of(process[1]) != self.current:
                self._switch(count_of(process[1]))
            if _SEPARATOR_LINE.match(line):
                self.held.append(line)
                continue
            self.lines += self.held
            self.held.clear()
            self.lines.append(line)
        self._flush()  # a chunk never ends inside a run of frames

    def _switch(self, pid: int) -> None:
        self._flush()
        before = self.parsers.get(self.current) if self.current is not None else None
        if before is not None and before.inside_report():
            raise ParseError(
                f"this file holds reports of processes {self.current} and {pid} written at the same time, "
                "line by line: which lines are whose cannot be told", path=self.path, hint=_SPLIT_HINT)
        if pid not in self.parsers:
            self.parsers[pid] = LogParser(self.path, self.cache)
        self.current = pid

    def _flush(self) -> None:
        if not self.lines:
            return
        if self.current is None:  # lines before any process's own line: the first process's
            return
        self.parsers[self.current].feed(self.lines)
        self.lines = []

    def finish(self) -> list[Findings]:
        self.lines += self.held
        self._flush()
        processes: list[Findings] = []
        for pid, parser in self.parsers.items():
            findings = parser.finish()
            several = findings.several_processes()
            if several is not None:  # one pid, two sets of exit statistics: not two reports in turn
                raise _several_processes(self.path, several)
            findings.pid = pid
            processes.append(findings)
        return processes
