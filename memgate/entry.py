"""The ``memgate`` command's entry point: ``memgate --version`` answers before the command-line interface
and what it imports are loaded."""

from __future__ import annotations

import sys

from memgate import __version__


# A CI step that prints the version thus costs the interpreter's start-up and nothing more (bench/run.py,
# start-up rows).
def main() -> int:
    if sys.argv[1:] == ["--version"]:
        print(f"memgate {__version__}")  # what argparse's version action prints
        return 0
    from memgate.cli import main as cli_main

    return cli_main()
