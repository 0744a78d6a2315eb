"""ASAN_OPTIONS / LSAN_OPTIONS: memgate's defaults merged with the user's options, and the effective
options of a run, kept in its log folder for ``collect``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from memgate.errors import ConfigError, ToolError
from memgate.tools.base import OWN_FILE_PREFIX, ToolOptions

#: The effective options of a run, written by ``launch`` so that ``collect`` knows when the user
#: turned leak detection off (the records then say ``leak_check=False``, and no leak metric is
#: reported).
OPTIONS_FILE = f"{OWN_FILE_PREFIX}sanitizer-options"
# Defaults, and why:
#
# - ``detect_leaks=1``: leaks are half of what this tool gates on.
# - ``exitcode=0``: a finding no longer changes the exit status, so the status stays the program's
#   own and a known (baselined) leak does not fail the suite; findings reach the gate through the
#   log. It also lets ASan go on to print its exit statistics after a leak report.
# - ``atexit=1`` (ASan): at exit, *after* the leak check (atexit handlers run in reverse order),
#   ASan prints "AddressSanitizer exit stats:". Every instrumented process that ends normally thus
#   writes a log, which tells a clean process (statistics, no report) from one whose leak check never
#   ran (killed, ``_exit()``, exec) and a suite with no instrumented program at all (no log). The
#   statistics give ``alloc_calls`` ("malloced ... by N calls": every malloc/calloc/realloc/new,
#   the C library's own included, as Valgrind counts them; a forked child starts from its parent's
#   count). ``print_stats=1`` is not set: it only adds the same block after every error report.
#   Measured cost of ``atexit=1``: none visible (3 M malloc/free pairs, 0.6-1.1 s either way), since
#   ASan keeps these counters anyway.
# - ``verbosity=2`` (LSan): standalone LSan has no exit statistics; at verbosity 2 its leak check
#   logs "Attached to thread" / "Detached from thread" from the thread that stops the world, which is
#   the sign that the check ran. It costs a few lines per process (one more per thread).
# - ``print_summary=1``, ``symbolize=1``: the SUMMARY line closes a report (a log that ends before
#   it is truncated) and totals the leaks, which are checked against the records.
# - ``log_exe_name=1``: each log is named ``asan.<program>.<pid>``: in a suite of several processes
#   (a ctest run, a script) the program names which test a process ran for (``ProcessRecord.test``);
#   the log itself never says.
#
# ``halt_on_error`` is left to the user. With the default (1) the first error ends the process, so
# there is no leak check: the record is incomplete, with the error. ``halt_on_error=0`` only
# continues after instrumented accesses in code built with ``-fsanitize-recover=address``; memgate
# parses the several reports that then precede the leak report and the exit statistics.
ASAN_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("detect_leaks", "1"), ("exitcode", "0"), ("atexit", "1"), ("print_summary", "1"), ("symbolize", "1"),
    ("log_exe_name", "1"),
)
LSAN_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("detect_leaks", "1"), ("exitcode", "0"), ("verbosity", "2"), ("print_summary", "1"), ("symbolize", "1"),
    ("log_exe_name", "1"),
)


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
    ``log_path`` (the runtime lets a later ``name=`` win). So the precedence, lowest first, is
    memgate's defaults, the user's variables (the suite's ``env``, else memgate's own environment),
    the suite's ``tool_args`` (each one ``name=value``), and last ``log_path``, which memgate owns:
    every process writes ``<logdir>/asan.<program>.<pid>`` (``lsan.<program>.<pid>``; without the
    program when the user sets ``log_exe_name=0``)."""
    user_names = {name for name, _ in split_options(user)} | {name for name, _ in extra}
    parts = [f"{name}={value}" for name, value in defaults if name not in user_names]
    if user.strip():
        parts.append(user.strip().strip(":"))
    parts += [f"{name}={_quote(value, name)}" for name, value in extra]
    parts.append(f"log_path={_quote(log_path, 'the log folder')}")
    return ":".join(part for part in parts if part)


def extra_options(extra_args: Sequence[str], tool: str) -> list[tuple[str, str]]:
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


def read_options_file(logdir: Path) -> dict[str, str]:
    try:
        text = (logdir / OPTIONS_FILE).read_text(encoding="utf-8")
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def user_value(variable: str, options: ToolOptions) -> str:
    """A variable as the suite's program would see it: the suite's ``env``, else memgate's own."""
    return options.env.get(variable, os.environ.get(variable, ""))


def write_options_file(logdir: Path, env: Mapping[str, str]) -> None:
    try:
        (logdir / OPTIONS_FILE).write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    except OSError as error:
        raise ToolError(f"cannot write to the log folder: {error.strerror}", path=logdir,
                        hint="make the artifacts folder writable") from None

