"""memgate.toml (or ``[tool.memgate]`` in pyproject.toml), validated by pydantic.

Every error names the file, the key path (``suite[0].timeout``) and the fix.
"""

from __future__ import annotations

import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memgate.errors import ConfigError
from memgate.metrics import METRIC_NAMES, LeakKind, MetricName

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

CONFIG_FILE = "memgate.toml"
MAX_REPEAT = 50
_GATED_LEAK_KINDS: tuple[LeakKind, ...] = ("definite", "indirect")
SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2,
               "mib": 1024**2, "g": 1024**3, "gb": 1000**3, "gib": 1024**3}
_LIMIT = re.compile(
    r"^\s*(?:(?P<pct>\+?\d+(?:\.\d+)?)\s*%|\+?(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*))\s*$"
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)")
_MAX_LIMIT_NUMBER = 40  # characters of a limit's number: any count has 20 digits at most


class Limit(BaseModel):
    """A threshold limit: a relative increase ("10%") or an absolute one ("+64KiB", "+0", "+3")."""

    model_config = ConfigDict(frozen=True)

    relative: float | None = None  # fraction: 0.1 for "10%"
    absolute: int | None = None
    text: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a limit is a string such as \"10%\", \"+64KiB\" or \"+0\", not true/false")
        if isinstance(value, int):
            if value < 0:
                raise ValueError("a limit cannot be negative")
            return {"absolute": value, "text": f"+{value}"}
        if not isinstance(value, str):
            return value
        match = _LIMIT.match(value)
        if not match:
            raise ValueError(
                f"{value!r} is not a limit: write a relative one such as \"10%\" or an absolute one "
                "such as \"+64KiB\", \"+0\" or \"+3\""
            )
        number = match["pct"] or match["num"]
        if len(number) > _MAX_LIMIT_NUMBER:  # float() would make it infinite, Fraction() may fail on it
            raise ValueError(f"{value[:_MAX_LIMIT_NUMBER]!r}... is not a limit: its number has "
                             f"{len(number):,} characters")
        if match["pct"] is not None:
            return {"relative": float(match["pct"]) / 100, "text": value.strip()}
        unit = match["unit"].lower()
        if unit not in _SIZE_UNITS:
            raise ValueError(f"unknown unit {match['unit']!r} in {value!r}: use B, KiB, MiB or GiB")
        return {"absolute": int(float(match["num"]) * _SIZE_UNITS[unit]), "text": value.strip()}

    def exceeded(self, baseline: int, current: int) -> bool:
        """True when ``current`` grew by this limit or more. An absolute limit is the growth allowed
        ("+0": any growth crosses it, "+3": 4 more does); a relative one is reached at exactly its
        percentage ("10%": +10% crosses it; computed exactly, not in floating point). A relative limit
        on a zero baseline counts any growth: 0 -> 1 leak is not an "infinite percentage" to ignore."""
        increase = current - baseline
        if increase <= 0:
            return False
        if self.absolute is not None:
            return increase > self.absolute
        if baseline == 0:
            return True
        return increase >= baseline * self.fraction()

    def fraction(self) -> Fraction:
        """The relative limit as an exact fraction, from its text ("33.3%" -> 333/1000)."""
        assert self.relative is not None
        match = _LIMIT.match(self.text)
        if match and match["pct"] is not None:
            return Fraction(match["pct"].lstrip("+")) / 100
        return Fraction(repr(self.relative))

    def amount(self, baseline: int) -> int:
        """This limit in the metric's own units for ``baseline`` (a relative one rounded down)."""
        if self.absolute is not None:
            return self.absolute
        return int(abs(baseline) * self.fraction())


def _limits(value: Any) -> Any:
    """A noise floor is one limit or a list of them: "1MiB", ["1%", "1MiB"] (the larger one applies)."""
    return value if value is None or isinstance(value, (list, tuple)) else [value]


class Threshold(BaseModel):
    """The limits of one metric. ``noise`` is the noise floor: a change (up or down) no larger than it
    is a pass, whatever ``warn`` and ``fail`` say; None means "inherited" (from the defaults, then the
    global [thresholds]), an empty floor is 0."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warn: Limit | None = None
    fail: Limit | None = None
    noise: tuple[Limit, ...] | None = None

    @field_validator("noise", mode="before")
    @classmethod
    def _noise(cls, value: Any) -> Any:
        return _limits(value)

    def noise_floor(self, baseline: int) -> int:
        """The largest change that counts as noise against ``baseline`` (0 without a floor)."""
        return max((limit.amount(baseline) for limit in self.noise or ()), default=0)

    def noise_text(self) -> str:
        """"1MiB", or "max(1%, 1MiB)" for several limits; "" without a floor."""
        texts = [limit.text for limit in self.noise or ()]
        return texts[0] if len(texts) == 1 else f"max({', '.join(texts)})" if texts else ""


Thresholds = dict[MetricName, Threshold]

DEFAULT_THRESHOLDS: Thresholds = {
    "leak_definite_bytes": Threshold(fail=Limit.model_validate("+0")),
    "leak_definite_blocks": Threshold(fail=Limit.model_validate("+0")),
    "leak_indirect_bytes": Threshold(fail=Limit.model_validate("+0")),
    "leak_indirect_blocks": Threshold(fail=Limit.model_validate("+0")),
    "errors": Threshold(fail=Limit.model_validate("+0")),
    "heap_peak_bytes": Threshold(warn=Limit.model_validate("5%"), fail=Limit.model_validate("10%")),
    "alloc_calls": Threshold(warn=Limit.model_validate("5%")),
    # Resident memory and page faults vary between runs of the same program (allocator caching, page
    # granularity); the exact heap counts of a single-threaded program do not: their floor is 0.
    "rss_peak_bytes": Threshold.model_validate({"noise": ["1%", "1MiB"]}),
    "page_faults_minor": Threshold.model_validate({"noise": ["2%", "100"]}),
    "page_faults_major": Threshold.model_validate({"noise": ["2%", "100"]}),
}


def parse_duration(value: Any) -> float:
    """Seconds from 600, "90s", "10m", "1h30m" or "500ms"."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as \"10m\"")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an integer of more than 308 digits
            raise ValueError(f"a duration of {len(str(value)):,} digits is no timeout") from None
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif re.fullmatch(rf"(?:{_DURATION.pattern}\s*)+", text):
            factors = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
            seconds = sum(float(n) * factors[unit] for n, unit in _DURATION.findall(text))
        else:
            raise ValueError(f"{value!r} is not a duration: write \"90s\", \"10m\" or \"1h\"")
    else:
        raise ValueError("a duration is a number of seconds or a string such as \"10m\"")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


def toml_boolean(value: Any) -> Any:
    """A switch is a TOML boolean only: pydantic would read "yes", "off", "0" or 1 as one, and a quoted
    "false" would then switch a check on or off without anyone noticing the typo."""
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not a boolean: write true or false, without quotes")
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
    fail_on_new_leak_kinds: list[LeakKind] = Field(default_factory=lambda: list(_GATED_LEAK_KINDS))
    fail_on_new_errors: bool = True
    suites: list[SuiteConfig] = Field(default_factory=list, alias="suite")
    #: The folder relative paths are taken from (the config file's folder).
    root: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="", exclude=True)

    _fail_on_new_errors = field_validator("fail_on_new_errors", mode="before")(toml_boolean)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        names = [suite.name for suite in self.suites]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"suite names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def thresholds_for(self, suite: str | None) -> Thresholds:
        """Defaults, then the global [thresholds], then the suite's own, metric by metric. A metric's
        entry replaces the warn and fail limits below it, unless it sets only ``noise``; the noise
        floor is inherited on its own (the most specific one set applies)."""
        levels = [DEFAULT_THRESHOLDS, self.thresholds]
        levels += [candidate.thresholds for candidate in self.suites if candidate.name == suite]
        merged: Thresholds = {}
        for name in METRIC_NAMES:
            entries = [level[name] for level in levels if name in level]
            if entries:
                merged[name] = _merge_levels(entries)
        return merged

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


def _merge_levels(entries: list[Threshold]) -> Threshold:
    """One metric's entries, least specific first, as the one rule that applies."""
    limits = [entry for entry in entries if entry.model_fields_set != {"noise"}]
    noises = [entry.noise for entry in entries if entry.noise is not None]
    rule = limits[-1] if limits else Threshold()
    return Threshold(warn=rule.warn, fail=rule.fail, noise=noises[-1] if noises else None)


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
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("memgate")
        if data is None:
            raise ConfigError("pyproject.toml has no [tool.memgate] table", path=path,
                              hint="add one, or pass --config memgate.toml")
    try:
        config = Config.model_validate({**data, "root": path.parent.resolve(), "source": str(path)})
    except ValidationError as error:
        raise ConfigError(_first_problem(error, data), path=path,
                          hint="fix that key; the README lists every key") from None
    if not config.suites:
        raise ConfigError("no [[suite]] defined", path=path,
                          hint="add a [[suite]] with name, command and tool")
    return config


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
