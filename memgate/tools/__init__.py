"""The registry of memory tools. Modules load lazily so that ``memgate --version`` stays fast."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from memgate.errors import UsageError

if TYPE_CHECKING:  # the registry itself stays import-light for a fast CLI start
    from memgate.tools.base import Tool

# tool name -> "module:attribute" of the object implementing ``Tool``
_REGISTRY: dict[str, str] = {
    "asan": "memgate.tools.asan:ASAN",
    "lsan": "memgate.tools.asan:LSAN",
    "valgrind": "memgate.tools.valgrind:MEMCHECK",
    "dhat": "memgate.tools.dhat:DHAT",
    "massif": "memgate.tools.massif:MASSIF",
    "memusage": "memgate.tools.memusage:MEMUSAGE",
    "heaptrack": "memgate.tools.heaptrack:HEAPTRACK",
    "rusage": "memgate.tools.rusage:RUSAGE",
}

TOOL_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get_tool(name: str) -> Tool:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"unknown tool {name!r}", hint=f"choose one of: {', '.join(TOOL_NAMES)}"
        ) from None
    module_name, attribute = target.split(":")
    tool: Tool = getattr(importlib.import_module(module_name), attribute)
    return tool
