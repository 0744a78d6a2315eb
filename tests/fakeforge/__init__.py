"""A local GitHub/GitLab REST stand-in for the forge client tests (see server.py)."""

from __future__ import annotations

from fakeforge.clock import FakeClock
from fakeforge.env import github_env, gitlab_env, write_event
from fakeforge.server import ACTIONS_BOT, FakeForge, GitHubUser, Logged

__all__ = ["ACTIONS_BOT", "FakeClock", "FakeForge", "GitHubUser", "Logged", "github_env", "gitlab_env",
           "write_event"]
