"""The ``memgate`` command line: argparse, ``MEMGATE_*`` defaults, dispatch to the use cases
(``memgate.app``) and the one error handler that turns errors into exit codes."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memgate import __version__
from memgate.errors import ExitCode, MemgateError, UsageError
from memgate.streams import readers_may_leave

# Heavy modules (pydantic, the tools, the reports) are imported inside the subcommands, so that
# ``memgate --version`` and ``--help`` start fast.
if TYPE_CHECKING:
    from memgate.app.check import GateOutputs
    from memgate.app.common import Shard
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
        _defaults_from_environment(args, os.environ)
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
    from memgate.metrics import METRIC_NAMES
    from memgate.tools import TOOL_NAMES, canonical_tool_name

    parser = argparse.ArgumentParser(
        prog="memgate", description=DESCRIPTION, epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"memgate {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    check = _command(commands, "check", "run the suites, compare with the baselines, exit with the verdict")
    _add_run_options(check)
    _add_gate_options(check)
    check.set_defaults(handler=cmd_check)

    comment = _command(commands, "comment", "post or update the memgate comment from a Markdown file")
    comment.add_argument("--markdown", metavar="PATH", type=Path, required=True,
                         help="the Markdown written by `memgate check --markdown`")
    comment.add_argument("--pr", type=_positive_int, metavar="NUMBER",
                         help="the pull/merge request number (default: from the CI environment)")
    comment.set_defaults(handler=cmd_comment)

    run = _command(commands, "run", "run the suites and write the JSON report; no comparison")
    _add_run_options(run)
    run.add_argument("--shard", type=_shard, metavar="INDEX/TOTAL",
                     help="run only this shard's suites: every TOTAL-th suite (of the config's, or of "
                          "--suite), from the INDEX-th; TOTAL jobs, 1/TOTAL to TOTAL/TOTAL, run each suite "
                          "once (GitLab: $CI_NODE_INDEX/$CI_NODE_TOTAL); join their reports with "
                          "`memgate merge`")
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

    compare = _command(commands, "compare", "judge a JSON report (of `run`, or shards' merged) with no run")
    compare.add_argument("baseline", type=Path, metavar="BASELINE", nargs="?",
                         help="a JSON report, a baselines folder, or one baseline file; left out: the "
                              "baselines and thresholds `check` would use (of --base-ref or the target "
                              "branch in CI, else of this checkout), suites in the config's order, and a "
                              "suite of the config missing from CURRENT incomplete")
    compare.add_argument("current", type=Path, metavar="CURRENT", help="the current JSON report")
    compare.add_argument("--config", type=Path, metavar="PATH",
                         help="memgate.toml or pyproject.toml (default: found from the current folder; "
                              "with a BASELINE: the built-in thresholds; env MEMGATE_CONFIG)")
    compare.add_argument("--json", metavar="PATH", type=Path,
                         help="write the current report with the comparison (verdict, exit code, per "
                              "metric and site) here")
    _add_gate_options(compare)
    compare.set_defaults(handler=cmd_compare)

    history = _command(commands, "history", "print the baselines of the default branch over its last "
                                            "baseline commits, per suite and metric, with commit and date")
    history.add_argument("--config", type=Path, metavar="PATH",
                         help="memgate.toml or pyproject.toml (default: found from the current folder; "
                              "env MEMGATE_CONFIG)")
    history.add_argument("--ref", metavar="REF", type=_git_ref,
                         help="the branch or commit whose history is read (default: the default branch, "
                              "origin's when this clone has it, else HEAD)")
    history.add_argument("--limit", type=_positive_int, metavar="N",
                         help="the last N commits that changed the baselines, first parent only (default: "
                              "history_limit of the config, 20)")
    history.add_argument("--suite", action="append", default=[], metavar="NAME",
                         help="only this suite (repeatable)")
    history.add_argument("--metric", action="append", default=[], metavar="NAME", choices=METRIC_NAMES,
                         help="only this metric, such as heap_peak_bytes (repeatable)")
    history.add_argument("--json", action="store_true", dest="as_json",
                         help="print the same as JSON data: the commits, then per suite and metric the "
                              "values with commit and date")
    history.set_defaults(handler=cmd_history)

    merge = _command(commands, "merge", "merge the JSON reports of several `run` jobs (shards) into one")
    merge.add_argument("reports", nargs="+", type=Path, metavar="REPORT",
                       help="the JSON reports the shards wrote (memgate run --json), all of one commit; "
                            "a suite in two of them must be the same record")
    merge.add_argument("--json", type=Path, metavar="PATH", required=True,
                       help="write the merged report here, for `memgate compare` and `baseline update "
                            "--from-report`")
    merge.set_defaults(handler=cmd_merge)

    baseline = _command(commands, "baseline", "manage the baselines kept in the repository")
    baseline_commands = baseline.add_subparsers(title="commands", metavar="COMMAND", required=True)
    update = _command(baseline_commands, "update", "write baselines/ from a run or from a JSON report")
    update.add_argument("--config", type=Path, metavar="PATH",
                        help="memgate.toml or pyproject.toml (default: found from the current folder; "
                             "env MEMGATE_CONFIG)")
    update.add_argument("--suite", action="append", default=[], metavar="NAME",
                        help="only this suite (repeatable)")
    update.add_argument("--from-report", type=Path, metavar="PATH",
                        help="take the figures from this JSON report instead of running the suites")
    update.add_argument("--jobs", type=_positive_int, metavar="N",
                        help="suites run at once (default: the number of cores; env MEMGATE_JOBS)")
    update.add_argument("--commit", action="store_true",
                        help="commit the changed baseline files (only those), tagged [skip ci]")
    update.add_argument("--push", action="store_true",
                        help="push that commit; a rejected push is rebased and retried, never forced")
    update.add_argument("--force", action="store_true",
                        help="allow --commit on a branch other than the default branch")
    update.add_argument("--allow-errors", action="store_true", default=None,
                        help="write the baseline even when the run has memory errors, which makes them known "
                             "and lets them pass (env MEMGATE_ALLOW_ERRORS=1); leaks are always allowed")
    update.add_argument("--branch", metavar="NAME", type=_branch_name,
                        help="the branch the baseline commit goes onto (default: the checked-out one, or "
                             "the CI's branch); for CI checkouts that start on a detached HEAD, as "
                             "GitHub's and GitLab's do (env MEMGATE_BRANCH)")
    update.set_defaults(handler=cmd_baseline_update)
    return parser


def _command(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             summary: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=summary, description=summary, epilog=EXIT_CODES,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
    """What ``check`` and ``compare`` do with the verdict: the reports, --fail-on, the comment and
    where the gate is read."""
    reports = parser.add_argument_group("reports (each written only when asked for)")
    for flag, what in REPORT_FLAGS.items():
        reports.add_argument(f"--{flag}", metavar="PATH", type=Path, help=what)
    parser.add_argument("--fail-on", choices=FAIL_ON,
                        help="exit 1 on fail verdicts only (default) or on warnings too "
                             "(env MEMGATE_FAIL_ON)")
    parser.add_argument("--comment", action="store_true",
                        help="post or update the one memgate comment on the GitHub pull request or GitLab "
                             "merge request; a comment that cannot be posted is a warning, never a verdict")
    parser.add_argument("--base-ref", metavar="REF", type=_git_ref,
                        help="read baselines and thresholds from this commit (the target branch), not from "
                             "the working tree; default in CI: the pull/merge request's base commit "
                             "(env MEMGATE_BASE_REF)")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help="memgate.toml or pyproject.toml with [tool.memgate] (default: found "
                             "from the current folder upwards; env MEMGATE_CONFIG)")
    parser.add_argument("--suite", action="append", default=[], metavar="NAME",
                        help="run only this suite (repeatable; default: all)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="write the JSON report here (default: <artifacts_dir>/report.json; env "
                             "MEMGATE_JSON)")
    parser.add_argument("--jobs", type=_positive_int, metavar="N",
                        help="suites run at once (default: the number of cores; env MEMGATE_JOBS); fewer "
                             "when their tools' expected memory exceeds the memory available")


def _shard(text: str) -> Shard:
    from memgate.app.common import Shard

    index, slash, total = text.partition("/")
    if not (slash and index.isdigit() and total.isdigit() and 1 <= int(index) <= int(total)):
        raise argparse.ArgumentTypeError(f"{text!r} is not INDEX/TOTAL with 1 <= INDEX <= TOTAL, such as 2/3")
    return Shard(int(index), int(total))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _switch(text: str) -> bool:
    """A yes/no environment variable: 1, true or yes is on; 0, false or no is off."""
    value = text.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError("is neither on nor off")


def _git_ref(text: str) -> str:
    """A commit, branch or tag as given; never one git could read as an option."""
    if not text.strip() or text.startswith("-") or re.search(r"[\s\x00-\x1f\x7f]", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a commit or ref name")
    return text


def _branch_name(text: str) -> str:
    """A branch name as ``git check-ref-format --branch`` takes it (the commit checks it with git)."""
    name = text.removeprefix("refs/heads/")
    if not name or re.search(r"[\s\x00-\x1f\x7f~^:?*\\[]|\.\.|@\{|^[-/.]|[/.]$|\.lock$|//", name):
        raise argparse.ArgumentTypeError(f"{text!r} is not a branch name")
    return name


def _choice(*choices: str) -> Callable[[str], str]:
    def chosen(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        return text
    return chosen


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _login(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*(?:\[bot\])?", text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a GitHub login (such as my-app[bot])")
    return text


def _token(text: str) -> str:
    # A token pasted with a space or a line break inside would go into an HTTP header as it is.
    if not re.fullmatch(r"[\x21-\x7e]+", text.strip()):
        raise argparse.ArgumentTypeError("its value is not a token: it holds spaces, line breaks or "
                                         "non-ASCII characters inside")
    return text


FAIL_ON = ("fail", "warn")


@dataclass(frozen=True)
class EnvDefault:
    """A ``MEMGATE_*`` variable: the default of a flag (``dest``), or read by memgate itself
    (``dest`` None, checked where it is used). ``parse`` is the flag's own ``type``: the variable is
    validated as the flag is, and a bad value is a usage error naming the variable (exit 2)."""

    variable: str
    parse: Callable[[str], object]
    takes: str  # what a good value is, for the error's fix
    dest: str | None = None
    secret: bool = False  # never shown in an error


ENVIRONMENT = (
    EnvDefault("MEMGATE_CONFIG", Path, "a config file path, as --config", "config"),
    EnvDefault("MEMGATE_JSON", Path, "a file path, as --json", "json"),
    EnvDefault("MEMGATE_JOBS", _positive_int, "a whole number of 1 or more, as --jobs", "jobs"),
    EnvDefault("MEMGATE_FAIL_ON", _choice(*FAIL_ON), f"{' or '.join(FAIL_ON)}, as --fail-on", "fail_on"),
    EnvDefault("MEMGATE_BASE_REF", _git_ref, "a commit or ref name, as --base-ref", "base_ref"),
    EnvDefault("MEMGATE_BRANCH", _branch_name, "a branch name, as --branch", "branch"),
    EnvDefault("MEMGATE_ALLOW_ERRORS", _switch,
               "1, true or yes (on), or 0, false or no (off), as --allow-errors", "allow_errors"),
    EnvDefault("MEMGATE_FORGE_MAX_WAIT", _seconds, "a number of seconds such as 60"),
    EnvDefault("MEMGATE_GITHUB_BOT_LOGIN", _login, "the login of the bot that posts, such as my-app[bot]"),
    EnvDefault("MEMGATE_GITLAB_TOKEN", _token, "the project access token as GitLab shows it", secret=True),
)
_BUILT_IN: dict[str, Callable[[], object]] = {"jobs": lambda: os.cpu_count() or 1, "fail_on": lambda: "fail",
                                              "allow_errors": lambda: False}


def _defaults_from_environment(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    """Each flag left out takes its ``MEMGATE_*`` variable (unset or empty: the built-in default). A
    bad value stops memgate before anything runs, as the same value given to the flag would; the
    variables memgate reads when it comments are checked when it will comment."""
    comments = getattr(args, "comment", False) or args.handler is cmd_comment
    for entry in ENVIRONMENT:
        if entry.dest is None:  # read when memgate comments (check --comment, comment)
            if comments:
                _from_environment(entry, env)
        elif entry.dest in vars(args) and getattr(args, entry.dest) is None:
            value = _from_environment(entry, env)
            if value is None and entry.dest in _BUILT_IN:
                value = _BUILT_IN[entry.dest]()
            setattr(args, entry.dest, value)


def _from_environment(entry: EnvDefault, env: Mapping[str, str]) -> object:
    text = env.get(entry.variable, "")
    if not text:
        return None
    try:
        return entry.parse(text)
    except (argparse.ArgumentTypeError, ValueError) as error:
        reason = str(error)
        if not reason.startswith(repr(text)) and not entry.secret:
            reason = f"{text!r} {reason}"
        raise UsageError(f"environment variable {entry.variable}: {reason}",
                         hint=f"set it to {entry.takes}, or unset it") from None


# --- subcommands: each builds its use case's options (memgate.app) and returns its exit code ---------


def _run_options(args: argparse.Namespace) -> RunOptions:
    from memgate.app.run import RunOptions

    return RunOptions(config=args.config, suites=tuple(args.suite), json=args.json, jobs=args.jobs,
                      shard=getattr(args, "shard", None))


def _gate_outputs(args: argparse.Namespace) -> GateOutputs:
    from memgate.app.check import GateOutputs, ReportPaths

    reports = ReportPaths(**{flag: getattr(args, flag) for flag in REPORT_FLAGS})
    return GateOutputs(reports=reports, fail_on=args.fail_on, comment=args.comment)


def cmd_check(args: argparse.Namespace) -> int:
    from memgate.app.check import CheckOptions, check

    outputs = _gate_outputs(args)
    return check(CheckOptions(run=_run_options(args), reports=outputs.reports, fail_on=outputs.fail_on,
                              comment=outputs.comment, base_ref=args.base_ref)).exit_code


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

    return compare(CompareOptions(current=args.current, baseline=args.baseline, config=args.config,
                                  outputs=_gate_outputs(args), json=args.json,
                                  base_ref=args.base_ref)).exit_code


def cmd_merge(args: argparse.Namespace) -> int:
    from memgate.app.merge import MergeOptions, merge

    return merge(MergeOptions(reports=tuple(args.reports), json=args.json)).exit_code


def cmd_history(args: argparse.Namespace) -> int:
    from memgate.app.history import HistoryOptions, history

    return history(HistoryOptions(config=args.config, ref=args.ref, limit=args.limit,
                                  suites=tuple(args.suite), metrics=tuple(args.metric),
                                  as_json=args.as_json)).exit_code


def cmd_baseline_update(args: argparse.Namespace) -> int:
    from memgate.app.update_baselines import BaselineUpdateOptions, update_baselines

    return update_baselines(BaselineUpdateOptions(
        config=args.config, suites=tuple(args.suite), from_report=args.from_report, jobs=args.jobs,
        commit=args.commit, push=args.push, force=args.force, branch=args.branch,
        allow_errors=args.allow_errors,
    )).exit_code
