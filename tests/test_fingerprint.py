"""Function names as a site knows them: the last parameter list goes, the rest of a C++ name stays."""

from __future__ import annotations

import pytest

from memgate.fingerprint import normalise_function

NAMES = {
    "foo(int, char*)": "foo",
    "foo.constprop.0": "foo",
    "main": "main",
    "(below main)": "",  # as it always was: fingerprints of existing baselines stay
    "operator new[](unsigned long)": "operator new[]",
    "(anonymous namespace)::Streamer::operator<<(std::string const&)":
        "(anonymous namespace)::Streamer::operator<<",
    "make_holder(std::string&)::{lambda()#1}::operator()() const":
        "make_holder(std::string&)::{lambda()#1}::operator()",
    "std::vector<int>::push_back(int&&) &&": "std::vector<int>::push_back",
    "Parser::parse(char const*&) const": "Parser::parse",
    "operator&": "operator&",
}


@pytest.mark.parametrize(("name", "normalised"), NAMES.items(), ids=list(NAMES))
def test_only_the_last_parameter_list_goes(name: str, normalised: str) -> None:
    assert normalise_function(name) == normalised
