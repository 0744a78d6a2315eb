"""go: real ``go test`` runs on Go modules written here (standard library only, no network), read
through the runner and through ``memgate parse --tool go``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from heaprun import only, without_path

from memgate.baselines.model import Baseline
from memgate.cli import main
from memgate.errors import ConfigError, ToolError
from memgate.records import Report, SuiteRecord
from memgate.tools import get_tool
from memgate.tools.base import ToolOptions
from memgate.tools.go import GO
from memgate.tools.go.command import go_test_argv

needs_go = pytest.mark.skipif(shutil.which("go") is None,
                              reason="go is not installed (CI installs golang-go)")

GROW = """package grow

func Grow(n int) int {
	s := []int{}
	m := map[int]int{}
	for i := 0; i < n; i++ {
		s = append(s, i)
		m[i] = i
	}
	return len(s) + len(m)
}
"""
# Exact figures: 64 bytes in one allocation per operation; a slice and a map grown per operation; and
# sub-benchmarks.
GROW_TEST = """package grow

import (
	"fmt"
	"testing"
)

var sink, other []byte
var total int

func BenchmarkOneBlock(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sink = make([]byte, 64)%(extra)s
	}
}

func BenchmarkGrow(b *testing.B) {
	for i := 0; i < b.N; i++ {
		total += Grow(100)
	}
}

func BenchmarkCases(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("n=%%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				total += Grow(n)
			}
		})
	}
}

func TestWouldFailIfRun(t *testing.T) { t.Fatal("memgate runs no unit test unless -run asks") }
"""
ONE_MORE_ALLOCATION = "\n\t\tother = make([]byte, 8)"


@pytest.fixture(autouse=True)
def _offline_go(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build cache of the session's own, and no module download."""
    cache = tmp_path_factory.getbasetemp() / "go-cache"
    monkeypatch.setenv("GOCACHE", str(cache / "build"))
    monkeypatch.setenv("GOPATH", str(cache / "path"))
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOFLAGS", "-buildvcs=false")
    monkeypatch.delenv("GODEBUG", raising=False)


def module(root: Path, files: dict[str, str], command: str = '["go", "test", "./..."]') -> Path:
    """A Go module ``example.com/m`` with ``files`` and a memgate.toml running ``command``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "go.mod").write_text("module example.com/m\n\ngo 1.19\n")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    config = root / "memgate.toml"
    config.write_text(f'[[suite]]\nname = "bench"\ncommand = {command}\ntool = "go"\ntimeout = "5m"\n')
    return config


def grow_module(root: Path, extra: str = "", command: str = '["go", "test", "./..."]') -> Path:
    return module(root, {"grow/grow.go": GROW, "grow/grow_test.go": GROW_TEST % {"extra": extra}}, command)


def run_suite(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, SuiteRecord]:
    report = config.parent / "report.json"
    code = main(["run", "--config", str(config), "--jobs", "1", "--json", str(report)])
    capsys.readouterr()
    return code, only_suite(report)


def only_suite(report: Path) -> SuiteRecord:
    (suite,) = Report.model_validate_json(report.read_text()).suites
    return suite


# -- the command -------------------------------------------------------------------------------------

def test_memgate_adds_what_makes_the_figures_exact() -> None:
    argv = go_test_argv(["go", "test", "./..."], {})
    assert argv == ["go", "test", "-json", "-benchmem", "-run=^$", "-bench=.", "-benchtime=1000x", "-count=3",
                    "-exec=env GODEBUG=gctrace=1", "./..."]


def test_the_users_own_flags_are_kept_and_not_doubled() -> None:
    argv = go_test_argv(["go", "test", "-run", "TestX", "-bench=Grow", "-benchtime", "50x", "--count=3",
                         "-json", "./...", "-args", "-bench=no"], {"GODEBUG": "madvdontneed=1"})
    assert argv == ["go", "test", "-benchmem", "-exec=env GODEBUG=madvdontneed=1,gctrace=1", "-run", "TestX",
                    "-bench=Grow", "-benchtime", "50x", "--count=3", "-json", "./...", "-args", "-bench=no"]


@pytest.mark.parametrize("command, message", [
    (["go", "build", "./..."], "is a go test command"),
    (["./bench.test"], "is a go test command"),
    (["go", "test", "-benchtime=1s", "./..."], "-benchtime=1s makes allocs/op and B/op move"),
    (["go", "test", "-test.benchtime", "100ms"], "-benchtime=100ms makes"),
    (["go", "test", "-exec", "qemu", "./..."], "through go test's -exec itself"),
])
def test_commands_memgate_cannot_read_exactly_are_refused(command: list[str], message: str,
                                                          tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        GO.launch(command, tmp_path, ToolOptions())
    assert raised.value.hint


def test_tool_args_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="takes no tool_args"):
        GO.launch(["go", "test"], tmp_path, ToolOptions(extra_args=("-v",)))


def test_a_missing_go_is_a_tool_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = grow_module(tmp_path / "m")
    without_path(monkeypatch, tmp_path, "sh", "env")
    with pytest.raises(ToolError, match="go is not installed") as raised:
        get_tool("go").version()
    assert "golang-go" in raised.value.hint
    assert main(["run", "--config", str(config), "--jobs", "1"]) == 3
    assert "apt-get install golang-go" in capsys.readouterr().err


# -- real runs ---------------------------------------------------------------------------------------

@needs_go
def test_exact_figures_per_benchmark_and_gc_figures_per_binary(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, suite = run_suite(grow_module(tmp_path / "m"), capsys)
    assert code == 0 and suite.status.value == "ok"
    assert set(suite.tests) == {"BenchmarkOneBlock", "BenchmarkGrow", "BenchmarkCases/n=1",
                                "BenchmarkCases/n=10"}
    assert suite.tests["BenchmarkOneBlock"] == {"allocs_per_op": 1, "bytes_per_op": 64}
    assert suite.tests["BenchmarkCases/n=1"]["allocs_per_op"] == 1  # the map header; the slice stays small
    assert suite.tests["BenchmarkGrow"]["allocs_per_op"] > suite.tests["BenchmarkCases/n=10"]["allocs_per_op"]
    # One garbage collection at least before each benchmark run (testing forces them), each with a pause.
    assert suite.metrics["gc_cycles"] >= 4 and suite.metrics["gc_pause_total_ns"] > 0
    (process,) = suite.processes
    assert process.command == "example.com/m/grow" and process.tests == suite.tests
    events = Path(process.log_files[0])
    assert events.name == "go-test.json" and '"Action":"pass"' in events.read_text()
    stderr = Path(suite.artifacts_dir or "") / "stderr.log"
    assert "gc 1 @" not in stderr.read_text()  # the go command's own collections are not traced


@needs_go
def test_reruns_of_unchanged_code_give_the_same_allocation_figures(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = grow_module(tmp_path / "m")
    runs = [run_suite(config, capsys)[1].tests for _ in range(5)]
    for tests in runs[1:]:
        for name, figures in tests.items():
            assert figures["allocs_per_op"] == runs[0][name]["allocs_per_op"], name
            # Map buckets are laid out by a random hash seed: bytes move a little, far below 5%.
            assert abs(figures["bytes_per_op"] - runs[0][name]["bytes_per_op"]) <= runs[0][name][
                "bytes_per_op"] * 0.02, name


@needs_go
def test_one_more_allocation_per_operation_is_measured_exactly(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    before = run_suite(grow_module(tmp_path / "before"), capsys)[1].tests
    after = run_suite(grow_module(tmp_path / "after", ONE_MORE_ALLOCATION), capsys)[1].tests
    assert after["BenchmarkOneBlock"]["allocs_per_op"] == before["BenchmarkOneBlock"]["allocs_per_op"] + 1
    assert after["BenchmarkOneBlock"]["bytes_per_op"] == 64 + 8
    assert after["BenchmarkGrow"]["allocs_per_op"] == before["BenchmarkGrow"]["allocs_per_op"]


@needs_go
@pytest.mark.skipif("tests" not in Baseline.model_fields,
                    reason="baselines keep per-test figures once the per-test model (issue 13) is merged")
def test_one_more_allocation_fails_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "m"
    config = grow_module(root)
    assert main(["baseline", "update", "--config", str(config), "--jobs", "1"]) == 0
    assert main(["check", "--config", str(config), "--jobs", "1"]) == 0
    grow_module(root, ONE_MORE_ALLOCATION)
    capsys.readouterr()
    assert main(["check", "--config", str(config), "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "BenchmarkOneBlock" in out
    # The heap profiles name the function whose allocations grew: 8 bytes in each of the 3 x 1000 timed
    # iterations (every allocation recorded; Go's tiny allocator packs two such objects in one block).
    growth = out[out.index("Heap growth"):].splitlines()[1]
    assert growth.startswith("  bench: +23.44 KiB, +1,500 blocks at example.com/m/grow.BenchmarkOneBlock < ")


@needs_go
def test_same_benchmark_name_in_two_packages_is_named_by_package(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bench = ('package {0}\n\nimport "testing"\n\nvar sink []byte\n\n'
             'func BenchmarkX(b *testing.B) {{ for i := 0; i < b.N; i++ {{ sink = make([]byte, {1}) }} }}\n'
             'func BenchmarkOnlyIn{2}(b *testing.B) {{\n'
             '\tfor i := 0; i < b.N; i++ {{ sink = make([]byte, 8) }}\n}}\n')
    config = module(tmp_path / "m", {"a/a_test.go": bench.format("a", 32, "A"),
                                          "b/b_test.go": bench.format("b", 48, "B")})
    code, suite = run_suite(config, capsys)
    assert code == 0
    assert suite.tests == {
        "BenchmarkOnlyInA": {"allocs_per_op": 1, "bytes_per_op": 8},
        "BenchmarkOnlyInB": {"allocs_per_op": 1, "bytes_per_op": 8},
        "example.com/m/a.BenchmarkX": {"allocs_per_op": 1, "bytes_per_op": 32},
        "example.com/m/b.BenchmarkX": {"allocs_per_op": 1, "bytes_per_op": 48},
    }
    assert len(suite.processes) == 2


# -- failures ----------------------------------------------------------------------------------------

@needs_go
def test_a_compile_error_fails_the_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = grow_module(tmp_path / "m")
    (tmp_path / "m" / "grow" / "broken.go").write_text('package grow\n\nfunc Broken() int { return "x" }\n')
    code, suite = run_suite(config, capsys)
    assert code == 1 and suite.status.value == "failed"
    assert suite.incomplete_reasons == ("package example.com/m/grow did not build (the go command printed "
                                        "the errors on its stderr)",)
    assert "broken.go:3" in (Path(suite.artifacts_dir or "") / "stderr.log").read_text()


@needs_go
def test_a_failing_benchmark_fails_the_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failing = 'package f\n\nimport "testing"\n\nfunc BenchmarkBad(b *testing.B) { b.Fatal("wrong result") }\n'
    code, suite = run_suite(module(tmp_path / "m", {"f/f_test.go": failing}), capsys)
    assert code == 1 and suite.status.value == "failed"
    assert suite.incomplete_reasons == ("package example.com/m/f: BenchmarkBad failed",)


@needs_go
def test_a_failing_unit_test_fails_the_suite_when_run_asks_for_it(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, suite = run_suite(grow_module(tmp_path / "m", command='["go", "test", "-run", "Fail", "./..."]'),
                            capsys)
    assert code == 1 and suite.status.value == "failed"
    assert suite.incomplete_reasons == ("package example.com/m/grow: TestWouldFailIfRun failed",)


@needs_go
def test_a_panic_crashes_the_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    panics = ('package p\n\nimport "testing"\n\n'
              'func BenchmarkPanics(b *testing.B) { var s []int; for i := 0; i < b.N; i++ { s[i] = i } }\n')
    code, suite = run_suite(module(tmp_path / "m", {"p/p_test.go": panics}), capsys)
    assert code == 1 and suite.status.value == "crashed"
    assert suite.status_detail == "killed by panic: runtime error: index out of range [0] with length 0"


@needs_go
def test_a_run_with_no_benchmark_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = grow_module(tmp_path / "m", command='["go", "test", "-bench", "NoSuchBenchmark", "./..."]')
    code, suite = run_suite(config, capsys)
    assert code == 3 and suite.status.value == "incomplete"
    assert suite.status_detail and suite.status_detail.startswith("go test ran no benchmark")


@needs_go
def test_a_hanging_benchmark_times_out_and_leaves_no_process(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    hangs = ('package hangsforever\n\nimport (\n\t"testing"\n\t"time"\n)\n\n'
             'func BenchmarkHangs(b *testing.B) { time.Sleep(time.Hour) }\n')
    config = module(tmp_path / "m", {"hangsforever/h_test.go": hangs})
    config.write_text(config.read_text().replace('timeout = "5m"', 'timeout = "5s"'))
    code, suite = run_suite(config, capsys)
    assert code == 1 and suite.status.value == "timeout"
    leftover = subprocess.run(["pgrep", "-f", "hangsforever"], capture_output=True, text=True)
    assert leftover.stdout == "", "the timeout must end go test and the test binary"


@needs_go
def test_forge_tokens_reach_no_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A benchmark that prints its environment: the forge token memgate was given is not in it."""
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_s3cr3tTokenValue0000000000000000000")
    monkeypatch.setenv("MEMGATE_CANARY", "visible-to-the-suite")
    prints = ('package env\n\nimport (\n\t"fmt"\n\t"os"\n\t"testing"\n)\n\n'
              'func BenchmarkEnv(b *testing.B) { fmt.Println(os.Environ()) }\n')
    code, suite = run_suite(module(tmp_path / "m", {"env/env_test.go": prints}), capsys)
    assert code == 0
    events = Path(suite.processes[0].log_files[0]).read_text().splitlines()
    # test2json cuts a long line into several output events: the output is their texts joined.
    output = "".join(json.loads(event).get("Output", "") for event in events)
    assert "MEMGATE_CANARY=visible-to-the-suite" in output
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or b"ghp_s3cr3t" not in path.read_bytes(), path


# -- memgate parse -----------------------------------------------------------------------------------

JSON_SPLIT_RESULT = "\n".join(json.dumps({"Action": "output", "Package": "example.com/m", "Output": text})
                              for text in ["pkg: example.com/m\n", "BenchmarkGrow\n", "BenchmarkGrow-2   \t",
                                           "gc 3 @0.003s 8%: 0.061+0.12+0.002 ms clock, 0.12+0/0.09/0.09"
                                           "+0.004 ms cpu, 0->0->0 MB, 4 MB goal, 0 MB stacks, 2 P\n",
                                           "     100\t 19693 ns/op\t    7422 B/op\t      24 allocs/op\n",
                                           "PASS\n"]) + '\n{"Action":"pass","Package":"example.com/m"}\n'
TEXT = """goos: linux
pkg: example.com/m/a
BenchmarkGrow-2          	     100	     19693 ns/op	    7422 B/op	      24 allocs/op
BenchmarkCases/n=10-2    	     100	      1148 ns/op	     538 B/op	       6 allocs/op
PASS
ok  	example.com/m/a	0.012s
"""


def parse(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    path = tmp_path / "out.txt"
    path.write_text(text)
    code = main(["parse", "--tool", "go", str(path)])
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


def test_parse_json_events_with_a_result_split_by_a_gc_trace(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, record = parse(tmp_path, JSON_SPLIT_RESULT, capsys)
    assert code == 0
    assert record["tests"] == {"BenchmarkGrow": {"allocs_per_op": 24, "bytes_per_op": 7422}}
    assert record["metrics"] == {"gc_cycles": 1, "gc_pause_total_ns": 63_000}  # 0.061 + 0.002 ms


def test_parse_plain_benchmark_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, record = parse(tmp_path, TEXT, capsys)
    assert code == 0
    assert record["tests"] == {"BenchmarkGrow": {"allocs_per_op": 24, "bytes_per_op": 7422},
                               "BenchmarkCases/n=10": {"allocs_per_op": 6, "bytes_per_op": 538}}
    assert record["metrics"] == {}  # no GC trace in it: not measured, not 0


def test_repeats_that_disagree_make_the_benchmark_nondeterministic(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """-count=3 of a benchmark whose input is seeded from the clock (as google/btree's are)."""
    runs = "".join(f"BenchmarkRestore-2 \t 100\t 9 ns/op\t {size} B/op\t {allocs} allocs/op\n"
                   for size, allocs in ((283480, 1043), (284952, 1039), (288728, 1056)))
    steady = "BenchmarkParse-2 \t 100\t 9 ns/op\t 64 B/op\t 1 allocs/op\n" * 3
    code, record = parse(tmp_path, f"pkg: example.com/m\n{runs}{steady}ok  \texample.com/m\t0.1s\n", capsys)
    assert code == 0
    assert record["tests"]["BenchmarkRestore"] == {"allocs_per_op": 1043, "bytes_per_op": 284952}
    assert record["nondeterministic_tests"] == [
        {"metric": "allocs_per_op", "min": 1039, "max": 1056, "value": 1043, "test": "BenchmarkRestore"},
        {"metric": "bytes_per_op", "min": 283480, "max": 288728, "value": 284952, "test": "BenchmarkRestore"}]


@needs_go
def test_a_real_benchmark_of_random_sizes_is_nondeterministic(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The same, from a real go test run: a benchmark whose sizes come from math/rand reads other
    B/op in each of its -count runs, a steady one does not."""
    bench = ('package r\n\nimport (\n\t"math/rand"\n\t"testing"\n)\n\nvar sink []byte\n\n'
             'func BenchmarkRandom(b *testing.B) {\n'
             '\tfor i := 0; i < b.N; i++ { sink = make([]byte, 1+rand.Intn(4096)) }\n}\n\n'
             'func BenchmarkSteady(b *testing.B) {\n'
             '\tfor i := 0; i < b.N; i++ { sink = make([]byte, 64) }\n}\n')
    code, suite = run_suite(module(tmp_path / "m", {"r/r_test.go": bench}), capsys)
    assert code == 0
    assert {(spread.test, spread.metric) for spread in suite.nondeterministic_tests} == {
        ("BenchmarkRandom", "bytes_per_op")}
    assert suite.tests["BenchmarkSteady"] == {"allocs_per_op": 1, "bytes_per_op": 64}


def test_parse_text_without_benchmem_says_how_to_get_it(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "out.txt"
    path.write_text("pkg: example.com/m\nBenchmarkGrow-2 \t 100\t 19693 ns/op\nok  \texample.com/m\t0.1s\n")
    assert main(["parse", "--tool", "go", str(path)]) == 3
    assert "has no B/op and allocs/op figures (run go test with -benchmem)" in capsys.readouterr().err


def test_parse_of_output_without_benchmarks_is_an_error(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "out.txt"
    path.write_text("PASS\nok  \texample.com/m\t0.1s\n")
    assert main(["parse", "--tool", "go", str(path)]) == 3
    err = capsys.readouterr().err
    assert "no go test benchmark results in it" in err and "-benchmem" in err


@needs_go
def test_parse_reads_what_a_real_go_test_json_run_wrote(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _, suite = run_suite(grow_module(tmp_path / "m"), capsys)
    events = Path(suite.processes[0].log_files[0])
    assert main(["parse", "--tool", "go", str(events)]) == 0
    parsed = SuiteRecord.model_validate_json(capsys.readouterr().out)
    assert parsed.tests == suite.tests and parsed.metrics == suite.metrics
    assert only(list(parsed.processes)).command == "example.com/m/grow"


# -- the example -------------------------------------------------------------------------------------

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "go"
SEE_IT_FAIL = ("make([]string, 0, 16)", "make([]string, 0, 8)")  # the README's sed: one growth more


@needs_go
def test_the_go_example_passes_and_its_see_it_fail_adds_one_allocation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = tmp_path / "go"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns(".memgate"))
    assert main(["check", "--config", str(example / "memgate.toml"), "--jobs", "1"]) == 0
    before = run_suite(example / "memgate.toml", capsys)[1].tests
    source = example / "wordcount" / "wordcount.go"
    assert source.read_text().count(SEE_IT_FAIL[0]) == 1
    source.write_text(source.read_text().replace(*SEE_IT_FAIL))
    after = run_suite(example / "memgate.toml", capsys)[1].tests
    assert set(after) == {"BenchmarkWords", "BenchmarkCount/repeat=1", "BenchmarkCount/repeat=10"}
    for name in after:
        assert after[name]["allocs_per_op"] == before[name]["allocs_per_op"] + 1, name
    if "tests" in Baseline.model_fields:  # per-test baselines (issue 13): the gate sees it
        assert main(["check", "--config", str(example / "memgate.toml"), "--jobs", "1"]) == 1
