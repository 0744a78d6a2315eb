"""The ``memgate`` command line: argparse, ``MEMGATE_*`` defaults, dispatch to the use cases
(``memgate.app``) and the one error handler that turns errors into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memgate import __version__
from memgate.errors import ExitCode, MemgateError
from memgate.streams import readers_may_leave

# Heavy modules (pydantic, the tools, the reports) are imported inside the subcommands, so that
# ``memgate --version`` and ``--help`` start fast.
if TYPE_CHECKING:
    from memgate.app.run import RunOptions

EXIT_CODES = """\
exit codes:
  0  the gate passed (warnings allowed)
  1  the gate failed: a fail threshold crossed, a new leak site or memory error, a crashed,
     failed or timed-out suite
  2  usage, configuration or baseline error (the message names the file and the fix)
  3  tool or infrastructure error: tool missing, its output unparseable, truncated or incomplete
  4  internal error in memgate (a log file with the traceback is named)
  130, 143  interrupted by SIGINT (Ctrl-C) or SIGTERM: the running suites were stopped (their whole
     process groups) and the partial report was written, the suites cut short marked incomplete
"""

REPORT_FLAGS = {
    "markdown": "the Markdown summary (the PR/MR comment)",
    "junit": "JUnit XML (GitLab's test report)",
    "codequality": "GitLab code quality JSON (new leaks and errors in the MR diff)",
    "sarif": "SARIF 2.1.0 for GitHub code scanning",
    "openmetrics": "OpenMetrics text (GitLab's metrics report)",
}

DESCRIPTION = """\
memgate runs your test suites under a memory tool (AddressSanitizer/LeakSanitizer, Valgrind
memcheck, massif or DHAT, heaptrack, glibc memusage, or plain rusage), compares leaks, memory
errors and heap figures with the baselines kept in your repository, and passes or blocks the merge.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with readers_may_leave():
        return _handle(args)


def _handle(args: argparse.Namespace) -> int:
    try:
        code: int = args.handler(args)
        return code
    except MemgateError as error:
        print(f"memgate: error: {error.one_line()}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("memgate: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - the one place unexpected errors become a log and exit 4
        return _internal_error()


def _internal_error() -> int:
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="memgate-crash-", suffix=".log", delete=False) as log:
        log.write(f"memgate {__version__}, Python {sys.version}\n{traceback.format_exc()}")
    print(f"memgate: internal error: this is a bug in memgate; the traceback is in {log.name}; "
          "please report it with that file", file=sys.stderr)
    return int(ExitCode.INTERNAL)


def build_parser() -> argparse.ArgumentParser:
    from memgate.tools import TOOL_NAMES, canonical_tool_name

    parser = argparse.ArgumentParser(
        prog="memgate", description=DESCRIPTION, epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"memgate {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    check = _command(commands, "check", "run the suites, compare with the baselines, exit with the verdict")
    _add_run_options(check)
    reports = check.add_argument_group("reports (each written only when asked for)")
    for flag, what in REPORT_FLAGS.items():
        reports.add_argument(f"--{flag}", metavar="PATH", type=Path, help=what)
    check.add_argument("--fail-on", choices=("fail", "warn"),
                       default=os.environ.get("MEMGATE_FAIL_ON", "fail"),
                       help="exit 1 on fail verdicts only (default) or on warnings too (env MEMGATE_FAIL_ON)")
    check.add_argument("--comment", action="store_true",
                       help="post or update the one memgate comment on the GitHub pull request or GitLab "
                            "merge request; a comment that cannot be posted is a warning, never a verdict")
    check.add_argument("--base-ref", metavar="REF", default=os.environ.get("MEMGATE_BASE_REF") or None,
                       help="read baselines and thresholds from this commit (the target branch), not from "
                            "the working tree; default in CI: the pull/merge request's base commit "
                            "(env MEMGATE_BASE_REF)")
    check.set_defaults(handler=cmd_check)

    comment = _command(commands, "comment", "post or update the memgate comment from a Markdown file")
    comment.add_argument("--markdown", metavar="PATH", type=Path, required=True,
                         help="the Markdown written by `memgate check --markdown`")
    comment.add_argument("--pr", type=_positive_int, metavar="NUMBER",
                         help="the pull/merge request number (default: from the CI environment)")
    comment.set_defaults(handler=cmd_comment)

    run = _command(commands, "run", "run the suites and write the JSON report; no comparison")
    _add_run_options(run)
    run.set_defaults(handler=cmd_run)

    parse = _command(commands, "parse", "parse tool output you already have and print it as JSON")
    parse.add_argument("--tool", required=True, type=canonical_tool_name, choices=TOOL_NAMES,
                       help="the tool that wrote the files")
    parse.add_argument("--name", default="parsed", help="the suite name to give the record")
    parse.add_argument("--alloc-wrapper", action="append", default=[], metavar="GLOB", dest="alloc_wrappers",
                       help="a function-name glob of the project's allocator wrappers (e.g. 'x*alloc'), "
                            "skipped like malloc when sites are named, as alloc_wrappers in the config; "
                            "repeat it for more")
    parse.add_argument("files", nargs="+", type=Path, metavar="FILE",
                       help="output files; several files are several processes of one run")
    parse.set_defaults(handler=cmd_parse)

    compare = _command(commands, "compare", "compare a current JSON report with a baseline")
    compare.add_argument("baseline", type=Path, metavar="BASELINE",
                         help="a JSON report, a baselines folder, or one baseline file")
    compare.add_argument("current", type=Path, metavar="CURRENT", help="the current JSON report")
    compare.add_argument("--config", type=Path, metavar="PATH", default=_env_path("MEMGATE_CONFIG"),
                         help="thresholds from this config (default: built-in defaults, or memgate.toml "
                              "when one is found)")
    compare.add_argument("--markdown", metavar="PATH", type=Path, help="write the Markdown summary here")
    compare.add_argument("--json", metavar="PATH", type=Path,
                         help="write the current report with the comparison (verdict, exit code, per "
                              "metric and site) here")
    compare.set_defaults(handler=cmd_compare)

    baseline = _command(commands, "baseline", "manage the baselines kept in the repository")
    baseline_commands = baseline.add_subparsers(title="commands", metavar="COMMAND", required=True)
    update = _command(baseline_commands, "update", "write baselines/ from a run or from a JSON report")
    update.add_argument("--config", type=Path, metavar="PATH", default=_env_path("MEMGATE_CONFIG"),
                        help="memgate.toml or pyproject.toml (default: found from the current folder)")
    update.add_argument("--suite", action="append", default=[], metavar="NAME",
                        help="only this suite (repeatable)")
    update.add_argument("--from-report", type=Path, metavar="PATH",
                        help="take the figures from this JSON report instead of running the suites")
    update.add_argument("--jobs", type=_positive_int, default=_default_jobs(), metavar="N")
    update.add_argument("--commit", action="store_true",
                        help="commit the changed baseline files (only those), tagged [skip ci]")
    update.add_argument("--push", action="store_true",
                        help="push that commit; a rejected push is rebased and retried, never forced")
    update.add_argument("--force", action="store_true",
                        help="allow --commit on a branch other than the default branch")
    update.add_argument("--allow-errors", action="store_true",
                        help="write the baseline even when the run has memory errors, which makes them known "
                             "and lets them pass (env MEMGATE_ALLOW_ERRORS=1); leaks are always allowed")
    update.set_defaults(handler=cmd_baseline_update)
    return parser


def _command(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             summary: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=summary, description=summary, epilog=EXIT_CODES,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="PATH", default=_env_path("MEMGATE_CONFIG"),
                        help="memgate.toml or pyproject.toml with [tool.memgate] (default: found "
                             "from the current folder upwards; env MEMGATE_CONFIG)")
    parser.add_argument("--suite", action="append", default=[], metavar="NAME",
                        help="run only this suite (repeatable; default: all)")
    parser.add_argument("--json", type=Path, metavar="PATH", default=_env_path("MEMGATE_JSON"),
                        help="write the JSON report here (default: <artifacts_dir>/report.json)")
    parser.add_argument("--jobs", type=_positive_int, default=_default_jobs(), metavar="N",
                        help="suites run at once (default: the number of cores; env MEMGATE_JOBS); fewer "
                             "when their tools' expected memory exceeds the memory available")


def _env_path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else None


def _default_jobs() -> int:
    value = os.environ.get("MEMGATE_JOBS")
    return _positive_int(value) if value else (os.cpu_count() or 1)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


# --- subcommands: each builds its use case's options (memgate.app) and returns its exit code ---------


def _run_options(args: argparse.Namespace) -> RunOptions:
    from memgate.app.run import RunOptions

    return RunOptions(config=args.config, suites=tuple(args.suite), json=args.json, jobs=args.jobs)


def cmd_check(args: argparse.Namespace) -> int:
    from memgate.app.check import CheckOptions, ReportPaths, check

    reports = ReportPaths(**{flag: getattr(args, flag) for flag in REPORT_FLAGS})
    return check(CheckOptions(run=_run_options(args), reports=reports, fail_on=args.fail_on,
                              comment=args.comment, base_ref=args.base_ref)).exit_code


def cmd_comment(args: argparse.Namespace) -> int:
    from memgate.app.comment import CommentOptions, comment

    return comment(CommentOptions(markdown=args.markdown, number=args.pr)).exit_code


def cmd_run(args: argparse.Namespace) -> int:
    from memgate.app.run import run

    return run(_run_options(args)).exit_code


def cmd_parse(args: argparse.Namespace) -> int:
    from memgate.app.parse import ParseOptions, parse

    return parse(ParseOptions(tool=args.tool, files=tuple(args.files), name=args.name,
                              alloc_wrappers=tuple(args.alloc_wrappers))).exit_code


def cmd_compare(args: argparse.Namespace) -> int:
    from memgate.app.compare import CompareOptions, compare

    return compare(CompareOptions(baseline=args.baseline, current=args.current, config=args.config,
                                  markdown=args.markdown, json=args.json)).exit_code


def cmd_baseline_update(args: argparse.Namespace) -> int:
    from memgate.app.update_baselines import BaselineUpdateOptions, update_baselines

    return update_baselines(BaselineUpdateOptions(
        config=args.config, suites=tuple(args.suite), from_report=args.from_report, jobs=args.jobs,
        commit=args.commit, push=args.push, force=args.force,
        allow_errors=args.allow_errors or _env_switch("MEMGATE_ALLOW_ERRORS"),
    )).exit_code


def _env_switch(variable: str) -> bool:
    """A yes/no environment variable: 1, true or yes; unset, empty, 0, false or no is off."""
    value = os.environ.get(variable, "").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("", "0", "false", "no"):
        return False
    from memgate.errors import UsageError

    raise UsageError(f"{variable}={os.environ[variable]!r} is neither on nor off",
                     hint=f"set {variable} to 1 (or true, yes) or to 0, or unset it")
