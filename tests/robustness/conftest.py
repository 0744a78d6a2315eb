"""The real repositories of the baselines' tests (a bare remote and its clones), for the checks of
``baseline update --commit`` in the CI checkouts of test_bad_files.py."""

from tests.baselines.conftest import isolated_git, remote

__all__ = ["isolated_git", "remote"]
