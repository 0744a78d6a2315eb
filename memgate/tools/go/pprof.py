"""Go heap profiles (``go test -memprofile``, pprof's ``profile.proto``, gzipped) read into heap sites:
the allocation stacks with the bytes and objects they allocated. A small reader of the protobuf wire
format: the handful of fields a heap profile needs, nothing generated."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from memgate.errors import ToolError
from memgate.fingerprint import NO_WRAPPERS, AllocWrappers
from memgate.records import Frame, HeapSite
from memgate.tools._heapsites import HeapStack, heap_sites
from memgate.units import format_bytes

#: A profile larger than this once decompressed is refused: a real test binary's heap profile is a few
#: MB, and a crafted gzip must not take the job's memory.
MAX_PROFILE_BYTES = 256 * 1024 * 1024

# Field numbers of profile.proto (github.com/google/pprof/proto/profile.proto).
_PROFILE_SAMPLE_TYPE, _PROFILE_SAMPLE, _PROFILE_LOCATION, _PROFILE_FUNCTION, _PROFILE_STRINGS = 1, 2, 4, 5, 6
_VALUE_TYPE_TYPE = 1
_SAMPLE_LOCATIONS, _SAMPLE_VALUES = 1, 2
_LOCATION_ID, _LOCATION_LINE = 1, 4
_LINE_FUNCTION, _LINE_LINE = 1, 2
_FUNCTION_ID, _FUNCTION_NAME, _FUNCTION_FILE = 1, 2, 4

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class ProfileFormatError(ValueError):
    """The bytes are not a pprof profile as this reader knows it."""


@dataclass
class _Sample:
    locations: list[int]
    values: list[int]


@dataclass
class _Profile:
    sample_types: list[int] = field(default_factory=list)  # string-table indexes
    samples: list[_Sample] = field(default_factory=list)
    locations: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # id -> [(function, line)]
    functions: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (name, file) indexes
    strings: list[str] = field(default_factory=list)


def heap_sites_from_profile(path: Path, wrappers: AllocWrappers = NO_WRAPPERS, *,
                            benchmarks_only: bool = False) -> tuple[HeapSite, ...]:
    """The allocation stacks of a Go heap profile that allocated most (``bytes``: alloc_space,
    ``blocks``: alloc_objects), fingerprinted like every heap site. With ``-memprofilerate=1`` every
    allocation is recorded and the figures are exact; with Go's default rate they are estimates.
    ``benchmarks_only``: only the stacks that pass through a benchmark function (the runtime's and the
    test harness's own allocations vary from run to run and are no benchmark's)."""
    try:
        profile = _decode(_profile_bytes(path.read_bytes()))
        return heap_sites(_stacks(profile, benchmarks_only), wrappers)
    except OSError as error:
        raise ToolError(f"cannot read the Go heap profile {path}: {error.strerror or error}",
                        hint="check that go test wrote it (-memprofile) and that it is readable") from error
    except ProfileFormatError as error:
        raise ToolError(f"{path} is not a Go heap profile: {error}",
                        hint="give the file go test -memprofile wrote, unchanged") from error


def _profile_bytes(data: bytes) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data  # pprof also reads an uncompressed profile
    unpacker = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a gzip member
    try:
        unpacked = unpacker.decompress(data, MAX_PROFILE_BYTES + 1)
    except zlib.error as error:
        raise ProfileFormatError(f"its gzip data is damaged ({error})") from error
    if len(unpacked) > MAX_PROFILE_BYTES:
        raise ProfileFormatError(f"it unpacks to more than {format_bytes(MAX_PROFILE_BYTES)}")
    if not unpacker.eof:
        raise ProfileFormatError("its gzip data is truncated")
    return unpacked


def _stacks(profile: _Profile, benchmarks_only: bool) -> Iterator[HeapStack]:
    objects, space = _value_index(profile, "alloc_objects"), _value_index(profile, "alloc_space")
    for sample in profile.samples:
        if len(sample.values) <= max(objects, space):
            raise ProfileFormatError("a sample has fewer values than the profile's sample types")
        if sample.values[space] == 0 and sample.values[objects] == 0:
            continue
        stack = tuple(_frames(profile, sample.locations))
        if benchmarks_only and not _made_by_a_benchmark(stack):
            continue
        yield HeapStack(frames=stack, bytes=sample.values[space], blocks=sample.values[objects],
                        peak_bytes=None)


def _made_by_a_benchmark(stack: tuple[Frame, ...]) -> bool:
    """A benchmark function (``example.com/m.BenchmarkX`` or a closure of it) is on the stack, and no
    frame of the testing package between it and the allocation: what the harness allocates for a
    benchmark (``b.Run`` matching names, ``b.ReportAllocs``) is not the benchmark's."""
    for frame in stack:
        name = frame.function or ""
        if name.startswith("testing."):
            return False
        if ".Benchmark" in name:
            return True
    return False


def _value_index(profile: _Profile, name: str) -> int:
    names = [_string(profile, index) for index in profile.sample_types]
    if name not in names:
        raise ProfileFormatError(f"it has no {name} values (sample types: {', '.join(names) or 'none'}): "
                                 "is it a CPU profile?")
    return names.index(name)


def _frames(profile: _Profile, location_ids: list[int]) -> Iterator[Frame]:
    """Leaf first; a location's inlined calls come innermost first, as pprof lists them."""
    for location_id in location_ids:
        for function_id, line in profile.locations.get(location_id, ()):
            name, file = profile.functions.get(function_id, (0, 0))
            yield Frame(function=_string(profile, name) or None, file=_string(profile, file) or None,
                        line=line or None)


def _string(profile: _Profile, index: int) -> str:
    if not 0 <= index < len(profile.strings):
        raise ProfileFormatError(f"a string index ({index}) is past the string table")
    return profile.strings[index]


def _decode(data: bytes) -> _Profile:
    profile = _Profile()
    for number, value in _fields(data):
        if number == _PROFILE_SAMPLE_TYPE:
            profile.sample_types.append(_numbers(_message(value)).get(_VALUE_TYPE_TYPE, 0))
        elif number == _PROFILE_SAMPLE:
            profile.samples.append(_sample(_message(value)))
        elif number == _PROFILE_LOCATION:
            location_id, lines = _location(_message(value))
            profile.locations[location_id] = lines
        elif number == _PROFILE_FUNCTION:
            function = _numbers(_message(value))
            profile.functions[function.get(_FUNCTION_ID, 0)] = (
                function.get(_FUNCTION_NAME, 0), function.get(_FUNCTION_FILE, 0))
        elif number == _PROFILE_STRINGS:
            profile.strings.append(_message(value).decode("utf-8", "replace"))
    if not profile.strings or profile.strings[0] != "":
        raise ProfileFormatError("its string table does not start with the empty string")
    return profile


def _sample(data: bytes) -> _Sample:
    sample = _Sample(locations=[], values=[])
    for number, value in _fields(data):
        if number == _SAMPLE_LOCATIONS:
            sample.locations.extend(_ints(value))
        elif number == _SAMPLE_VALUES:
            sample.values.extend(_signed(item) for item in _ints(value))
    return sample


def _location(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    location_id, lines = 0, []
    for number, value in _fields(data):
        if number == _LOCATION_ID:
            location_id = _int(value)
        elif number == _LOCATION_LINE:
            line = _numbers(_message(value))
            lines.append((line.get(_LINE_FUNCTION, 0), _signed(line.get(_LINE_LINE, 0))))
    return location_id, lines


def _numbers(data: bytes) -> dict[int, int]:
    """The number fields of a small message (a Function, a Line, a ValueType), read in one pass: field
    number -> its first value; a missing field is 0, as protobuf's default."""
    numbers: dict[int, int] = {}
    for number, value in _fields(data):
        numbers.setdefault(number, _int(value))
    return numbers


def _int(value: int | bytes) -> int:
    if isinstance(value, bytes):
        raise ProfileFormatError("a number field holds bytes")
    return value


def _message(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ProfileFormatError("a message field holds a number")
    return value


def _ints(value: int | bytes) -> Iterator[int]:
    """A repeated integer field: one varint, or a packed run of them."""
    if isinstance(value, int):
        yield value
        return
    position = 0
    while position < len(value):
        number, position = _varint(value, position)
        yield number


def _signed(value: int) -> int:
    """int64 fields are written as two's complement varints."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field of one message: varints and fixed-width numbers as ints,
    length-delimited fields as bytes."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, position = _varint(data, position)
            yield number, value
        elif wire_type == _BYTES:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise ProfileFormatError("it is truncated (a field runs past its end)")
            yield number, data[position:position + length]
            position += length
        elif wire_type in (_FIXED64, _FIXED32):
            width = 8 if wire_type == _FIXED64 else 4
            if position + width > len(data):
                raise ProfileFormatError("it is truncated (a field runs past its end)")
            yield number, int.from_bytes(data[position:position + width], "little")
            position += width
        else:
            raise ProfileFormatError(f"it holds a field of unknown wire type {wire_type}")


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ProfileFormatError("it is truncated (a number runs past its end)")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ProfileFormatError("a number is longer than 10 bytes")
