"""memgate.toml (or ``[tool.memgate]`` in pyproject.toml) -> ``Config``, validated by pydantic; every
error names the file, the key path (``suite[0].timeout``) and the fix. What thresholds mean: thresholds.py."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memgate.errors import ConfigError
from memgate.metrics import LOST_LEAK_KINDS, LeakKind
from memgate.suppressions import SuppressionFile
from memgate.thresholds import Thresholds, in_force
from memgate.units import parse_duration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

CONFIG_FILE = "memgate.toml"
MAX_REPEAT = 50
SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def alloc_wrapper_globs(value: Any) -> Any:
    """Function-name globs: a glob that matches every name would skip every frame of every stack."""
    if isinstance(value, list):
        for glob in value:
            if isinstance(glob, str) and not glob.strip("*? \t"):
                raise ValueError(f"{glob!r} would match every function: name your allocator wrappers, "
                                 "e.g. [\"xmalloc\", \"x*alloc\"]")
    return value


def toml_boolean(value: Any) -> Any:
    """A switch is a TOML boolean only: pydantic would read "yes", "off", "0" or 1 as one, and a quoted
    "false" would then switch a check on or off without anyone noticing the typo."""
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not a boolean: write true or false, without quotes")
    return value


def suppression_paths(value: list[str]) -> list[str]:
    """Paths inside the project: the gate reads them from the target branch through git."""
    for path in value:
        if not path.strip() or Path(path).is_absolute() or ".." in Path(path).parts:
            raise ValueError(f"{path!r} is not a path inside the project: give the suppression file "
                             "relative to the config file, e.g. \"valgrind.supp\"")
    return value


class SuiteConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    command: list[str] | str
    tool: str
    timeout: float = Field(default=600.0, description="Seconds; \"10m\" and \"90s\" are accepted.")
    cwd: str | None = Field(default=None, description="Relative to the config file's folder.")
    env: dict[str, str] = Field(default_factory=dict)
    shell: bool = Field(default=False, description="Run ``command`` (a string) through /bin/sh.")
    tool_args: list[str] = Field(default_factory=list, description="Extra arguments for the tool.")
    accept_exit_codes: list[int] = Field(default_factory=lambda: [0])
    thresholds: Thresholds = Field(default_factory=dict)
    repeat: int = Field(default=1, description="Runs of the suite, combined into one record (1 to 50).")
    alloc_wrappers: list[str] = Field(
        default_factory=list,
        description="More allocator wrappers for this suite (added to the top-level list).")

    suppressions: list[str] = Field(
        default_factory=list, description="Suppression files for this suite (added to the top-level "
                                          "list), relative to the config file.")

    _alloc_wrappers = field_validator("alloc_wrappers", mode="before")(alloc_wrapper_globs)
    _suppressions = field_validator("suppressions")(suppression_paths)

    @field_validator("repeat", mode="before")
    @classmethod
    def _repeat(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPEAT:
            raise ValueError(f"repeat is the number of runs, a whole number from 1 to {MAX_REPEAT}; "
                             f"got {value!r}")
        return value

    _shell = field_validator("shell", mode="before")(toml_boolean)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SUITE_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a usable suite name: use letters, digits, '.', '_' and '-' "
                "(it names the baseline file)"
            )
        return value

    @field_validator("accept_exit_codes")
    @classmethod
    def _exit_codes(cls, value: list[int]) -> list[int]:
        impossible = [code for code in value if not 0 <= code <= 255]
        if impossible:
            raise ValueError(f"{impossible[0]} is not an exit status a process can have: use 0 to 255")
        return value

    @field_validator("tool")
    @classmethod
    def _tool(cls, value: str) -> str:
        from memgate.tools import TOOL_NAMES, canonical_tool_name

        if canonical_tool_name(value) not in TOOL_NAMES:
            raise ValueError(f"unknown tool {value!r}: choose one of {', '.join(TOOL_NAMES)}")
        return canonical_tool_name(value)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _command(self) -> SuiteConfig:
        if isinstance(self.command, str) and not self.shell:
            raise ValueError(
                "command is a string: write it as a list of arguments, e.g. [\"./tests\", \"-v\"], "
                "or set shell = true to run it through /bin/sh"
            )
        if isinstance(self.command, list) and self.shell:
            raise ValueError("shell = true needs command as one string")
        if not self.command:
            raise ValueError("command is empty: give the program to run and its arguments")
        return self

    def argv(self) -> list[str]:
        if isinstance(self.command, str):
            return ["/bin/sh", "-c", self.command]
        return list(self.command)


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    baseline_dir: str = "baselines"
    artifacts_dir: str = ".memgate/artifacts"
    thresholds: Thresholds = Field(default_factory=dict)
    fail_on_new_leak_kinds: list[LeakKind] = Field(default_factory=lambda: list(LOST_LEAK_KINDS))
    fail_on_new_errors: bool = True
    alloc_wrappers: list[str] = Field(
        default_factory=list, description="Function-name globs of the project's allocator wrappers: their "
                                          "frames are skipped like malloc's when a site is named.")
    history_limit: int = Field(
        default=20, ge=0, le=500, strict=True,
        description="Baseline commits of the target branch charted in the comment (0: no chart) and read by "
                    "`memgate history`.")
    suppressions: list[str] = Field(
        default_factory=list, description="Suppression files (Valgrind .supp, LSan leak: lines) relative to "
                                          "the config file, for every suite whose tool reads that format.")
    suites: list[SuiteConfig] = Field(default_factory=list, alias="suite")
    #: The files each suite's tool gets, by suite name, when they are not this checkout's own: the
    #: target branch's versions (``baselines.target``). None: this checkout's.
    suppression_files: dict[str, tuple[SuppressionFile, ...]] | None = Field(default=None, exclude=True)
    #: The folder relative paths are taken from (the config file's folder).
    root: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="", exclude=True)

    _fail_on_new_errors = field_validator("fail_on_new_errors", mode="before")(toml_boolean)
    _alloc_wrappers = field_validator("alloc_wrappers", mode="before")(alloc_wrapper_globs)
    _suppressions = field_validator("suppressions")(suppression_paths)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        names = [suite.name for suite in self.suites]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"suite names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def thresholds_for(self, suite: str | None) -> Thresholds:
        """The thresholds in force for ``suite`` (None or a suite not configured: the global ones)."""
        own = [candidate.thresholds for candidate in self.suites if candidate.name == suite]
        return in_force(self.thresholds, *own)

    def alloc_wrappers_for(self, suite: SuiteConfig) -> tuple[str, ...]:
        """The top-level wrappers and the suite's own, sorted and without repeats."""
        return tuple(sorted({*self.alloc_wrappers, *suite.alloc_wrappers}))

    def suppression_names(self, suite: str) -> tuple[str, ...]:
        """The suppression files ``suite`` names: the top-level ones, then its own, without repeats (a
        suite this config does not have: the top-level ones)."""
        own = [path for candidate in self.suites if candidate.name == suite
               for path in candidate.suppressions]
        return tuple(dict.fromkeys([*self.suppressions, *own]))

    def suppressions_for(self, suite: SuiteConfig) -> list[SuppressionFile]:
        """The files ``suite``'s tool reads (of its format); ConfigError for a missing or unreadable file,
        or a suite's own file of the other format."""
        from memgate.suppressions import files_for_tool

        if self.suppression_files is not None and suite.name in self.suppression_files:
            files: Sequence[SuppressionFile] = self.suppression_files[suite.name]
        else:
            files = [SuppressionFile(shown=name, path=self.root / name)
                     for name in self.suppression_names(suite.name)]
        try:
            return files_for_tool(suite.tool, files, suite.suppressions)
        except ConfigError as error:
            raise ConfigError(error.message, path=self.source, hint=error.hint) from None

    def suite(self, name: str) -> SuiteConfig:
        for candidate in self.suites:
            if candidate.name == name:
                return candidate
        known = ", ".join(s.name for s in self.suites) or "none"
        raise ConfigError(f"no suite named {name!r}", path=self.source, hint=f"known suites: {known}")

    @property
    def baseline_path(self) -> Path:
        return self.root / self.baseline_dir

    @property
    def artifacts_path(self) -> Path:
        return self.root / self.artifacts_dir


def find_config(start: Path) -> Path:
    """memgate.toml, else a pyproject.toml with [tool.memgate], in ``start`` or a parent folder."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.memgate" in pyproject.read_text(errors="replace"):
            return pyproject
    raise ConfigError(
        f"no {CONFIG_FILE} found in {start} or its parents",
        hint="create one (see the README) or pass --config PATH",
    )


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path, hint="check the --config path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the config file: {error}", path=path) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"invalid TOML: {error}", path=path, hint="fix the TOML syntax") from None
    except ValueError:  # int() refuses a number of thousands of digits
        raise ConfigError(f"invalid TOML: {_longest_number(text)}", path=path,
                          hint="no setting takes a number that long: fix it") from None
    except RecursionError:  # tomllib reads nested arrays and tables by recursion
        raise ConfigError("invalid TOML: arrays or tables nested thousands deep", path=path,
                          hint="no setting nests more than a few levels: fix the file") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("memgate")
        if data is None:
            raise ConfigError("pyproject.toml has no [tool.memgate] table", path=path,
                              hint="add one, or pass --config memgate.toml")
    _refuse_nul_bytes(data, path)
    try:
        config = Config.model_validate({**data, "root": path.parent.resolve(), "source": str(path)})
    except ValidationError as error:
        raise ConfigError(_first_problem(error, data), path=path,
                          hint="fix that key; the README lists every key") from None
    if not config.suites:
        raise ConfigError("no [[suite]] defined", path=path,
                          hint="add a [[suite]] with name, command and tool")
    return config


def _refuse_nul_bytes(data: Any, path: Path) -> None:
    """No key or value may hold a NUL byte (TOML's ``"\\u0000"``): no argument, path or environment
    variable can carry one, so a suite's command, cwd or env with it could never run as written, and a
    folder setting with it could not be opened (read as no baselines, every suite passed as new)."""
    where = _nul_byte_at(data, ())
    if where is not None:
        shown = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in where).lstrip(".")
        raise ConfigError(f"{shown}: holds a NUL byte (\\u0000), which no command, path or environment "
                          "variable can carry", path=path, hint="remove the \\u0000 from that key")


def _nul_byte_at(value: Any, where: tuple[int | str, ...]) -> tuple[int | str, ...] | None:
    """The key path of the first key or string under ``value`` that holds a NUL byte, else None."""
    if isinstance(value, str):
        return where if "\0" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\0" in key:
            return (*where, key.replace("\0", "\\u0000"))
        found = _nul_byte_at(item, (*where, key))
        if found is not None:
            return found
    return None


def _longest_number(text: str) -> str:
    """The number ``tomllib`` could not read, and where it is: the longest run of digits."""
    run = max(re.finditer(r"[0-9][0-9_]*", text), key=lambda match: len(match[0]), default=None)
    if run is None:
        return "a number too long to read"
    line = text.count("\n", 0, run.start()) + 1
    return f"a number of {len(run[0].replace('_', '')):,} digits (at line {line})"


def _first_problem(error: ValidationError, data: Any) -> str:
    problem = error.errors()[0]
    key = _key_path(problem["loc"], data)
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        message = "unknown key (check its spelling)"
    elif problem["type"] == "missing":
        message = "required key is missing"
    more = f" (and {len(error.errors()) - 1} more problem(s))" if len(error.errors()) > 1 else ""
    return f"{key}: {message}{more}" if key else f"{message}{more}"


def _key_path(loc: tuple[int | str, ...], data: Any) -> str:
    """``("suite", 0, "timeout")`` as ``suite[0].timeout``; pydantic's internal steps dropped."""
    parts: list[str] = []
    for step in loc:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif step in ("function-after", "function-before") or "[" in step or step.startswith("list"):
            continue
        else:
            parts.append(f".{step}" if parts else step)
    return "".join(parts)
