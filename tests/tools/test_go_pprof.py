"""Go heap profiles of real ``go test -memprofile`` runs, read into heap sites."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from memgate.errors import ToolError
from memgate.fingerprint import AllocWrappers
from memgate.records import HeapSite
from memgate.tools.go.pprof import heap_sites_from_profile

RUNS = 50

_MODULE = {
    "go.mod": "module example.com/shop\n\ngo 1.19\n",
    "shop.go": """package shop

type Item struct{ ID, Price int }

func NewItem(id int) *Item { return &Item{ID: id, Price: 2 * id} }

//go:noinline
func poolAlloc(n int) []byte { return make([]byte, n) }

//go:noinline
func Header() []byte { return poolAlloc(64) }

//go:noinline
func Footer() []byte { return poolAlloc(32) }
""",
    "shop_test.go": """package shop

import "testing"

var sink interface{}

func BenchmarkNewItem(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sink = NewItem(i)
	}
}

func BenchmarkParts(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sink = Header()
		sink = Footer()
	}
}
""",
}


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A heap profile of a module written here, every allocation recorded (-memprofilerate=1)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed (.ci/run installs golang-go)")
    module = tmp_path_factory.mktemp("shop")
    for name, text in _MODULE.items():
        (module / name).write_text(text)
    env = {**os.environ, "GOCACHE": str(module / ".cache"), "GOPATH": str(module / ".gopath"),
           "GOPROXY": "off", "GOFLAGS": "-buildvcs=false"}
    subprocess.run([go, "test", "-run", "^$", "-bench", ".", "-benchmem", f"-benchtime={RUNS}x",
                    "-memprofile", "mem.out", "-memprofilerate=1", "."],
                   cwd=module, env=env, check=True, capture_output=True, timeout=300)
    return module / "mem.out"


def _site(sites: tuple[HeapSite, ...], name: str) -> HeapSite:
    matching = [site for site in sites if site.site.startswith(name)]
    assert len(matching) == 1, [site.site for site in sites]
    return matching[0]


def test_every_allocation_of_a_benchmark_is_counted_at_its_function(profile: Path) -> None:
    sites = heap_sites_from_profile(profile)
    item = _site(sites, "example.com/shop.NewItem < example.com/shop.BenchmarkNewItem")
    # go test runs each benchmark once with b.N = 1 before the fixed count: RUNS + 1 calls.
    assert (item.blocks, item.bytes) == (RUNS + 1, (RUNS + 1) * 16)
    assert item.frames[0].function == "example.com/shop.NewItem"
    assert item.frames[0].file is not None and item.frames[0].file.endswith("shop.go")
    assert item.frames[0].line == 5


def test_a_wrapper_is_skipped_so_each_caller_is_its_own_site(profile: Path) -> None:
    plain = heap_sites_from_profile(profile)
    through_pool = [site for site in plain if site.site.startswith("example.com/shop.poolAlloc")]
    assert {site.frames[0].function for site in through_pool} == {"example.com/shop.poolAlloc"}

    wrapped = heap_sites_from_profile(profile, AllocWrappers.of(["*.poolAlloc"]))
    header = _site(wrapped, "example.com/shop.Header")
    footer = _site(wrapped, "example.com/shop.Footer")
    assert (header.bytes, footer.bytes) == ((RUNS + 1) * 64, (RUNS + 1) * 32)
    assert header.fingerprint != footer.fingerprint
    assert header.frames[0].function == "example.com/shop.Header"


def test_the_same_run_gives_the_same_sites(profile: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "mem.pb"
    unpacked.write_bytes(gzip.decompress(profile.read_bytes()))
    assert heap_sites_from_profile(unpacked) == heap_sites_from_profile(profile)


@pytest.mark.parametrize(("damage", "says"), [
    (lambda data: data[: len(data) // 2], "truncated"),
    (lambda data: gzip.compress(gzip.decompress(data)[:-7]), "truncated"),
    (lambda data: b"\x1f\x8b" + b"\x00" * 40, "gzip data is damaged"),
    (lambda data: b"\xff" * 64, "not a Go heap profile"),
])
def test_a_damaged_profile_is_a_clear_tool_error(
    profile: Path, tmp_path: Path, damage: Callable[[bytes], bytes], says: str
) -> None:
    broken = tmp_path / "mem.out"
    broken.write_bytes(damage(profile.read_bytes()))
    with pytest.raises(ToolError, match=says) as raised:
        heap_sites_from_profile(broken)
    assert str(broken) in str(raised.value)


def test_a_profile_without_allocation_values_says_so(tmp_path: Path) -> None:
    # A valid profile whose only sample type is cpu/nanoseconds: string table "", "cpu", "nanoseconds".
    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    cpu = field(1, bytes([1 << 3, 1, 2 << 3, 2])) + b"".join(
        field(6, text) for text in (b"", b"cpu", b"nanoseconds"))
    path = tmp_path / "cpu.out"
    path.write_bytes(gzip.compress(cpu))
    with pytest.raises(ToolError, match="no alloc_objects values .*cpu.*CPU profile"):
        heap_sites_from_profile(path)


def test_a_missing_profile_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="cannot read the Go heap profile .*gone.out"):
        heap_sites_from_profile(tmp_path / "gone.out")


def test_a_profile_that_unpacks_past_the_cap_is_refused(
    profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("memgate.tools.go.pprof.MAX_PROFILE_BYTES", 1024)
    with pytest.raises(ToolError, match="unpacks to more than"):
        heap_sites_from_profile(profile)


def test_benchmarks_only_keeps_the_stacks_of_the_benchmarks(profile: Path) -> None:
    everything = heap_sites_from_profile(profile)
    benchmarks = heap_sites_from_profile(profile, benchmarks_only=True)
    assert any(site.site.startswith("runtime.") or site.site.startswith("testing.") for site in everything)
    assert benchmarks and all(".Benchmark" in site.site or any(
        ".Benchmark" in (frame.function or "") for frame in site.frames) for site in benchmarks)
    assert _site(benchmarks, "example.com/shop.NewItem") == _site(everything, "example.com/shop.NewItem")
