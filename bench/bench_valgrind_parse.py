"""Parse speed and peak memory of the memcheck XML reader on large XML made of real records.

Run: ``python bench/bench_valgrind_parse.py [--size MB] [--input shallow|deep|both] [--no-full]
[--keep DIR]`` (default 200 MB, both inputs; ``--size 1024`` for the 1 GB figures). Each parse runs
in a fresh process; for each it prints wall seconds and CPU seconds (user + system: the figure that
does not depend on what else the machine runs) of the parse itself, timed inside that process (its
start-up and imports left out, as bench_asan_parse times the ASan parser), MB/s by both (10^6 bytes a
second) and the process's peak RSS (``os.wait4``), next to the peak RSS of a process that only imports
the reader (the interpreter's own share):

- ``stdlib``: memgate's reading without lxml (``read_xml(use_lxml=False)``): expat checks every byte
  while the ``<error>``s are found in the bytes and read with regular expressions;
- ``lxml``: the same, libxml2 (lxml) checking the bytes (``read_xml(use_lxml=True)``, memgate's
  reading when lxml is installed);
- ``etree-full``: ``xml.etree.ElementTree.parse`` of the whole tree and a walk over its errors:
  what a parser that is not streamed costs, on the same file in the same run (``--no-full`` skips
  it: on 1 GB it needs about 12 GB of RAM). The other two are given as a ratio of its time.

The inputs repeat real memcheck output of tests/data/memcheck (memgate's own command line, Valgrind
3.19) until the size is reached, every copy with its own ``<unique>`` and its own ``<ip>`` addresses
(as many distinct call paths), loss records after ``<state>FINISHED</state>`` as memcheck writes
them, and an ``<errorcounts>`` pair for every error copy:

- ``shallow``: the seven non-leak errors of ``kinds/`` (one counted 5 times) and the six loss
  records of ``leaks/``: stacks of 2 to 3 frames, about a thousand records a MB, the worst case;
- ``deep``: ``deep/``'s invalid read and loss record, 30-frame stacks (``--num-callers=30``), the
  shape of a real test suite's output.

Each parse is checked against the figures the copies add up to.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "memcheck"
sys.path.insert(0, str(ROOT))

_ERROR = re.compile(r"<error>.*?</error>\n", re.S)
_UNIQUE = re.compile(r"<unique>0x[0-9a-f]+</unique>")
_IP = re.compile(r"<ip>0x([0-9A-F]+)</ip>")
_COUNT_OF = re.compile(r"<count>(\d+)</count>\s*<unique>(0x[0-9a-f]+)</unique>")
_FINISHED = re.compile(r"<status>\s*<state>FINISHED</state>.*?</status>\n", re.S)


@dataclass(frozen=True)
class Input:
    errors_from: str  # the case folder whose non-leak errors are repeated
    leaks_from: str  # the case folder whose loss records are repeated
    per_copy: dict[str, int]  # what one copy adds to the figures


INPUTS = {
    "shallow": Input("kinds", "leaks", {"errors": 11, "leak_definite_bytes": 348, "leak_indirect_bytes": 64,
                                        "leak_possible_bytes": 48, "leak_reachable_bytes": 128}),
    "deep": Input("deep", "deep", {"errors": 1, "leak_definite_bytes": 24, "leak_indirect_bytes": 0,
                                   "leak_possible_bytes": 0, "leak_reachable_bytes": 0}),
}


def _xml(case: str) -> str:
    (path,) = (DATA / case).glob("*.xml")
    return path.read_text()


def _copy(record: str, unique: int, copy: int) -> str:
    record = _UNIQUE.sub(f"<unique>0x{unique:x}</unique>", record, count=1)
    return _IP.sub(lambda match: f"<ip>0x{int(match[1], 16) + copy * 16:X}</ip>", record)


def build(path: Path, size: int, source: Input) -> dict[str, int]:
    """Write the XML; return the figures a correct parse finds in it."""
    errors_xml, leaks_xml = _xml(source.errors_from), _xml(source.leaks_from)
    header = errors_xml[: errors_xml.index("<error>")]
    finished = _FINISHED.search(errors_xml)
    assert finished is not None
    counts = {unique: int(count) for count, unique in _COUNT_OF.findall(errors_xml)}
    errors = [(error, counts[unique]) for error in _ERROR.findall(errors_xml)
              if (unique := re.search(r"<unique>(0x[0-9a-f]+)</unique>", error)[1]) in counts]  # type: ignore[index]
    loss_records = [record for record in _ERROR.findall(leaks_xml) if "<kind>Leak_" in record]
    copy_bytes = sum(len(error) + 70 for error, _ in errors) + sum(map(len, loss_records))
    copies = max(1, (size - len(header)) // copy_bytes)
    with path.open("w") as out:
        out.write(header)
        for copy in range(copies):
            for index, (error, _count) in enumerate(errors):
                out.write(_copy(error, copy * len(errors) + index, copy))
        unique = copies * len(errors)
        out.write("\n" + finished[0] + "\n")
        for copy in range(copies):
            for record in loss_records:
                out.write(_copy(record, unique, copy))
                unique += 1
        out.write("<errorcounts>\n")
        for copy in range(copies):
            for index, (_error, count) in enumerate(errors):
                unique = copy * len(errors) + index
                out.write(f"  <pair>\n    <count>{count}</count>\n    <unique>0x{unique:x}</unique>\n"
                          "  </pair>\n")
        out.write("</errorcounts>\n\n<suppcounts>\n</suppcounts>\n\n</valgrindoutput>\n\n")
    return {name: copies * value for name, value in source.per_copy.items()}


def worker(mode: str, path: Path) -> None:
    """One parse, in this process; prints the figures found."""
    from memgate.tools.memcheck.xmlfile import read_xml

    found: dict[str, float] = {}
    started, cpu_started = time.perf_counter(), time.process_time()
    if mode in ("lxml", "stdlib"):
        from memgate.gcpause import collector_paused

        with collector_paused():  # as memgate parses (runner, memgate parse)
            output = read_xml(path, use_lxml=mode == "lxml")
        found["errors"] = output.errors.total()
        for kind, amount in output.leaks.per_kind.items():
            found[f"leak_{kind}_bytes"] = amount.bytes
    elif mode == "etree-full":
        import xml.etree.ElementTree as ElementTree

        root = ElementTree.parse(path).getroot()
        found["errors"] = sum(int(pair.findtext("count") or 0) for pair in root.iterfind("errorcounts/pair"))
        found["error_elements"] = sum(1 for _ in root.iterfind("error"))
    elif mode == "libxml2":  # the floor: libxml2 reads every byte, builds nothing and calls nothing
        from lxml import etree

        class Nothing:
            def close(self) -> None:
                pass

        parser = etree.XMLParser(target=Nothing(), resolve_entities=False, no_network=True)
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                parser.feed(chunk)
        parser.close()
    elif mode != "import":
        raise SystemExit(f"unknown mode {mode}")
    found["wall_seconds"] = time.perf_counter() - started
    found["cpu_seconds"] = time.process_time() - cpu_started
    print(json.dumps(found))


@dataclass(frozen=True)
class Measure:
    found: dict[str, int]
    wall: float  # seconds of the parse itself, timed in the worker: start-up and imports left out
    cpu: float
    peak_rss: int  # of the whole worker process


def measure(mode: str, path: Path) -> Measure:
    command = [sys.executable, __file__, "--worker", mode, str(path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{mode}: worker failed with status {status}")
    found = json.loads(output)
    wall, cpu = found.pop("wall_seconds"), found.pop("cpu_seconds")
    return Measure(found, wall, cpu, usage.ru_maxrss * 1024)


def run(name: str, source: Input, size: int, folder: Path, full: bool) -> None:
    path = folder / f"memcheck-{name}.xml"
    expected = build(path, size, source)
    megabytes = path.stat().st_size / 1e6
    baseline = measure("import", path)
    print(f"\n{name}: {megabytes:.1f} MB of memcheck XML, {expected['errors']:,} error occurrences "
          f"(interpreter and imports alone: {baseline.peak_rss / 2**20:.1f} MiB)")
    print(f"{'reader':<12}{'wall s':>8}{'cpu s':>8}{'MB/s wall':>11}{'MB/s cpu':>10}{'peak RSS':>12}")
    results: dict[str, Measure] = {}
    for mode in ["stdlib", "lxml"] + (["etree-full"] if full else []):
        result = results[mode] = measure(mode, path)
        if mode != "etree-full":
            wrong = {key: (result.found.get(key), value) for key, value in expected.items()
                     if result.found.get(key) != value}
            if wrong:
                raise SystemExit(f"{mode}: wrong figures (found, expected): {wrong}")
        wall, cpu = result.wall, result.cpu
        print(f"{mode:<12}{wall:>8.2f}{cpu:>8.2f}{megabytes / wall:>11.1f}{megabytes / cpu:>10.1f}"
              f"{result.peak_rss / 2**20:>8.1f} MiB")
    if full:
        whole = results["etree-full"]
        for mode in ("stdlib", "lxml"):
            print(f"{mode}: {results[mode].cpu / whole.cpu:.2f}x the CPU time and "
                  f"{results[mode].peak_rss / whole.peak_rss:.3f}x the peak RSS of the whole-tree parse")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="megabytes of XML per input (default 200)")
    parser.add_argument("--input", choices=[*INPUTS, "both"], default="both")
    parser.add_argument("--no-full", action="store_true", help="skip the whole-tree ElementTree parse")
    parser.add_argument("--keep", type=Path, help="write the XML files in this folder and keep them")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(arguments.worker[0], Path(arguments.worker[1]))
        return
    names = list(INPUTS) if arguments.input == "both" else [arguments.input]
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as temporary:
        folder = arguments.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            run(name, INPUTS[name], arguments.size * 10**6, folder, not arguments.no_full)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
