"""Stable identity of a leak or error site: normalised function names of the first frames in the
project's own code."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from memgate.records import Frame

FRAMES_IN_FINGERPRINT = 3

# Allocators, sanitizer interceptors and runtime start-up frames: never the project's code. (No
# capturing group: each alternative then starts with a literal, which the engine tests at a glance.)
_RUNTIME_FUNCTION = re.compile(
    r"""^(?:
        (?:__interceptor_|__asan_|__lsan_|__sanitizer_|___interceptor_|__interceptor_trampoline_).*
      | (?:malloc|calloc|realloc|free|reallocarray|memalign|aligned_alloc|posix_memalign|valloc|pvalloc
         |strdup|strndup|cfree|_Znwm|_Znam|_ZdlPv|_ZdaPv|_start|__libc_start_main|__libc_start_call_main
         |__libc_start_main_impl|start_thread|clone|clone3)
      | operator\ (?:new|delete)(?:\[\])?(?:\(.*\))?
      | std::__throw_.* | __throw_.*
    )$""",
    re.VERBOSE,
)
# libc and the dynamic loader too: an allocation inside fopen() or strdup() belongs to its caller.
_RUNTIME_OBJECT = re.compile(
    r"(vgpreload_|/libasan\.so|/liblsan\.so|/libclang_rt\.|/valgrind/|/libc\.so|/ld-linux[^/]*\.so)"
)
_QUALIFIERS = re.compile(r"(?:\s*(?:const|volatile|&&|&))*\s*$")
_QUALIFIER_ENDS = ("const", "volatile", "&")  # how a name that _QUALIFIERS shortens ends (once stripped)
_CLONE_SUFFIX = re.compile(r"\.(constprop|isra|part|cold|lto_priv)(\.\d+)*$")


@dataclass(frozen=True)
class AllocWrappers:
    """The project's own allocators (``alloc_wrappers``: function-name globs such as ``x*alloc``):
    their frames are skipped like ``malloc``'s, so that two leaks through one wrapper are two sites,
    named and located by their callers. Globs match the function name without its parameters or
    clone suffix (``pool_alloc(unsigned long)`` is ``pool_alloc``), case-sensitively."""

    globs: tuple[str, ...] = ()
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.globs:
            pattern = re.compile("|".join(f"(?:{fnmatch.translate(glob)})" for glob in self.globs))
            object.__setattr__(self, "_pattern", pattern)

    @classmethod
    def of(cls, globs: Iterable[str]) -> AllocWrappers:
        """Sorted and without repeats: the same list however it was written, so that baselines made
        with it compare equal."""
        return cls(tuple(sorted(set(globs))))

    def wraps(self, function: str) -> bool:
        return self._pattern is not None and self._pattern.match(normalise_function(function)) is not None


NO_WRAPPERS = AllocWrappers()


def is_runtime_frame(frame: Frame, wrappers: AllocWrappers = NO_WRAPPERS) -> bool:
    """A frame that is not where the project allocated: the allocator, the sanitizer, libc, start-up
    code, or one of the project's ``wrappers``."""
    if frame.object and _RUNTIME_OBJECT.search(frame.object):
        return True
    if not frame.function:
        return False
    return bool(_RUNTIME_FUNCTION.match(frame.function.strip())) or wrappers.wraps(frame.function)


def normalise_function(name: str) -> str:
    """``foo(int, char*)`` and ``foo.constprop.0`` are both ``foo``. Only the last parameter list
    goes: C++ names hold parentheses before it ("(anonymous namespace)::Parser::operator<<(int)",
    "run()::{lambda()#1}::operator()() const"), which are part of the name."""
    return _CLONE_SUFFIX.sub("", _without_parameters(name.strip()))


def _without_parameters(name: str) -> str:
    """``name`` (stripped) without its last parameter list and the qualifiers after it."""
    if name.endswith(")"):
        end = len(name)
    elif name.endswith(_QUALIFIER_ENDS):
        end = len(_QUALIFIERS.sub("", name))
    else:  # most names: no parameters, nothing to search
        return name
    if end == 0 or name[end - 1] != ")":
        return name
    depth = 0
    for index in range(end - 1, -1, -1):
        char = name[index]
        if char == ")":
            depth += 1
        elif char == "(":
            depth -= 1
            if depth == 0:
                return name[:index].rstrip()  # "(below main)" gives "", as it always has
    return name


def frame_key(frame: Frame) -> str:
    if frame.function:
        return normalise_function(frame.function)
    if frame.file:
        return f"{frame.file.rsplit('/', 1)[-1]}:{frame.line or '?'}"
    if frame.object:
        # Unsymbolised: the object and offset are the best identity there is.
        return f"{frame.object.rsplit('/', 1)[-1]}+{frame.address or '?'}"
    return frame.address or "??"


def site_frames(stack: Sequence[Frame], wrappers: AllocWrappers = NO_WRAPPERS) -> list[Frame]:
    """The first frames of the project's own code (the first frames if none look like the project's)."""
    own: list[Frame] = []
    for frame in stack:
        if not is_runtime_frame(frame, wrappers):
            own.append(frame)
            if len(own) == FRAMES_IN_FINGERPRINT:
                break
    return own or list(stack[:FRAMES_IN_FINGERPRINT])


def site_of(stack: Sequence[Frame], wrappers: AllocWrappers = NO_WRAPPERS) -> str:
    frames = site_frames(stack, wrappers)
    return " < ".join(frame_key(frame) for frame in frames) if frames else "(no stack)"


def site_of_known(frames: Iterable[tuple[bool, str]]) -> str:
    """``site_of`` from each frame's (``is_runtime_frame``, ``frame_key``), which a parser works out
    once per distinct frame; ``frames`` is read only as far as the site needs."""
    own: list[str] = []
    first: list[str] = []
    for runtime, key in frames:
        if len(first) < FRAMES_IN_FINGERPRINT:
            first.append(key)
        if not runtime:
            own.append(key)
            if len(own) == FRAMES_IN_FINGERPRINT:
                break
    chosen = own or first
    return " < ".join(chosen) if chosen else "(no stack)"


# Addresses and line numbers are left out so that unrelated edits do not turn a known leak into a "new" one.
def fingerprint(category: str, stack: Sequence[Frame], site: str | None = None,
                wrappers: AllocWrappers = NO_WRAPPERS) -> str:
    """``category`` is the leak kind ("leak:definite") or error kind ("error:InvalidRead"); pass
    ``site`` when ``site_of(stack, wrappers)`` is already known, to save computing it again."""
    site = site_of(stack, wrappers) if site is None else site
    # surrogateescape: a name with undecodable bytes still hashes to the same value every run
    digest = hashlib.sha256(f"{category}|{site}".encode("utf-8", "surrogateescape")).hexdigest()
    return digest[:16]
