"""``python -m memgate.schemas``: regenerate the committed JSON schemas (memgate/schemas/*.json)."""

from memgate.schemas import write_all

for path in write_all():
    print(f"wrote {path}")
