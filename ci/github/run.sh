#!/usr/bin/env bash
# The memgate GitHub Action's step (action.yml): check the inputs, install memgate from the action's
# own folder into a venv under $RUNNER_TEMP, run it, and exit with memgate's exit code.
#
# Inputs arrive as MEMGATE_ACTION_* environment variables and are only ever used as quoted shell
# words, never as shell text. Failures before memgate runs use memgate's exit codes: 2 for a bad
# input, 3 for an install problem (README, "Exit codes").
set -euo pipefail

# Workflow-command data must escape %, CR and LF, or an input could start a command of its own.
escape_data() {
  local text=${1//'%'/'%25'}
  text=${text//$'\r'/'%0D'}
  printf '%s' "${text//$'\n'/'%0A'}"
}

fail() {  # fail EXIT_CODE MESSAGE
  local code=$1
  shift
  echo "::error title=memgate::$(escape_data "$*")"
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "verdict=error" >>"$GITHUB_OUTPUT"
  fi
  exit "$code"
}

one_of() {  # one_of INPUT_NAME VALUE ALLOWED...
  local name=$1 value=$2
  shift 2
  local allowed
  for allowed in "$@"; do
    [ "$value" = "$allowed" ] && return 0
  done
  fail 2 "input $name is '$value'; use one of: $*"
}

# --- inputs ------------------------------------------------------------------------------------

mode=${MEMGATE_ACTION_MODE:-check}
comment=${MEMGATE_ACTION_COMMENT:-true}
fail_on=${MEMGATE_ACTION_FAIL_ON:-fail}
workdir=${MEMGATE_ACTION_WORKING_DIRECTORY:-.}
config=${MEMGATE_ACTION_CONFIG:-}
shard=${MEMGATE_ACTION_SHARD:-}
one_of mode "$mode" check run compare update-baselines
one_of comment "$comment" true false
one_of fail-on "$fail_on" fail warn

# The action's own folder holds memgate's source (absolute: we cd to the working directory below).
source_dir=${GITHUB_ACTION_PATH:-$(dirname "${BASH_SOURCE[0]}")/../..}
action_path=$(cd -- "$source_dir" 2>/dev/null && pwd) || action_path=
if [ -z "$action_path" ] || [ ! -f "$action_path/pyproject.toml" ]; then
  fail 3 "memgate's source is not in $source_dir (GITHUB_ACTION_PATH): use the action as owner/memgate@<sha>"
fi

if [ -n "$shard" ] && [ "$mode" != run ]; then
  fail 2 "input shard is for mode run (a shard's job), and mode is '$mode': leave shard out, or set mode: run"
fi

cd -- "$workdir" 2>/dev/null \
  || fail 2 "working-directory '$workdir' does not exist in $(pwd): give a folder of the checked-out repository"

# Suites: whitespace-separated names; globbing off so a name like 'a*' stays itself.
suites=()
set -f
# shellcheck disable=SC2086  # splitting on whitespace is the documented format
for suite in ${MEMGATE_ACTION_SUITES:-}; do
  suites+=("$suite")
done
set +f

# Reports of the shards (modes compare and update-baselines): paths or glob patterns, split with
# globbing off and then each expanded; each must match, so that a download put in another folder is an
# error here, not suites missing later.
set -f
# shellcheck disable=SC2206  # splitting on whitespace is the documented format
patterns=(${MEMGATE_ACTION_REPORTS:-})
set +f
reports=()
for pattern in "${patterns[@]}"; do
  shopt -s nullglob
  # shellcheck disable=SC2206  # expanded as a glob on purpose (it holds no whitespace)
  matched=($pattern)
  shopt -u nullglob
  [ "${#matched[@]}" -gt 0 ] \
    || fail 2 "input reports: '$pattern' matches no file in $(pwd): download the shards' reports there first (actions/download-artifact)"
  reports+=("${matched[@]}")
done
case "$mode" in
  compare)
    [ "${#reports[@]}" -gt 0 ] \
      || fail 2 "mode compare needs the shards' reports: set the reports input, e.g. 'shards/*/report.json'" ;;
  check | run)
    [ "${#patterns[@]}" -eq 0 ] \
      || fail 2 "input reports is for modes compare and update-baselines, and mode is '$mode': leave reports out" ;;
esac

# --- python and memgate --------------------------------------------------------------------------

python=${MEMGATE_ACTION_PYTHON:-}
if [ -z "$python" ]; then
  python=$(command -v python3) \
    || fail 3 "python3 is not on PATH: install it on the runner or set the python-version input"
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || fail 3 "memgate needs Python 3.10 or newer, $python is $("$python" -V 2>&1): set the python-version input"

venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/memgate-venv"
echo "::group::Install memgate from $action_path"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" \
    || fail 3 "cannot create a venv with $python: install python3-venv on the runner or set the python-version input"
fi
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet "$action_path" \
  || fail 3 "pip could not install memgate from $action_path: see the log above"
echo "::endgroup::"

# --- the command ---------------------------------------------------------------------------------

# What the CI says, as memgate reads it (memgate/forges/ci.py, the one reader of GITHUB_* variables
# and the event file); -I keeps a memgate/ folder in the working directory from being imported
# instead of the installed memgate.
ci_fact() {  # ci_fact PYTHON_EXPRESSION_OVER_ci
  "$venv/bin/python" -I -c "from memgate.forges import ci; print($1)"
}

is_pull_request=false
if [ "$(ci_fact 'ci.in_pull_request_event()' || true)" = True ]; then
  is_pull_request=true
fi

# The pull request's base commit: baselines and thresholds are read there, so a pull request cannot
# loosen its own gate. Only a full commit id is used (it is fetched below).
base_sha() {
  local sha
  sha=$(ci_fact 'ci.detect().base_ref or ""') || return 0
  if [[ $sha =~ ^([0-9a-f]{40}|[0-9a-f]{64})$ ]]; then
    printf '%s\n' "$sha"
  fi
}

# A shallow checkout lacks the base commit; fetch just that one (checkout's credentials do it).
ensure_commit() {
  git cat-file -e "$1^{commit}" 2>/dev/null && return 0
  echo "::notice title=memgate::fetching the base commit $1 (use actions/checkout with fetch-depth: 0 to skip this)"
  git fetch --quiet --no-tags --depth=1 origin "$1" \
    || echo "::warning title=memgate::could not fetch the base commit $1; memgate will say what it needs"
}

# The pull request's gate: baselines and thresholds at its base commit, and the comment.
pull_request_args() {
  if [ "$is_pull_request" = true ]; then
    local base
    base=$(base_sha)
    if [ -n "$base" ]; then
      ensure_commit "$base"
      args+=(--base-ref "$base")
    fi
    [ "$comment" = true ] && args+=(--comment)
  fi
  return 0
}

# The shards' reports joined into one, which compare or baseline update then read.
merge_reports() {
  merged="$PWD/.memgate/report.json"
  printf 'memgate merge'
  printf ' %q' "${reports[@]}"
  printf ' --json %q\n' "$merged"
  "$venv/bin/memgate" merge "${reports[@]}" --json "$merged" || {
    local code=$?
    if [ -n "${GITHUB_OUTPUT:-}" ]; then
      echo "verdict=error" >>"$GITHUB_OUTPUT"
    fi
    exit "$code"
  }
}

args=()
case "$mode" in
  check)
    args+=(check)
    [ -n "$config" ] && args+=(--config "$config")
    for suite in "${suites[@]}"; do args+=(--suite "$suite"); done
    args+=(--fail-on "$fail_on" --markdown "$PWD/.memgate/report.md")
    pull_request_args
    ;;
  run)
    # A shard: its report is the job's artifact; the verdict is the job that compares the shards'.
    args+=(run)
    [ -n "$config" ] && args+=(--config "$config")
    for suite in "${suites[@]}"; do args+=(--suite "$suite"); done
    [ -n "$shard" ] && args+=(--shard "$shard")
    args+=(--json "$PWD/.memgate/report.json")
    if [ -n "${GITHUB_OUTPUT:-}" ]; then
      echo "report-json=$PWD/.memgate/report.json" >>"$GITHUB_OUTPUT"
    fi
    ;;
  compare)
    merge_reports
    args+=(compare)
    [ -n "$config" ] && args+=(--config "$config")
    args+=("$merged" --fail-on "$fail_on" --markdown "$PWD/.memgate/report.md")
    pull_request_args
    ;;
  update-baselines)
    args+=(baseline update)
    [ -n "$config" ] && args+=(--config "$config")
    for suite in "${suites[@]}"; do args+=(--suite "$suite"); done
    if [ "${#reports[@]}" -gt 0 ]; then
      merge_reports
      args+=(--from-report "$merged")
    fi
    args+=(--commit --push)
    ;;
esac

# extra-args: split like a shell would (quotes allowed) by Python's shlex, which expands nothing.
# Each word comes back NUL-terminated, so any character survives.
split_words='import shlex, sys; sys.stdout.write("".join(w + "\0" for w in shlex.split(sys.argv[1])))'
if [ -n "${MEMGATE_ACTION_EXTRA_ARGS:-}" ]; then
  "$venv/bin/python" -c "$split_words" "$MEMGATE_ACTION_EXTRA_ARGS" >/dev/null 2>&1 \
    || fail 2 "input extra-args is not valid shell words (an unclosed quote?)"
  while IFS= read -r -d '' word; do
    args+=("$word")
  done < <("$venv/bin/python" -c "$split_words" "$MEMGATE_ACTION_EXTRA_ARGS")
fi

printf 'memgate'
printf ' %q' "${args[@]}"
printf '\n'
exec "$venv/bin/memgate" "${args[@]}"
