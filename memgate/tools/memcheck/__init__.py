"""Valgrind memcheck (``memcheck``; ``valgrind`` is its other name): the tool object, and the files
of each process (XML, text log, xtree) made into one record. The readers are this package's modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from memgate.errors import ConfigError, ParseError
from memgate.metrics import LEAK_KINDS, LeakKind, MetricName, leak_metrics
from memgate.proc import Outcome
from memgate.records import ProcessRecord
from memgate.suppressions import account
from memgate.tools._valgrind import escape_percent, valgrind_version
from memgate.tools.base import DEFAULT_OPTIONS, Appetite, Launch, ToolOptions
from memgate.tools.memcheck.model import Amount, HeapUsage, MemcheckOutput, Sites
from memgate.tools.memcheck.textlog import read_text
from memgate.tools.memcheck.xmlfile import read_xml
from memgate.tools.memcheck.xtree import read_xtree

XML_SUFFIX = "xml"
XTREE_SUFFIX = "xtmemory.kcg"
PREFIX = "memcheck"
NUM_CALLERS = 30
_SNIFF_BYTES = 1 << 16

# The eight ``leak_*`` figures (each kind's OWN bytes and blocks), ``errors`` (occurrences of
# every non-leak error kind, from ``<errorcounts>``), ``alloc_calls`` / ``heap_total_bytes`` /
# ``heap_end_bytes`` (the HEAP SUMMARY's allocs, bytes allocated and bytes in use at exit). A forked
# child's figures include what it inherited from its parent, as memcheck reports them.
MEMCHECK_METRICS: frozenset[MetricName] = frozenset({
    *(name for kind in LEAK_KINDS for name in leak_metrics(kind)),
    "errors", "alloc_calls", "heap_total_bytes", "heap_end_bytes",
})

# tool_args that would move or switch off what memgate reads, and why they are refused
_REFUSED: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), why) for pattern, why in (
    (r"--tool=(?!memcheck$).*", "this tool runs memcheck"),
    (r"--xml=(?!yes$).*", "memgate reads memcheck's XML"),
    (r"--xml-(file|fd|socket)=.*", "memgate sets where the XML goes (one file per process)"),
    (r"--xtree-memory(-file)?=.*", "memgate reads the heap totals from its own xtree report"),
    (r"--child-silent-after-fork=yes", "forked children must write their own XML"),
    (r"--log-file=.*%[pn].*", "with a %p log file Valgrind writes forked children's XML into the "
                              "parent's file (it reopens the log instead); use a plain name or none"),
))

_PID_IN_NAME = re.compile(r"\.(\d+)\.")

Format = Literal["xml", "text", "xtree", "empty"]


# --------------------------------------------------------------------------------------------------
# Reading files


def sniff(path: Path) -> Format:
    """What a file is, from its first bytes; ``ParseError`` when it is none of memcheck's outputs."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as error:
        raise ParseError(f"cannot read {path}: {error.strerror or error}", path=path,
                         hint="check the path and its permissions") from None
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        return "empty"
    if text.startswith(b"<"):
        if b"<valgrindoutput" in text or text.rstrip().endswith(b"?>"):
            return "xml"
        raise ParseError("XML that is not Valgrind's (no <valgrindoutput>)", path=path,
                         hint="give memgate the file valgrind wrote with --xml=yes --xml-file=")
    if text.startswith(b"# callgrind format") and b"creator: xtree" in text:
        return "xtree"
    if re.search(rb"(^|\n)[^\n]*==\d+== ", head):
        return "text"
    if b"\x00" in head:
        raise ParseError("a binary file, not Valgrind output", path=path,
                         hint="give memgate memcheck's XML (--xml-file), its log (--log-file) or its stderr")
    raise ParseError("not Valgrind memcheck output (no XML, no ==PID== lines)", path=path,
                     hint="give memgate memcheck's XML (--xml-file), its log (--log-file) or its stderr")


def _pid_in_name(path: Path) -> int | None:
    match = _PID_IN_NAME.search(path.name)
    return int(match[1]) if match else None


def _empty(path: Path) -> MemcheckOutput:
    output = MemcheckOutput(path=path, format="xml", pid=_pid_in_name(path))
    output.note(f"{path.name} is empty: valgrind wrote nothing there (it was killed as it started, or its "
                "findings went to another file, such as the --xml-file)")
    return output


def read_outputs(path: Path, sites: Sites) -> list[MemcheckOutput]:
    """Every process one file describes (a text log may hold several).

    The XML is read by ``xmlstream``: expat checks every byte while ``<error>``s are found in
    the bytes and read with regular expressions, in bounded memory (bench/bench_valgrind_parse.py).
    Records are merged by kind and site as they stream by: a process's record has one ``Leak`` or
    ``MemError`` per fingerprint, with the bytes, blocks or counts of all its loss records or contexts.
    """
    kind = sniff(path)
    if kind == "empty":
        return [_empty(path)]
    if kind == "xtree":
        return [read_xtree(path)]
    if kind == "text":
        return read_text(path, sites)
    output = read_xml(path, sites=sites)
    if output.pid is None:
        output.pid = _pid_in_name(path)
    return [output]


@dataclass
class _Process:
    """The files of one process: findings (XML or text) and heap totals (xtree, or a text log)."""

    pid: int | None
    xml: MemcheckOutput | None = None
    text: MemcheckOutput | None = None
    xtree: MemcheckOutput | None = None
    extra_problems: list[str] = field(default_factory=list)

    def add(self, output: MemcheckOutput) -> None:
        slot = output.format
        if getattr(self, slot) is not None:
            raise ParseError(
                f"two {slot} files for process {self.pid}: {getattr(self, slot).path.name} and "
                f"{output.path.name}", path=output.path, hint="parse the files of one run at a time",
            )
        setattr(self, slot, output)

    @property
    def findings(self) -> MemcheckOutput | None:
        return self.xml or self.text

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(str(output.path) for output in (self.xml, self.text, self.xtree) if output is not None)


def group_by_pid(outputs: Iterable[MemcheckOutput]) -> list[_Process]:
    processes: dict[int | None, _Process] = {}
    for output in outputs:
        process = processes.get(output.pid)
        if process is None:
            process = processes[output.pid] = _Process(output.pid)
        process.add(output)
    return sorted(processes.values(), key=lambda process: (process.pid is None, process.pid or 0))


# --------------------------------------------------------------------------------------------------
# From outputs to records


def _heap(process: _Process) -> HeapUsage | None:
    for output in (process.findings, process.text, process.xtree):
        if output is not None and output.heap is not None:
            return output.heap
    return None


def _leak_summary(process: _Process) -> tuple[dict[LeakKind, Amount] | None, Amount | None]:
    for output in (process.findings, process.text):
        if output is not None and output.leak_summary is not None:
            return output.leak_summary, output.suppressed_leaks
    return None, None


def _amount_text(amount: Amount) -> str:
    return f"{amount.bytes} bytes in {amount.blocks} blocks"


def _check_records(findings: MemcheckOutput, summary: dict[LeakKind, Amount]) -> list[str]:
    """Each kind whose records were printed must add up to memcheck's own total for it."""
    problems = []
    for kind in LEAK_KINDS:
        listed = findings.leaks.per_kind[kind]
        shown = findings.shown_kinds is not None and kind in findings.shown_kinds
        said = summary[kind]
        if (listed.blocks or shown) and (listed.bytes, listed.blocks) != (said.bytes, said.blocks):
            problems.append(f"the {kind} loss records add up to {_amount_text(listed)} but memcheck's leak "
                            f"summary says {_amount_text(said)}")
    return problems


def _check_in_use(total: Amount, heap: HeapUsage, what: str, suppressed: Amount | None,
                  maybe_suppressed: bool) -> list[str]:
    """Leaked blocks (plus suppressed ones) are exactly the blocks in use at exit."""
    in_use = Amount(heap.in_use_bytes, heap.in_use_blocks)
    if suppressed is not None:
        total = Amount(total.bytes + suppressed.bytes, total.blocks + suppressed.blocks)
    agree = (total.bytes, total.blocks) == (in_use.bytes, in_use.blocks)
    if maybe_suppressed and suppressed is None:  # suppressed leaks are not counted anywhere we read
        agree = total.bytes <= in_use.bytes and total.blocks <= in_use.blocks
    if agree:
        return []
    return [f"{what} add up to {_amount_text(total)} but {_amount_text(in_use)} were in use at exit "
            f"({heap.source})"]


def _leak_figures(process: _Process) -> tuple[dict[MetricName, int], list[str]]:
    """The leak metrics memcheck really measured, and any disagreement between its figures."""
    findings = process.findings
    assert findings is not None
    summary, suppressed = _leak_summary(process)
    heap = _heap(process)
    metrics: dict[MetricName, int] = {}
    problems: list[str] = []
    if summary is not None:
        measured = dict(summary)
        problems += _check_records(findings, summary)
        if heap is not None:
            total = Amount()
            for amount in summary.values():
                total.add(amount.bytes, amount.blocks)
            problems += _check_in_use(total, heap, "memcheck's leak summary figures", suppressed, False)
    elif heap is not None and heap.in_use_bytes == 0 and heap.in_use_blocks == 0:
        measured = {kind: Amount() for kind in LEAK_KINDS}  # all heap blocks were freed: no leak
    elif findings.leak_check == "full" and findings.shown_kinds is not None:
        shown = findings.shown_kinds
        measured = {kind: findings.leaks.per_kind[kind] for kind in LEAK_KINDS if kind in shown}
        if heap is not None and len(measured) == len(LEAK_KINDS):
            problems += _check_in_use(findings.leaks.total(), heap, "the loss records", None,
                                      findings.suppressions_used)
    else:
        return metrics, problems
    for kind, amount in measured.items():
        bytes_name, blocks_name = leak_metrics(kind)
        metrics[bytes_name], metrics[blocks_name] = amount.bytes, amount.blocks
    return metrics, problems


def _heap_metrics(heap: HeapUsage | None) -> dict[MetricName, int]:
    metrics: dict[MetricName, int] = {}
    if heap is None:
        return metrics
    metrics["heap_end_bytes"] = heap.in_use_bytes
    if heap.allocs is not None:
        metrics["alloc_calls"] = heap.allocs
    if heap.bytes_allocated is not None:
        metrics["heap_total_bytes"] = heap.bytes_allocated
    return metrics


def to_record(process: _Process) -> ProcessRecord:
    findings = process.findings
    problems = list(process.extra_problems)
    heap = _heap(process)
    if findings is None:
        assert process.xtree is not None
        problems += process.xtree.problems
        problems.append(f"no XML or text log for process {process.pid}, only its heap totals "
                        f"({process.xtree.path.name}): its leaks and errors are unknown")
        return ProcessRecord(pid=process.pid, command=process.xtree.command, log_files=process.paths,
                             metrics=_heap_metrics(heap), leak_check=False, complete=False,
                             incomplete_reason="; ".join(problems))
    problems += findings.problems
    if process.xtree is not None and findings.finished:
        problems += process.xtree.problems
    metrics: dict[MetricName, int] = {}
    leak_check = False
    if findings.finished:
        leak_metrics_found, leak_problems = _leak_figures(process)
        metrics.update(leak_metrics_found)
        problems += leak_problems
        leak_check = bool(leak_metrics_found)
    total = findings.errors_total
    metrics["errors"] = total if total is not None else findings.errors.total()
    metrics.update(_heap_metrics(heap))
    return ProcessRecord(
        pid=process.pid,
        command=findings.command,
        log_files=process.paths,
        metrics={name: metrics[name] for name in sorted(metrics)},
        leaks=findings.leaks.leaks() if findings.finished else (),
        errors=findings.errors.errors(),
        leak_check=leak_check,
        complete=not problems,
        incomplete_reason="; ".join(problems) or None,
        fatal_signal=findings.fatal_signal,
    )


def with_suppressions(record: ProcessRecord, process: _Process, options: ToolOptions) -> ProcessRecord:
    """The record with what each suppression hid: memcheck's <suppcounts> (it lists only those it used),
    and every suppression of the suite's files, 0 for those it did not use."""
    used = process.findings.suppression_counts if process.findings is not None else []
    if not used and not options.suppressions:
        return record
    uses = account(((name, count, None) for name, count in used), options.suppressions)
    return record.model_copy(update={"suppressions": uses})


# --------------------------------------------------------------------------------------------------
# The tool


def _check_extra_args(extra_args: Sequence[str]) -> None:
    for argument in extra_args:
        for pattern, why in _REFUSED:
            if pattern.fullmatch(argument):
                raise ConfigError(f"tool_args for memcheck cannot contain {argument!r}: {why}",
                                  hint="remove it from the suite's tool_args")


def _missing_output(logdir: Path, outcome: Outcome) -> ProcessRecord:
    if outcome.timed_out:
        why = "the run timed out before any process wrote one"
    elif outcome.signal is not None:
        why = f"the run was killed by signal {outcome.signal} first"
    else:
        why = (f"valgrind did not start the program (exit status {outcome.exit_code}; its message is in "
               "the suite's stderr)")
    reason = f"no memcheck XML ({PREFIX}.<pid>.{XML_SUFFIX}) in {logdir}: {why}"
    return ProcessRecord(leak_check=False, complete=False, incomplete_reason=reason)


def _outcome_note(outcome: Outcome) -> str | None:
    if outcome.timed_out:
        return "the suite timed out and was killed"
    if outcome.signal is not None:
        return f"valgrind was killed by signal {outcome.signal}"
    return None


class Memcheck:
    name = "memcheck"
    metrics = MEMCHECK_METRICS
    memory_appetite = Appetite(multiple=6.0)  # shadow memory and the translation cache

    def version(self) -> str:
        """``valgrind-3.19.0``; the ToolError with the install command when it is missing."""
        return valgrind_version()

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        """Runs::

            valgrind --tool=memcheck --xml=yes --xml-file=<logdir>/memcheck.%p.xml
                     --leak-check=full --show-leak-kinds=all --trace-children=yes --child-silent-after-fork=no
                     --error-limit=no --num-callers=30
                     --xtree-memory=full --xtree-memory-file=<logdir>/memcheck.%p.xtmemory.kcg
                     <tool_args> -- <command>

        and why:

        - ``--xml-file`` with ``%p``: one file per process; exec'd children (``--trace-children=yes``) and
          forked ones (``--child-silent-after-fork=no``) each write their own.
        - No ``--log-file``. In XML mode memcheck prints neither its HEAP SUMMARY nor its LEAK SUMMARY in
          the text log (protocol 4, Valgrind 3.19: measured, and so in its source), so the log has nothing
          to parse. Worse, a ``%p`` log breaks the XML: after ``fork()`` Valgrind 3.19 reopens the log for
          the child and then not the XML (``reopen log || reopen xml``), and the child writes a second XML
          document into its parent's file. The few lines Valgrind still prints go to the suite's stderr.
        - ``--xtree-memory=full``: its ``totals:`` line is the HEAP SUMMARY exactly (in use at exit,
          allocations, bytes allocated; the tests compare the two), the figures the protocol-4 XML lacks.
          Its cost did not show against run-to-run noise (2 M malloc/free pairs). Protocol 6 (Valgrind
          3.26+) has a ``<heap_summary>`` and ``<leak_summary>`` in the XML, which are used when present.
        - ``--leak-check=full``: memcheck forces it anyway when it writes XML (``--leak-check=no`` still
          prints every loss record), so a tool_arg cannot turn the leak search off.
        - ``--show-leak-kinds=all``: every leaked block is in some loss record, so the records add up to
          "in use at exit"; the parser checks that they do (a definite record's bytes include the indirect
          bytes it points to, a classic double count). A disagreement makes the record incomplete.
        - ``--error-limit=no``: past 1,000 contexts or 10,000,000 errors memcheck stops counting (and says
          so only in the text log); a gate needs exact counts.
        - No ``--error-exitcode``: the exit status stays the program's own, so a known (baselined) error
          does not fail the suite; findings reach the gate through the XML. ``--errors-for-leak-kinds`` only
          matters with it and is left alone.

        The suite's ``suppressions`` (Valgrind .supp files) come next, one ``--suppressions=`` each; memcheck
        counts what each hid in ``<suppcounts>``.

        ``tool_args`` go before the command and may refine (``--suppressions=``, ``--num-callers=``,
        ``--show-leak-kinds=definite,indirect``: the figures of kinds not shown are then absent, not 0).
        Arguments that would move or switch off the output memgate reads are refused with a ConfigError.
        """
        _check_extra_args(options.extra_args)
        folder = logdir.resolve()
        argv = [
            "valgrind",
            "--tool=memcheck",
            "--xml=yes",
            f"--xml-file={escape_percent(folder)}/{PREFIX}.%p.{XML_SUFFIX}",
            "--leak-check=full",
            "--show-leak-kinds=all",
            "--trace-children=yes",
            "--child-silent-after-fork=no",
            "--error-limit=no",
            f"--num-callers={NUM_CALLERS}",
            "--xtree-memory=full",
            f"--xtree-memory-file={escape_percent(folder)}/{PREFIX}.%p.{XTREE_SUFFIX}",
            *(f"--suppressions={file.path.resolve()}" for file in options.suppressions),
            *options.extra_args,
            "--",
            *command,
        ]
        return Launch(argv=argv, env=dict(options.env))

    def collect(self, logdir: Path, outcome: Outcome,
                options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        xml_files = sorted(logdir.glob(f"{PREFIX}.*.{XML_SUFFIX}"))
        if not xml_files:
            return [_missing_output(logdir, outcome)]
        sites = Sites(options.alloc_wrappers)
        processes: list[_Process] = []
        for xml_file in xml_files:
            process = _Process(_pid_in_name(xml_file))
            try:
                for output in read_outputs(xml_file, sites):
                    process.add(output)
            except ParseError as error:
                process.extra_problems.append(error.one_line())
                processes.append(process)
                continue
            self._add_xtree(process, logdir)
            processes.append(process)
        note = _outcome_note(outcome)
        records = [with_suppressions(self._record(process), process, options) for process in processes]
        if note is not None:
            records = [record if record.complete else record.model_copy(
                update={"incomplete_reason": f"{record.incomplete_reason} ({note})"}) for record in records]
        return records

    def _add_xtree(self, process: _Process, logdir: Path) -> None:
        xtree_file = logdir / f"{PREFIX}.{process.pid}.{XTREE_SUFFIX}"
        if xtree_file.is_file():
            process.xtree = read_xtree(xtree_file)
        elif process.xml is not None and process.xml.finished and process.xml.heap is None:
            process.extra_problems.append(
                f"no heap totals ({xtree_file.name}): valgrind did not write its xtree report")

    def _record(self, process: _Process) -> ProcessRecord:
        if process.findings is None and process.xtree is None:
            return ProcessRecord(pid=process.pid, leak_check=False, complete=False,
                                 incomplete_reason="; ".join(process.extra_problems) or "no output")
        return to_record(process)

    def parse(self, paths: Sequence[Path], options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        """``parse`` takes files a user made: memcheck XML, xtree reports, and text logs (``--log-file`` or a
        captured stderr, several processes in one file are told apart by ``==PID==``); files are grouped by
        process id. A text log alone gives everything memcheck prints: records, counts, both summaries."""
        sites = Sites(options.alloc_wrappers)
        outputs = [output for path in paths for output in read_outputs(Path(path), sites)]
        return [with_suppressions(to_record(process), process, options) for process in group_by_pid(outputs)]


MEMCHECK = Memcheck()
