"""Leak and error sites (``memgate.sites``): a suite's records grouped by kind and fingerprint, sizes
and counts summed, a few readable frames kept without addresses."""

from __future__ import annotations

from memgate.fingerprint import fingerprint, site_of
from memgate.records import Frame, Leak, MemError
from memgate.sites import TOP_FRAMES, group_errors, group_leaks, top_frames

MALLOC = Frame(function="malloc", object="/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so",
               address="0x4848899")
OWN = (Frame(function="make_node", file="list.c", line=12, address="0x109181"),
       Frame(function="main", file="main.c", line=8, address="0x109201"))
STACK = (MALLOC, *OWN)


def leak(kind: str = "definite", size: int = 16, blocks: int = 1) -> Leak:
    return Leak.model_validate({"kind": kind, "bytes": size, "blocks": blocks, "stack": STACK,
                                "fingerprint": fingerprint(f"leak:{kind}", STACK), "site": site_of(STACK)})


def error(count: int, description: str = "") -> MemError:
    return MemError(kind="InvalidRead", description=description, count=count, stack=STACK,
                    fingerprint=fingerprint("error:InvalidRead", STACK), site=site_of(STACK))


def test_leaks_of_one_kind_and_fingerprint_are_one_site_with_summed_sizes() -> None:
    sites = group_leaks([leak(size=16), leak(size=32, blocks=2), leak("indirect", size=8)])
    assert sorted((kind, site.bytes, site.blocks) for (kind, _), site in sites.items()) == [
        ("definite", 48, 3), ("indirect", 8, 1)]
    definite = sites[("definite", fingerprint("leak:definite", STACK))]
    assert definite.site == "make_node < main"


def test_errors_sum_their_occurrences_and_may_leave_descriptions_out() -> None:
    (site,) = group_errors([error(2, "Address 0x1 is 0 bytes after"), error(3)]).values()
    assert (site.kind, site.count, site.description) == ("InvalidRead", 5, "Address 0x1 is 0 bytes after")
    (bare,) = group_errors([error(1, "Address 0x1")], descriptions=False).values()
    assert bare.description is None


def test_top_frames_are_the_projects_without_addresses() -> None:
    frames = top_frames(STACK)
    assert [frame.function for frame in frames] == ["make_node", "main"]
    assert all(frame.address is None for frame in frames)
    assert len(top_frames(OWN * TOP_FRAMES)) == TOP_FRAMES
    assert top_frames((MALLOC,))[0].function == "malloc"  # nothing of the project's: what there is
