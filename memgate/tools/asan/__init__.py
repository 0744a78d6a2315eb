"""AddressSanitizer (``asan``) and standalone LeakSanitizer (``lsan``): the tool objects."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from memgate.errors import ToolError
from memgate.metrics import MetricName
from memgate.proc import Outcome
from memgate.records import ProcessRecord
from memgate.suppressions import SuppressionFile, account
from memgate.tools.asan.checks import Context, missing_output, to_record
from memgate.tools.asan.frames import FrameCache
from memgate.tools.asan.log import Findings, parse_processes, pid_from_name, program_from_name
from memgate.tools.asan.options import (
    ASAN_DEFAULTS,
    LSAN_DEFAULTS,
    extra_options,
    leak_detection_enabled,
    merge_options,
    read_options_file,
    user_value,
    write_options_file,
)
from memgate.tools.base import DEFAULT_OPTIONS, OWN_FILE_PREFIX, Appetite, Launch, ToolOptions


# The sanitizers are compiled into the program, so memgate wraps nothing: it sets their options
# (``options``) and reads the text logs they write (``log``, ``frames``, ``checks``).
class SanitizerTool:
    """``asan`` or ``lsan``: the two differ in options, log name, what they measure and cost."""

    def __init__(self, name: str, label: str, variable: str, defaults: tuple[tuple[str, str], ...],
                 metrics: frozenset[MetricName], memory_appetite: Appetite) -> None:
        self.name = name
        self.label = label
        self.variable = variable  # the options variable the runtime reads
        self.defaults = defaults
        self.metrics = metrics
        self.memory_appetite = memory_appetite

    def version(self) -> str:
        """This cannot know which compiler built the program under test; it names the sanitizer and
        the gcc and clang versions on PATH (the usual source of the runtime), e.g. "AddressSanitizer
        (compiler runtime; gcc 12.2.0, clang 14.0.6 on PATH)". It never fails: the runtime is in the
        program, not on PATH."""
        compilers = ", ".join(_compiler_versions()) or "no gcc or clang"
        return f"{self.label} (compiler runtime; {compilers} on PATH)"

    def launch(self, command: Sequence[str], logdir: Path, options: ToolOptions) -> Launch:
        log_path = str(logdir.resolve() / self.name)
        extra = extra_options(options.extra_args, self.name)
        user = user_value(self.variable, options)
        suppressions = leak_suppressions(logdir, options.suppressions)
        own = extra + suppressions if self.variable == "LSAN_OPTIONS" else extra
        env = {self.variable: merge_options(user, self.defaults, own, log_path)}
        if self.variable != "LSAN_OPTIONS":
            # In ASan builds LSAN_OPTIONS overrides ASan's common options, log_path included; ASan's
            # own suppressions= is for its interceptors, the leak check reads LSAN_OPTIONS's.
            env["LSAN_OPTIONS"] = merge_options(user_value("LSAN_OPTIONS", options), (), suppressions,
                                                log_path)
        write_options_file(logdir, env)
        return Launch(argv=list(command), env=env)

    def collect(self, logdir: Path, outcome: Outcome,
                options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        recorded = read_options_file(logdir)
        variables = (self.variable, "LSAN_OPTIONS") if self.variable != "LSAN_OPTIONS" else (self.variable,)
        context = Context(tool_label=self.label, outcome=outcome,
                          leak_detection=leak_detection_enabled(recorded, variables))
        logs = sorted((path for path in logdir.glob(f"{self.name}.*") if path.is_file()),
                      key=lambda path: (pid_from_name(path) or 0, path.name))
        if not logs:
            return [missing_output(logdir, outcome, context, self.name)]
        return _records(logs, context, FrameCache(wrappers=options.alloc_wrappers), options)

    def parse(self, paths: Sequence[Path], options: ToolOptions = DEFAULT_OPTIONS) -> list[ProcessRecord]:
        context = Context(tool_label=self.label)
        return _records(map(Path, paths), context, FrameCache(wrappers=options.alloc_wrappers), options)


def _records(logs: Iterable[Path], context: Context, cache: FrameCache,
             options: ToolOptions) -> list[ProcessRecord]:
    """One record per process of each log, with the program its file is named after as its command:
    the log itself never names it (``log_exe_name``)."""
    records: list[ProcessRecord] = []
    for path in logs:
        program = program_from_name(path)
        records += [_with_suppressions(to_record(findings, context), findings, options).model_copy(
                        update={"command": program}) for findings in parse_processes(path, cache)]
    return records


#: The one file LSan reads (its ``suppressions=`` takes a single file): the suite's files joined.
SUPPRESSIONS_FILE = f"{OWN_FILE_PREFIX}lsan-suppressions"


def leak_suppressions(logdir: Path, files: Sequence[SuppressionFile]) -> list[tuple[str, str]]:
    """``[("suppressions", <logdir>/memgate-lsan-suppressions)]`` with the ``leak:`` lines of every file,
    or nothing when the suite has none."""
    if not files:
        return []
    joined = logdir.resolve() / SUPPRESSIONS_FILE
    lines = [f"# {file.shown}\n{file.path.read_text(encoding='utf-8').rstrip()}\n" for file in files]
    try:
        joined.write_text("".join(lines), encoding="utf-8")
    except OSError as error:
        raise ToolError(f"cannot write to the log folder: {error.strerror}", path=logdir,
                        hint="make the artifacts folder writable") from None
    return [("suppressions", str(joined))]


def _with_suppressions(record: ProcessRecord, findings: Findings, options: ToolOptions) -> ProcessRecord:
    """The record with LSan's "Suppressions used" table (only those that hid a leak), and every
    suppression of the suite's files, 0 for those it did not use."""
    if not findings.suppressed and not options.suppressions:
        return record
    return record.model_copy(update={"suppressions": account(findings.suppressed, options.suppressions)})


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


# Definite ("Direct leak") and indirect ("Indirect leak") bytes and blocks; ``errors`` (one per ERROR
# report; a SEGV the sanitizer reports is one, and sets ``fatal_signal``); ASan adds ``alloc_calls``
# from its exit statistics. LeakSanitizer has no "possibly lost" or "still reachable" kinds: those
# metrics are absent, not 0.
_LEAK_METRICS: frozenset[MetricName] = frozenset(
    {"leak_definite_bytes", "leak_definite_blocks", "leak_indirect_bytes", "leak_indirect_blocks", "errors"}
)

ASAN = SanitizerTool("asan", "AddressSanitizer", "ASAN_OPTIONS", ASAN_DEFAULTS,
                     _LEAK_METRICS | {"alloc_calls"},
                     # shadow memory, redzones and the quarantine of freed blocks
                     memory_appetite=Appetite(multiple=3.0))
LSAN = SanitizerTool("lsan", "LeakSanitizer", "LSAN_OPTIONS", LSAN_DEFAULTS, _LEAK_METRICS,
                     memory_appetite=Appetite(multiple=1.5))
