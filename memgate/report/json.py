"""The JSON files: the report (``records.Report``, schema-versioned) and the comparison."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from memgate.errors import MemgateError
from memgate.files import write_requested_file

if TYPE_CHECKING:  # annotations only: `memgate run` writes its report without the comparison's models
    from memgate.comparison import Comparison
    from memgate.records import Report


def render_report(report: Report) -> str:
    return _dump(report)


def render_comparison(comparison: Comparison) -> str:
    """The comparison, with its outcome (pass, warn, fail or incomplete) for scripts to read."""
    return _dump(comparison)


def _dump(model: BaseModel) -> str:
    try:
        return model.model_dump_json(indent=2) + "\n"
    except PydanticSerializationError as error:
        # Only text that is not Unicode (a parser that kept undecodable bytes) gets here.
        raise MemgateError(f"cannot write the JSON: {error}", hint="report this as a memgate bug") from None


# The report is what ``--json`` writes and what ``memgate compare`` and ``baseline update --from-report``
# read back (``memgate.baselines.files.read_report``), written with ``memgate.files``.
def write_json(path: Path, document: BaseModel | str) -> Path:
    """Write a model (or JSON text already rendered) to ``path`` atomically; parent folders are made."""
    text = document if isinstance(document, str) else _dump(document)
    write_requested_file(path, text, what="the JSON file")
    return path


def write_report(path: Path, report: Report) -> Path:
    return write_json(path, render_report(report))


def write_comparison(path: Path, comparison: Comparison) -> Path:
    return write_json(path, render_comparison(comparison))
