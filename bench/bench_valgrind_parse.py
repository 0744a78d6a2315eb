"""Parse speed and peak memory of the memcheck XML parser on a large XML made of real records.

Run: ``python bench/bench_valgrind_parse.py [--size MB] [--no-full] [--keep PATH]`` (default 200 MB;
``--size 1024`` for the 1 GB figure). Each parse runs in a fresh process; for each it prints the
time, MB/s (10^6 bytes per second) and the peak RSS of that process (``os.wait4``), next to a
process that only imports the parser (the interpreter's own share):

- ``lxml``: memgate's streamed parse with lxml's pull parser;
- ``stdlib``: the same with xml.etree's pull parser (lxml not installed);
- ``etree-full``: ``xml.etree.ElementTree.parse`` of the whole tree, then a walk over its errors:
  what a parser that is not streamed costs, measured on the same file in the same run (skip it with
  ``--no-full``: on 1 GB it needs about 12 GB of RAM).

The XML is tests/data/valgrind's real memcheck output: the header of ``kinds/`` (memgate's own
command line), then its seven non-leak ``<error>`` records (one of them counted 5 times) and the six
loss records of ``leaks/`` repeated until the size is reached, every copy with its own ``<unique>``
and its own ``<ip>`` addresses (so the frame cache misses, as with many distinct call paths), the
loss records after ``<state>FINISHED</state>`` as memcheck writes them, and an ``<errorcounts>``
pair for every error copy. Each parse is checked against the figures the copies must add up to.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "valgrind"
sys.path.insert(0, str(ROOT))

_ERROR = re.compile(r"<error>.*?</error>\n", re.S)
_UNIQUE = re.compile(r"<unique>0x[0-9a-f]+</unique>")
_IP = re.compile(r"<ip>0x([0-9A-F]+)</ip>")
_COUNT_OF = re.compile(r"<count>(\d+)</count>\s*<unique>(0x[0-9a-f]+)</unique>")


def _xml(case: str) -> str:
    (path,) = (DATA / case).glob("*.xml")
    return path.read_text()


def _with(record: str, unique: int, copy: int) -> str:
    record = _UNIQUE.sub(f"<unique>0x{unique:x}</unique>", record, count=1)
    return _IP.sub(lambda match: f"<ip>0x{int(match[1], 16) + copy * 16:X}</ip>", record)


def build(path: Path, size: int) -> dict[str, int]:
    """Write the synthetic XML; return what a correct parse must find in it."""
    kinds, leaks = _xml("kinds"), _xml("leaks")
    header = kinds[: kinds.index("<error>")]
    errors = _ERROR.findall(kinds)
    counts = {unique: int(count) for count, unique in _COUNT_OF.findall(kinds)}
    error_counts = [counts[re.search(r"<unique>(0x[0-9a-f]+)</unique>", error)[1]] for error in errors]  # type: ignore[index]
    loss_records = [record for record in _ERROR.findall(leaks) if "<kind>Leak_" in record]
    finished = re.search(r"<status>\s*<state>FINISHED</state>.*?</status>\n", kinds, re.S)[0]  # type: ignore[index]
    unique = 0
    pairs: list[str] = []
    written = len(header)
    copies = 0
    error_bytes = sum(map(len, errors))
    leak_bytes = sum(map(len, loss_records))
    copies_wanted = max(1, int((size - written) / (error_bytes + leak_bytes + 70 * len(errors))))
    with path.open("w") as out:
        out.write(header)
        for copy in range(copies_wanted):
            for error, count in zip(errors, error_counts, strict=True):
                out.write(_with(error, unique, copy))
                pairs.append(f"  <pair>\n    <count>{count}</count>\n    <unique>0x{unique:x}</unique>\n  </pair>\n")
                unique += 1
            copies += 1
        out.write("\n" + finished + "\n")
        for copy in range(copies_wanted):
            for record in loss_records:
                out.write(_with(record, unique, copy))
                unique += 1
        out.write("<errorcounts>\n")
        out.writelines(pairs)
        out.write("</errorcounts>\n\n<suppcounts>\n</suppcounts>\n\n</valgrindoutput>\n\n")
    return {"errors": copies * sum(error_counts), "leak_definite_bytes": copies * 348,
            "leak_indirect_bytes": copies * 64, "leak_possible_bytes": copies * 48,
            "leak_reachable_bytes": copies * 128}


def worker(mode: str, path: Path) -> None:
    """One parse, in this process; prints the figures found and the seconds it took."""
    from memgate.tools._memcheck.xmlfile import read_xml

    started = time.perf_counter()
    found: dict[str, int] = {}
    if mode in ("lxml", "stdlib"):
        output = read_xml(path, use_lxml=mode == "lxml")
        found["errors"] = output.errors.total()
        for kind, amount in output.leaks.per_kind.items():
            found[f"leak_{kind}_bytes"] = amount.bytes
    elif mode == "etree-full":
        import xml.etree.ElementTree as ElementTree

        root = ElementTree.parse(path).getroot()
        found["errors"] = sum(int(pair.findtext("count") or 0) for pair in root.iterfind("errorcounts/pair"))
        found["error_elements"] = sum(1 for _ in root.iterfind("error"))
    elif mode != "import":
        raise SystemExit(f"unknown mode {mode}")
    found["seconds_x1e6"] = int((time.perf_counter() - started) * 1e6)
    print(json.dumps(found))


def measure(mode: str, path: Path) -> tuple[dict[str, int], int]:
    """Run a worker; return its figures and its peak RSS in bytes."""
    process = subprocess.Popen([sys.executable, __file__, "--worker", mode, str(path)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{mode}: worker failed with status {status}")
    return json.loads(output), usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="megabytes of XML (default 200)")
    parser.add_argument("--no-full", action="store_true", help="skip the whole-tree ElementTree parse")
    parser.add_argument("--keep", type=Path, help="write the XML here and keep it")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(arguments.worker[0], Path(arguments.worker[1]))
        return
    with tempfile.TemporaryDirectory() as temporary:
        path = arguments.keep or Path(temporary) / "memcheck.xml"
        expected = build(path, arguments.size * 10**6)
        size = path.stat().st_size
        print(f"memcheck XML: {size / 1e6:.1f} MB, {expected['errors']:,} error occurrences")
        _, baseline = measure("import", path)
        print(f"{'parser':<12}{'seconds':>9}{'MB/s':>9}{'peak RSS':>12}   (interpreter and imports alone: "
              f"{baseline / 2**20:.1f} MiB)")
        timings: dict[str, float] = {}
        modes = ["lxml", "stdlib"] + ([] if arguments.no_full else ["etree-full"])
        for mode in modes:
            found, peak = measure(mode, path)
            seconds = found.pop("seconds_x1e6") / 1e6
            timings[mode] = seconds
            if mode != "etree-full":
                wrong = {name: (found.get(name), value) for name, value in expected.items() if found.get(name) != value}
                if wrong:
                    raise SystemExit(f"{mode}: wrong figures (found, expected): {wrong}")
            print(f"{mode:<12}{seconds:>9.2f}{size / 1e6 / seconds:>9.1f}{peak / 2**20:>9.1f} MiB")
        if "etree-full" in timings:
            for mode in ("lxml", "stdlib"):
                print(f"{mode} takes {timings[mode] / timings['etree-full']:.2f}x the time of the full parse")


if __name__ == "__main__":
    main()
