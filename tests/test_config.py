"""memgate/config.py: the file -> Config, and its errors naming the file, the key path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from memgate.config import Config, find_config, load_config, parse_config
from memgate.errors import ConfigError


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('noise = "lots"', "thresholds.heap_peak_bytes.noise[0]: 'lots' is not a limit"),
        ('noise = ["1%", "x"]', "thresholds.heap_peak_bytes.noise[1]: 'x' is not a limit"),
        ("noise = true", "thresholds.heap_peak_bytes.noise[0]: a limit is a string"),
        ('noise = "-1MiB"', "thresholds.heap_peak_bytes.noise[0]: '-1MiB' is not a limit"),
    ],
)
def test_bad_noise_is_a_config_error_with_the_key(tmp_path: Path, toml: str, message: str) -> None:
    text = (f'[[suite]]\nname = "u"\ncommand = ["t"]\ntool = "dhat"\n'
            f'[thresholds]\nheap_peak_bytes = {{ {toml} }}\n')
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.").replace("[", r"\[")):
        parse_config(text, tmp_path / "memgate.toml")


@pytest.mark.parametrize("value", ["0", "51", '"3"', "true", "2.5", "-1"])
def test_repeat_outside_1_to_50_is_a_config_error(tmp_path: Path, value: str) -> None:
    text = f'[[suite]]\nname = "u"\ncommand = ["t"]\ntool = "dhat"\nrepeat = {value}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "memgate.toml")
    assert caught.value.message.startswith("suite[0].repeat: repeat is the number of runs, a whole number "
                                           "from 1 to 50; got ")
    assert caught.value.path == str(tmp_path / "memgate.toml")


def test_repeat_defaults_to_1(tmp_path: Path) -> None:
    text = '[[suite]]\nname = "u"\ncommand = ["t"]\ntool = "dhat"\n[[suite]]\nname = "v"\ncommand = ["t"]\n' \
           'tool = "dhat"\nrepeat = 50\n'
    assert [s.repeat for s in parse_config(text, tmp_path / "memgate.toml").suites] == [1, 50]


SUITE = '[[suite]]\nname = "unit"\ncommand = ["./tests"]\ntool = "rusage"\n'


def test_a_minimal_config_and_its_defaults(tmp_path: Path) -> None:
    config = parse_config(SUITE, tmp_path / "memgate.toml")
    assert (config.baseline_dir, config.artifacts_dir) == ("baselines", ".memgate/artifacts")
    assert config.thresholds == {}
    assert (config.fail_on_new_leak_kinds, config.fail_on_new_errors) == (["definite", "indirect"], True)
    assert (config.root, config.source) == (tmp_path.resolve(), str(tmp_path / "memgate.toml"))
    assert config.baseline_path == tmp_path.resolve() / "baselines"
    unit = config.suite("unit")
    assert (unit.timeout, unit.repeat, unit.accept_exit_codes, unit.argv()) == (600.0, 1, [0], ["./tests"])


def test_the_thresholds_are_kept_as_written(tmp_path: Path) -> None:
    """The file's [thresholds] and a suite's own are data here; what is in force: thresholds.py."""
    text = ('[thresholds]\nheap_peak_bytes = { warn = "2%" }\n' + SUITE +
            '[suite.thresholds]\nerrors = { fail = "+3", noise = ["1%", "10"] }\n')
    config = parse_config(text, tmp_path / "memgate.toml")
    assert set(config.thresholds) == {"heap_peak_bytes"}
    errors = config.suites[0].thresholds["errors"]
    assert (errors.fail and errors.fail.absolute, errors.noise_text()) == (3, "max(1%, 10)")


def test_a_shell_command_and_a_timeout_with_its_unit(tmp_path: Path) -> None:
    text = '[[suite]]\nname = "sh"\ncommand = "make test"\nshell = true\ntool = "rusage"\ntimeout = "1h30m"\n'
    suite = parse_config(text, tmp_path / "memgate.toml").suites[0]
    assert (suite.argv(), suite.timeout) == (["/bin/sh", "-c", "make test"], 5400.0)


def test_an_unknown_suite_names_the_known_ones(tmp_path: Path) -> None:
    config = parse_config(SUITE, tmp_path / "memgate.toml")
    with pytest.raises(ConfigError, match="^no suite named 'other'$") as raised:
        config.suite("other")
    assert (raised.value.hint, raised.value.path) == ("known suites: unit", str(tmp_path / "memgate.toml"))


def test_the_first_problem_is_named_by_its_key_path_and_the_others_counted(tmp_path: Path) -> None:
    text = '[[suite]]\nname = "a b"\ncommand = ["t"]\ntool = "rusage"\ntimeout = "soon"\n'
    with pytest.raises(ConfigError) as raised:
        parse_config(text, tmp_path / "memgate.toml")
    assert raised.value.message == ("suite[0].name: 'a b' is not a usable suite name: use letters, digits, "
                                    "'.', '_' and '-' (it names the baseline file) (and 1 more problem(s))")
    assert raised.value.hint == "fix that key; the README lists every key"


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("baseline_dir = ", "invalid TOML: ", "fix the TOML syntax"),
        ("", "no [[suite]] defined", "add a [[suite]] with name, command and tool"),
        (f"baseline_dir = {'9' * 5000}", "invalid TOML: a number of 5,000 digits (at line 1)",
         "no setting takes a number that long: fix it"),
    ],
)
def test_a_file_that_is_no_config(tmp_path: Path, text: str, message: str, hint: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, tmp_path / "memgate.toml")
    assert raised.value.message.startswith(message)
    assert raised.value.hint == hint


def test_pyproject_takes_its_tool_memgate_table(tmp_path: Path) -> None:
    text = '[project]\nname = "x"\n[tool.memgate]\nbaseline_dir = "mem"\n' + SUITE.replace(
        "[[suite]]", "[[tool.memgate.suite]]")
    assert parse_config(text, tmp_path / "pyproject.toml").baseline_dir == "mem"
    with pytest.raises(ConfigError, match=r"^pyproject.toml has no \[tool.memgate\] table$"):
        parse_config('[project]\nname = "x"\n', tmp_path / "pyproject.toml")


def test_load_config_reads_the_file_and_names_it_when_it_cannot(tmp_path: Path) -> None:
    path = tmp_path / "memgate.toml"
    with pytest.raises(ConfigError, match="^config file not found$") as raised:
        load_config(path)
    assert (raised.value.path, raised.value.hint) == (str(path), "check the --config path")
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="^cannot read the config file: "):
        load_config(path)
    path.write_text(SUITE)
    assert load_config(path).suites[0].name == "unit"


def test_find_config_looks_in_the_folder_and_its_parents(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "a" / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no [tool.memgate]: skipped
    (tmp_path / "memgate.toml").write_text(SUITE)
    assert find_config(deep) == tmp_path / "memgate.toml"
    (tmp_path / "a" / "pyproject.toml").write_text("[tool.memgate]\n")
    assert find_config(deep) == tmp_path / "a" / "pyproject.toml"
    (deep / "memgate.toml").write_text(SUITE)
    assert find_config(deep) == deep / "memgate.toml"


def test_find_config_without_one_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^no memgate.toml found in {tmp_path} or its parents$") as raised:
        find_config(tmp_path)
    assert raised.value.hint == "create one (see the README) or pass --config PATH"


def test_an_empty_config_is_valid_for_comparing() -> None:
    """``memgate compare`` without a config compares with memgate's defaults: no suites needed."""
    assert Config().suites == []
