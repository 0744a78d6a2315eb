"""Regenerate ``github-openapi-slice.json``: GitHub's official OpenAPI description, comment endpoints only.

The source is the npm package that GitHub's Octokit team publishes from github/rest-api-description:

    npm pack @octokit/openapi@23.0.2          # octokit-openapi-23.0.2.tgz, 28.9 MB
    tar xzf octokit-openapi-23.0.2.tgz package/generated/api.github.com.json
    python tests/fakeforge/make_openapi_slice.py package/generated/api.github.com.json \
        tests/fakeforge/github-openapi-slice.json

The slice keeps the named paths and every component they reach through ``$ref`` (transitively), and
drops ``x-webhooks`` (unreferenced, and it breaks some tools). Keep ``PATHS`` in step with what
memgate.forges.github calls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PACKAGE = "@octokit/openapi@23.0.2"
PATHS = (
    "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    "/repos/{owner}/{repo}/issues/comments/{comment_id}",
)


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def resolve(spec: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise SystemExit(f"external $ref not supported: {ref}")
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def slice_spec(spec: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    kept_paths = {path: spec["paths"][path] for path in paths}
    seen: set[str] = set()
    pending = list(refs_in(kept_paths))
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        pending.extend(refs_in(resolve(spec, ref)))
    components: dict[str, dict[str, Any]] = {}
    for ref in sorted(seen):
        _, _, kind, name = ref.split("/", 3)
        components.setdefault(kind, {})[name] = spec["components"][kind][name]
    return {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "x-memgate-slice-of": PACKAGE, "x-memgate-paths": list(paths)},
        "servers": spec["servers"],
        "paths": kept_paths,
        "components": components,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="package/generated/api.github.com.json (npm package)")
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    raw = args.source.read_bytes()
    spec = json.loads(raw)
    sliced = slice_spec(spec, PATHS)
    sliced["info"]["x-memgate-source-sha256"] = hashlib.sha256(raw).hexdigest()
    args.output.write_text(json.dumps(sliced, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    count = sum(len(v) for v in sliced["components"].values())
    size = args.output.stat().st_size
    print(f"{args.output}: {len(sliced['paths'])} paths, {count} components, {size} bytes")


if __name__ == "__main__":
    main()
