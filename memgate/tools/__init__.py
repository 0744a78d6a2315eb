"""The registry of memory tools, by name, and the other spellings of those names. Modules load lazily
so that ``memgate --version`` stays fast."""

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
    "memcheck": "memgate.tools.memcheck:MEMCHECK",
    "dhat": "memgate.tools.dhat:DHAT",
    "massif": "memgate.tools.massif:MASSIF",
    "memusage": "memgate.tools.memusage:MEMUSAGE",
    "heaptrack": "memgate.tools.heaptrack:HEAPTRACK",
    "rusage": "memgate.tools.rusage:RUSAGE",
    "go": "memgate.tools.go:GO",
}
# Other names a user may write for a tool -> its name. memcheck was called "valgrind" until massif
# and DHAT (Valgrind tools too) joined it: configs, command lines, baselines and reports written
# then still say so.
_ALIASES: dict[str, str] = {"valgrind": "memcheck"}

TOOL_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def canonical_tool_name(name: str) -> str:
    """The registry's name for ``name``, which may be another accepted spelling (``valgrind`` is
    ``memcheck``); any other name comes back unchanged, for its reader to refuse or keep."""
    return _ALIASES.get(name, name)


def get_tool(name: str) -> Tool:
    try:
        target = _REGISTRY[canonical_tool_name(name)]
    except KeyError:
        raise UsageError(
            f"unknown tool {name!r}", hint=f"choose one of: {', '.join(TOOL_NAMES)}"
        ) from None
    module_name, attribute = target.split(":")
    tool: Tool = getattr(importlib.import_module(module_name), attribute)
    return tool
