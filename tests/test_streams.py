"""memgate's standard streams (``memgate.streams``): a reader that goes away (``| head``) silences
what is left to print, and the program goes on to its end with its own exit code."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Prints far more than a pipe holds, then says it finished (in a file) and exits 3 (a verdict).
WRITER = textwrap.dedent("""
    import sys
    from memgate.streams import readers_may_leave
    with readers_may_leave():
        for number in range(200_000):
            print(f"line {number}")
            print(f"warning {number}", file=sys.stderr)
        open(sys.argv[1], "w").write("finished")
    sys.exit(3)
""")


def test_a_reader_that_leaves_neither_stops_nor_fails_the_program(tmp_path: Path) -> None:
    done = tmp_path / "done"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(done)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    assert writer.stdout is not None and writer.stderr is not None
    assert writer.stdout.readline() == b"line 0\n"
    assert writer.stderr.readline() == b"warning 0\n"
    writer.stdout.close()  # the readers go away, as `head -1` does
    writer.stderr.close()
    assert writer.wait(timeout=120) == 3
    assert done.read_text() == "finished"


def test_without_it_python_dies_of_the_closed_pipe(tmp_path: Path) -> None:
    script = WRITER.replace("with readers_may_leave():", "if True:")
    writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "done")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert writer.stdout is not None
    writer.stdout.readline()
    writer.stdout.close()
    assert writer.wait(timeout=120) != 3
    assert not (tmp_path / "done").exists()
