"""Which test a finding (or, under heaptrack, an allocation) belongs to: the GoogleTest rule of issue 13.

A leak or memory error whose stack holds a GoogleTest ``TestBody`` frame belongs to that test. The
innermost such frame wins (a test body that calls a helper test's body is rare, but the nearer test
is the one that ran the code). GoogleTest names a test's class by macros (gtest 1.8 to 1.15):

- ``TEST``, ``TEST_F``, ``TEST_P`` and ``TYPED_TEST``: ``<Suite>_<Name>_Test`` (a class template for a
  typed test, so the frame reads ``Typed_Reads_Test<int>::TestBody()``), in the namespace the test
  was written in;
- ``TYPED_TEST_P``: ``gtest_suite_<Suite>_::<Name><T>`` (``gtest_case_`` before gtest 1.10).

The name memgate gives is ``Suite.Name`` in every case, which is what a frame can tell:

- a parameterised test ``Inst/Suite.Name/3`` and a typed one ``Typed/1.Name`` are one test,
  ``Suite.Name``, whatever their instance or type: one class runs them all, so the stack does not
  say which instance it was (the site's frames still do, for a typed test);
- ``<Suite>_<Name>`` is split at its first underscore. GoogleTest joins the two with ``_`` and asks
  for names without one; when a suite name has one anyway (``TEST(my_suite, Reads)``), the split is
  ambiguous. Where memgate can run the test binary (``memgate.runner.process_tests``), its
  ``--gtest_list_tests`` decides (``listed_test_name``); otherwise the split at the first underscore
  stands: ``my.suite_Reads``, the same name on every run, so the figures still compare, but a wrong
  one. A test name may have any number (``TEST(Parser, reads_empty_input)`` is
  ``Parser.reads_empty_input`` either way).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from memgate.fingerprint import normalise_function
from memgate.records import Frame, ProcessRecord

#: What a function name must hold to be looked at further: every stack is searched for it.
TEST_BODY = "TestBody"

# After normalise_function (no parameter list): an optional namespace, the class (a template
# instance for typed tests), then ::TestBody.
_TEST_BODY_FUNCTION = re.compile(
    r"(?:^|::)(?:gtest_(?:suite|case)_(?P<typed_suite>\w+?)_::(?P<typed_name>\w+)"
    r"|(?P<joined>[A-Za-z0-9]\w*?_\w+?)_Test)(?:<.*>)?::TestBody$"
)


@functools.lru_cache(maxsize=4096)
def gtest_test_name(function: str) -> str | None:
    """``Suite.Name`` for a GoogleTest ``TestBody`` function name as a tool demangled it
    (``Parser_Empty_Test::TestBody()``); None for any other function."""
    if TEST_BODY not in function:
        return None
    match = _TEST_BODY_FUNCTION.search(normalise_function(function))
    if match is None:
        return None
    if match["typed_suite"]:
        return f"{match['typed_suite']}.{match['typed_name']}"
    suite, _, name = match["joined"].partition("_")
    return f"{suite}.{name}"


def ambiguous_class(test: str) -> str | None:
    """The class name ``<Suite>_<Name>`` a test name was made from, when it holds more than one
    underscore, so that the split at the first one may be wrong; None otherwise."""
    suite, dot, name = test.partition(".")
    joined = f"{suite}_{name}"
    return joined if dot and joined.count("_") > 1 else None


# ``--gtest_list_tests`` prints each suite ("Inst/Suite.", "Typed/0.  # TypeParam = int"), then its
# tests indented by two spaces ("  Name/0  # GetParam() = 1").
_LISTED_SUITE = re.compile(r"(\S+)\.(?:\s+#.*)?")
_LISTED_TEST = re.compile(r"  ([^\s/]+)\S*(?:\s+#.*)?")


def listed_classes(listing: str) -> dict[str, set[str]]:
    """``<Suite>_<Name>`` -> the ``Suite.Name`` tests it can be, from ``--gtest_list_tests``'s output.
    A listed suite "A/B/0" may be a parameterised suite B instantiated as A, a typed suite A of type 0
    or B typed: each part is taken as the suite (the class name decides which one fits)."""
    classes: dict[str, set[str]] = {}
    suites: list[str] = []
    for line in listing.splitlines():
        test = _LISTED_TEST.fullmatch(line)
        if test is not None:
            for suite in suites:
                classes.setdefault(f"{suite}_{test[1]}", set()).add(f"{suite}.{test[1]}")
            continue
        listed = _LISTED_SUITE.fullmatch(line)
        suites = listed[1].split("/") if listed is not None else []
    return classes


def listed_test_name(test: str, classes: dict[str, set[str]]) -> str:
    """``test``, or the test the binary's list (``listed_classes``) has for its class when the name
    is ambiguous (``ambiguous_class``) and the list has exactly one."""
    joined = ambiguous_class(test)
    tests = classes.get(joined, set()) if joined is not None else set()
    return next(iter(tests)) if len(tests) == 1 else test


def gtest_of_functions(functions: Iterable[str | None]) -> str | None:
    """The test of the innermost ``TestBody`` frame among a stack's function names (innermost
    first, as the tools print them); None when the stack holds none."""
    for function in functions:
        if function and TEST_BODY in function:
            name = gtest_test_name(function)
            if name is not None:
                return name
    return None


def gtest_of_stack(stack: Iterable[Frame]) -> str | None:
    """``gtest_of_functions`` of a stack of frames."""
    return gtest_of_functions(frame.function for frame in stack)


def with_process_test(process: ProcessRecord, test: str | None) -> ProcessRecord:
    """``process`` as run for ``test`` (``ProcessRecord.test``): its leaks and errors without a
    GoogleTest frame of their own belong to that test too."""
    if test is None:
        return process
    return process.model_copy(update={
        "test": test,
        "leaks": tuple(leak if leak.test else leak.model_copy(update={"test": test})
                       for leak in process.leaks),
        "errors": tuple(error if error.test else error.model_copy(update={"test": test})
                        for error in process.errors),
    })
