"""The ``memgate`` command line: argparse, then one small function per subcommand.

Heavy modules (pydantic, the tools, reports) are imported inside the subcommands so that
``memgate --version`` and ``--help`` start fast.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memgate import __version__
from memgate.errors import ExitCode, MemgateError, UsageError, printable
from memgate.streams import readers_may_leave

if TYPE_CHECKING:
    from memgate.compare import Comparison
    from memgate.config import Config
    from memgate.forges import ci
    from memgate.interrupt import StopRequest
    from memgate.records import Report

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
    from memgate.tools import TOOL_NAMES

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
    parse.add_argument("--tool", required=True, choices=TOOL_NAMES, help="the tool that wrote the files")
    parse.add_argument("--name", default="parsed", help="the suite name to give the record")
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


# --- subcommands -----------------------------------------------------------------------------


def _load_config(path: Path | None) -> Config:
    from memgate.config import find_config, load_config

    return load_config(path if path is not None else find_config(Path.cwd()))


def _run(args: argparse.Namespace, config: Config) -> tuple[Report, Path, StopRequest]:
    from memgate.report.json import write_report

    report, stop = _run_suites(args, config)
    return report, write_report(args.json or config.artifacts_path / "report.json", report), stop


def _run_suites(args: argparse.Namespace, config: Config) -> tuple[Report, StopRequest]:
    """The suites, with SIGINT and SIGTERM stopping them (and only them) while they run."""
    from memgate.interrupt import stop_signals
    from memgate.runner.suites import run_suites, select_suites

    with stop_signals() as stop:
        report = run_suites(config, select_suites(config, args.suite), args.jobs, stop=stop)
    return report, stop


def _interrupted(stop: StopRequest, report_json: Path | None) -> int:
    partial = f"; the partial report is in {report_json}" if report_json else ""
    print(f"memgate: {stop.reason()}: the running suites were stopped{partial}", file=sys.stderr)
    return stop.exit_code()


def _print_problems(report: Report) -> bool:
    """Print one line per suite without usable figures; True when there was any."""
    from memgate.runner.suites import suite_problems

    problems = suite_problems(report)
    for problem in problems:
        print(f"memgate: error: {problem.one_line()}", file=sys.stderr)
    return bool(problems)


def cmd_check(args: argparse.Namespace) -> int:
    from memgate import publish
    from memgate.compare import compare_report
    from memgate.forges import ci
    from memgate.report.markdown import render_markdown
    from memgate.report.table import render_table
    from memgate.target import gate_at, local_gate

    config = _load_config(args.config)
    base_ref = args.base_ref or ci.detect().base_ref
    gate = gate_at(config, base_ref) if base_ref else local_gate(config)  # before the long run: fail fast
    report, report_json, stop = _run(args, config)
    ran = {suite.name for suite in report.suites}
    baselines = {name: b for name, b in gate.baselines.items() if name in ran or not args.suite}
    comparison = compare_report(report, baselines, gate.config)
    print(render_table(comparison))
    for note in gate.notes:
        print(f"note: {note}")
    markdown = render_markdown(comparison, notes=gate.notes, full_report=ci.run_url())
    # The work tree's root needs git (GitPython takes ~50 ms to import): only for the reports that
    # show source paths and GitHub's annotations.
    repo_root = functools.cache(lambda: publish.repository_root(config.root))
    _write_reports(args, comparison, markdown, repo_root, config)
    if stop.requested:  # the partial reports are written; no comment or outputs for a cancelled job
        _print_problems(report)
        return _interrupted(stop, report_json)
    comment_url = publish.post_comment(markdown) if args.comment else None
    if ci.on_github_actions():  # outside GitHub, spare the import of requests
        publish.github_job_outputs(comparison, markdown, repo_root=repo_root(), report_json=report_json,
                                   markdown_path=args.markdown, comment_url=comment_url)
    _print_problems(report)
    return int(comparison.exit_code(fail_on_warn=args.fail_on == "warn"))


def _write_reports(args: argparse.Namespace, comparison: Comparison, markdown: str,
                   repo_root: Callable[[], Path], config: Config) -> None:
    """Each report asked for on the command line, rendered (and its module imported) only when asked
    for."""
    from memgate import publish

    def junit() -> str:
        from memgate.report.junit import render_junit

        return render_junit(comparison, repo_root(), fail_on_warn=args.fail_on == "warn")

    def codequality() -> str:
        from memgate.report.codequality import render_codequality

        return render_codequality(comparison, repo_root(), fallback_path=config.source)

    def sarif() -> str:
        from memgate.report.sarif import render_sarif

        return render_sarif(comparison, repo_root(), fallback_path=config.source)

    def openmetrics() -> str:
        from memgate.report.openmetrics import render_openmetrics

        return render_openmetrics(comparison)

    renderers: dict[str, Callable[[], str]] = {"markdown": lambda: markdown, "junit": junit,
                                               "codequality": codequality, "sarif": sarif,
                                               "openmetrics": openmetrics}
    assert renderers.keys() == REPORT_FLAGS.keys()
    for flag, render in renderers.items():
        path: Path | None = getattr(args, flag)
        if path is not None:
            publish.write_text(path, render())


def cmd_comment(args: argparse.Namespace) -> int:
    from memgate import publish

    url = publish.post_comment(publish.comment_body_from_file(args.markdown), number=args.pr)
    return int(ExitCode.PASS if url else ExitCode.TOOL)


def cmd_run(args: argparse.Namespace) -> int:
    from memgate.report.table import render_suites

    report, report_json, stop = _run(args, _load_config(args.config))
    print(render_suites(report))
    problems = _print_problems(report)
    if stop.requested:
        return _interrupted(stop, report_json)
    if any(suite.status.fails_gate for suite in report.suites):
        return int(ExitCode.GATE_FAILED)  # a crashed, failed or timed-out suite, as for check
    return int(ExitCode.TOOL if problems else ExitCode.PASS)


def cmd_parse(args: argparse.Namespace) -> int:
    from memgate.gcpause import collector_paused
    from memgate.records import SuiteRecord, SuiteStatus, combine_processes
    from memgate.tools import get_tool

    for path in args.files:
        if not path.is_file():
            raise UsageError("no such file", path=path, hint="give the tool's output files")
    with collector_paused():
        processes = get_tool(args.tool).parse(args.files)
    incomplete = [p for p in processes if not p.complete]
    record = SuiteRecord(
        name=args.name, tool=args.tool, processes=tuple(processes), metrics=combine_processes(processes),
        status=SuiteStatus.INCOMPLETE if incomplete else SuiteStatus.OK,
        status_detail=incomplete[0].incomplete_reason if incomplete else None,
    )
    print(record.model_dump_json(indent=2))
    if incomplete:
        first = incomplete[0]
        shown = first.log_files[0] if first.log_files else args.files[0]
        print(printable(f"memgate: error: the output is incomplete ({shown}): {first.incomplete_reason}; "
                        "the figures above are partial"), file=sys.stderr)
        return int(ExitCode.TOOL)
    return int(ExitCode.PASS)


def cmd_compare(args: argparse.Namespace) -> int:
    from memgate.baseline import load_baseline_side, read_report
    from memgate.compare import compare_report
    from memgate.config import Config
    from memgate.publish import write_text
    from memgate.report.markdown import render_markdown
    from memgate.report.table import render_table

    config = _load_config(args.config) if args.config else Config()
    comparison = compare_report(read_report(args.current), load_baseline_side(args.baseline), config)
    print(render_table(comparison))
    if args.markdown:
        write_text(args.markdown, render_markdown(comparison))
    return int(comparison.exit_code())


def cmd_baseline_update(args: argparse.Namespace) -> int:
    from memgate.baseline import Baseline, read_report, write_baseline
    from memgate.forges import ci
    from memgate.records import SuiteStatus

    if args.push and not args.commit:
        raise UsageError("--push needs --commit", hint="add --commit, or leave out --push")
    config = _load_config(args.config)
    facts = ci.detect()
    if args.commit and not args.force:
        _refuse_off_default_branch(config.root, facts)
    if args.from_report:
        report = read_report(args.from_report)
    else:
        report, stop = _run_suites(args, config)
        if stop.requested:
            print("memgate: no baseline written", file=sys.stderr)
            return _interrupted(stop, None)
    suites = [suite for suite in report.suites if not args.suite or suite.name in args.suite]
    unusable = [s for s in suites if s.status is not SuiteStatus.OK or s.incomplete_reasons]
    for suite in unusable:
        detail = f": {suite.status_detail}" if suite.status_detail else ""
        print(printable(f"memgate: error: suite {suite.name!r} {suite.status.value}{detail} "
                        f"({suite.artifacts_dir}): a baseline must come from a complete, passing run; "
                        "fix the suite and run again"), file=sys.stderr)
    if unusable:
        print("memgate: no baseline written", file=sys.stderr)
        return int(ExitCode.GATE_FAILED if any(s.status.fails_gate for s in unusable) else ExitCode.TOOL)
    commit = report.environment.git_commit
    written = [write_baseline(config.baseline_path, Baseline.from_suite(suite, commit)) for suite in suites]
    for path in written:
        print(f"memgate: wrote {path}")
    if args.commit:
        _commit_baselines(args, config.root, written, commit, facts)
    return int(ExitCode.PASS)


def _refuse_off_default_branch(root: Path, facts: ci.CiFacts) -> None:
    """Fail before the suites run, not after: baselines are committed on the default branch only."""
    from memgate import vcs

    branch = facts.branch or vcs.current_branch(root)
    default = facts.default_branch or vcs.remote_default_branch(root)
    if branch and default and branch != default:
        raise vcs.NotDefaultBranchError(
            f"baselines are committed on the default branch ({default}), and this is {branch}",
            hint="run this on the default branch, or pass --force to commit on this branch anyway",
        )


def _commit_baselines(args: argparse.Namespace, root: Path, written: list[Path], commit: str | None,
                      facts: ci.CiFacts) -> None:
    from memgate import vcs

    result = vcs.commit_baselines(
        root, written, "memgate: update baselines", commit or vcs.resolve_commit(root, "HEAD"),
        push=args.push, branch=facts.branch, allow_non_default=args.force,
        default_branch=facts.default_branch,
    )
    print(f"memgate: {result.detail}")
