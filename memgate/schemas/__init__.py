"""JSON Schemas of memgate's files, generated from the pydantic records and committed beside this
module. Regenerate with ``python -m memgate.schemas``; a test keeps the committed files current."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

FOLDER = Path(__file__).parent


def schemas() -> dict[str, type[BaseModel]]:
    from memgate.baselines.model import Baseline
    from memgate.comparison import ComparedReport

    return {"report.schema.json": ComparedReport, "baseline.schema.json": Baseline}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_all() -> list[Path]:
    written = []
    for name, model in schemas().items():
        path = FOLDER / name
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written
