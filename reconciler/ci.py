"""The CI run a command runs in, from the variables GitHub Actions and GitLab CI set.

Markdown plans and drift reports end with the commit and a link to the run when these are known,
so that a pull-request comment says which commit it describes. Values are checked (a commit is
hex, a link is an http(s) URL without spaces or quotes); anything else is left out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_URL = re.compile(r"^https?://[^\s<>()\"'`\\]+$")


@dataclass(frozen=True)
class CiRun:
    commit: str | None = None
    commit_url: str | None = None
    run_url: str | None = None

    def __bool__(self) -> bool:
        return bool(self.commit or self.run_url)


def _sha(value: str | None) -> str | None:
    return value if value and _SHA.match(value) else None


def _url(value: str | None) -> str | None:
    return value if value and _URL.match(value) else None


def ci_run(env: Mapping[str, str] | None = None) -> CiRun:
    """GitHub Actions (GITHUB_SHA, GITHUB_SERVER_URL/GITHUB_REPOSITORY/GITHUB_RUN_ID), else GitLab
    CI (CI_COMMIT_SHA, CI_JOB_URL, CI_PROJECT_URL), else nothing."""
    env = os.environ if env is None else env
    if env.get("GITHUB_SHA") or env.get("GITHUB_RUN_ID"):
        server = (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
        repo = env.get("GITHUB_REPOSITORY", "")
        sha = _sha(env.get("GITHUB_SHA"))
        run_id = env.get("GITHUB_RUN_ID", "")
        base = f"{server}/{repo}" if repo else None
        return CiRun(
            commit=sha,
            commit_url=_url(f"{base}/commit/{sha}") if base and sha else None,
            run_url=_url(f"{base}/actions/runs/{run_id}") if base and run_id.isdigit() else None,
        )
    if env.get("CI_COMMIT_SHA") or env.get("CI_JOB_URL"):
        sha = _sha(env.get("CI_COMMIT_SHA"))
        project = (env.get("CI_PROJECT_URL") or "").rstrip("/")
        return CiRun(
            commit=sha,
            commit_url=_url(f"{project}/-/commit/{sha}") if project and sha else None,
            run_url=_url(env.get("CI_JOB_URL")),
        )
    return CiRun()
