"""The reconciler GitHub Action after the install step: run one command, then report it where
the team looks (one pull-request comment per target for plans, one open issue per target for
drift).

Standard library only: it runs with the Python of the venv the action installed the tool into,
and talks to GitHub's REST API directly, so nothing else has to be on the runner.
Inputs arrive as ``INPUT_*`` environment variables (action.yml maps them); see docs/gitops.md.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMMANDS = ("plan", "apply", "drift", "validate")
FORMATS = ("text", "markdown", "json")
DRIFT_LABEL = "reconciler-drift"
# GitHub refuses a comment or issue body above 65,536 characters.
MAX_BODY = 65_536
MAX_PAGES = 50  # 5,000 comments or issues: far more than any pull request or label has
TIMEOUT_S = 30


class ActionError(Exception):
    """An input or a GitHub answer the action cannot work with; printed as a workflow error."""


@dataclass(frozen=True)
class Inputs:
    command: str
    paths: list[str]
    target: str
    format: str
    comment: bool
    args: list[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Inputs:
        def get(name: str, default: str = "") -> str:
            return env.get(f"INPUT_{name.upper()}", default).strip()

        command = get("command")
        if command not in COMMANDS:
            allowed = ", ".join(COMMANDS)
            raise ActionError(f"input 'command' must be one of {allowed}, not {command!r}")
        fmt = get("format", "markdown") or "markdown"
        if fmt not in FORMATS:
            raise ActionError(f"input 'format' must be one of {', '.join(FORMATS)}, not {fmt!r}")
        comment_text = (get("comment", "true") or "true").lower()
        if comment_text not in ("true", "false"):
            raise ActionError(f"input 'comment' must be true or false, not {comment_text!r}")
        comment = comment_text == "true" and command in ("plan", "drift")
        if comment and fmt != "markdown":
            raise ActionError(
                f"input 'comment' needs format 'markdown' ({command} reports are posted as "
                "Markdown); set comment: false to keep a text or JSON report"
            )
        return cls(
            command=command,
            paths=shlex.split(get("paths", "manifests")) or ["manifests"],
            target=get("target"),
            format=fmt,
            comment=comment,
            args=shlex.split(get("args")),
        )


def command_line(inputs: Inputs, executable: str) -> list[str]:
    """The reconciler command the inputs ask for (global options before the subcommand)."""
    argv = [executable]
    if inputs.target:
        argv += ["--target", inputs.target]
    argv += [inputs.command, *inputs.paths]
    if inputs.command in ("plan", "drift"):
        argv += ["--format", inputs.format]
    if inputs.command == "apply" and "--auto-approve" not in inputs.args:
        argv.append("--auto-approve")  # no terminal on a runner: apply would refuse to ask
    return argv + inputs.args


def marker(kind: str, target: str) -> str:
    """The hidden first line that identifies this target's plan comment or drift issue.

    The same form as the marker a Markdown plan starts with (``<!-- reconciler:plan
    target=... -->``); when the report already starts with this very line it is not repeated.
    """
    value = re.sub(r"[^A-Za-z0-9._,-]", lambda m: f"%{ord(m[0]):02X}", target or "default")
    return f"<!-- reconciler:{kind} target={value} -->"


def with_marker(line: str, report: str) -> str:
    body = report.lstrip()
    return body if body.startswith(line) else f"{line}\n{body}"


def first_line(body: str | None) -> str:
    return (body or "").lstrip().split("\n", 1)[0].strip()


def fence(text: str) -> str:
    """``text`` in a code fence that nothing inside it can close."""
    longest = max((len(run) for run in text.split("\n") if set(run) == {"`"}), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}\n{text.rstrip()}\n{ticks}"


def failure_report(command: str, code: int, stderr: str) -> str:
    shown = stderr.strip() or "(no output)"
    room = MAX_BODY - 2_000
    if len(shown) > room:
        shown = "...\n" + shown[-room:]
    return f"## reconciler {command} failed (exit {code})\n\n{fence(shown)}\n"


def fit_body(body: str) -> str:
    if len(body) <= MAX_BODY:
        return body
    note = "\n\n*(cut to GitHub's size limit; the workflow run has the whole report)*\n"
    return body[: MAX_BODY - len(note)] + note


class GitHub:
    """The few REST calls the action makes, with the job's token."""

    def __init__(self, api_url: str, repository: str, token: str) -> None:
        if not token:
            raise ActionError("input 'github-token' is empty: it is needed to comment")
        self.base = f"{api_url.rstrip('/')}/repos/{repository}"
        self.token = token

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "User-Agent": "reconciler-action",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(2_000).decode("utf-8", "replace")
            raise ActionError(f"GitHub answered {exc.code} to {method} {path}: {detail}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise ActionError(f"GitHub API unreachable ({method} {path}): {exc}") from None
        return json.loads(raw) if raw else None

    def pages(self, path: str, query: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        for page in range(1, MAX_PAGES + 1):
            params = urllib.parse.urlencode({**(query or {}), "per_page": "100", "page": page})
            batch = self.call("GET", f"{path}?{params}")
            if not isinstance(batch, list):
                raise ActionError(f"GitHub answered GET {path} with something other than a list")
            yield from batch
            if len(batch) < 100:
                return

    def upsert_comment(self, number: int, line: str, body: str) -> str:
        """Update this target's plan comment on the pull request, or add it; "updated"/"added"."""
        for comment in self.pages(f"/issues/{number}/comments"):
            if first_line(comment.get("body")) == line:
                self.call("PATCH", f"/issues/comments/{comment['id']}", {"body": body})
                return "updated"
        self.call("POST", f"/issues/{number}/comments", {"body": body})
        return "added"

    def open_drift_issue(self, line: str) -> dict[str, Any] | None:
        query = {"labels": DRIFT_LABEL, "state": "open"}
        for issue in self.pages("/issues", query):
            if "pull_request" not in issue and first_line(issue.get("body")) == line:
                return issue
        return None

    def ensure_label(self) -> None:
        try:
            self.call("GET", f"/labels/{DRIFT_LABEL}")
        except ActionError as exc:
            if " 404 " not in str(exc):
                raise
            label = {
                "name": DRIFT_LABEL,
                "color": "d93f0b",
                "description": "Live MetaStudio assets differ from the manifests",
            }
            self.call("POST", "/labels", label)


def pull_request_number(env: Mapping[str, str]) -> int | None:
    path = env.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return None
    event = json.loads(Path(path).read_text(encoding="utf-8"))
    number = (event.get("pull_request") or {}).get("number")
    return number if isinstance(number, int) else None


def set_output(env: Mapping[str, str], **values: str) -> None:
    path = env.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            for name, value in values.items():
                out.write(f"{name}={value}\n")


def append_summary(env: Mapping[str, str], text: str) -> None:
    path = env.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(text.rstrip() + "\n")


def notice(text: str) -> None:
    print(f"::notice::{text}", flush=True)


def run_reported(argv: Sequence[str], report: Path) -> tuple[int, str]:
    """Run a reporting command with stdout into ``report``; stderr is shown and kept."""
    print("$ " + shlex.join(["reconciler", *argv[1:]]), flush=True)
    with report.open("w", encoding="utf-8") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, text=True, check=False)
    sys.stderr.write(done.stderr)
    return done.returncode, done.stderr


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        return _main(env)
    except ActionError as exc:
        print(f"::error::{exc}", flush=True)
        return 1


def _main(env: Mapping[str, str]) -> int:
    inputs = Inputs.from_env(env)
    executable = str(Path(sys.executable).with_name("reconciler"))
    argv = command_line(inputs, executable)
    if inputs.command in ("apply", "validate"):
        print("$ " + shlex.join(["reconciler", *argv[1:]]), flush=True)
        code = subprocess.run(argv, check=False).returncode
        set_output(env, **{"exit-code": str(code)})
        return code

    suffix = {"markdown": "md", "json": "json", "text": "txt"}[inputs.format]
    workspace = Path(env.get("RUNNER_TEMP") or ".")
    report = workspace / f"reconciler-{inputs.command}-{inputs.target or 'default'}.{suffix}"
    code, stderr = run_reported(argv, report)
    set_output(env, **{"exit-code": str(code), "report": str(report)})
    detailed = "--detailed-exitcode" in inputs.args
    ok = code == 0 or (code == 2 and (inputs.command == "drift" or detailed))
    text = report.read_text(encoding="utf-8")
    if inputs.format == "markdown":
        append_summary(env, text if ok else failure_report(inputs.command, code, stderr))
    if not inputs.comment:
        return 0 if ok else code or 1

    github = GitHub(
        env.get("GITHUB_API_URL", "https://api.github.com"),
        env.get("GITHUB_REPOSITORY", ""),
        env.get("INPUT_GITHUB_TOKEN", ""),
    )
    if inputs.command == "plan":
        number = pull_request_number(env)
        line = marker("plan", inputs.target)
        if number is None:
            notice("not a pull_request event: the plan is in the job summary, not commented")
        else:
            body = text if ok else failure_report("plan", code, stderr)
            done = github.upsert_comment(number, line, fit_body(with_marker(line, body)))
            notice(f"plan comment {done} on pull request #{number}")
        return 0 if ok else code or 1

    # drift: 0 in sync, 2 drift, anything else is a failed run and leaves the issue alone.
    if not ok:
        return code or 1
    line = marker("drift", inputs.target)
    issue = github.open_drift_issue(line)
    if code == 2:
        body = fit_body(with_marker(line, text))
        if issue is not None:
            github.call("PATCH", f"/issues/{issue['number']}", {"body": body})
            notice(f"drift issue #{issue['number']} updated")
        else:
            github.ensure_label()
            title = "Drift: live MetaStudio assets differ from the manifests"
            if inputs.target:
                title += f" (target {inputs.target})"
            created = github.call(
                "POST", "/issues", {"title": title, "body": body, "labels": [DRIFT_LABEL]}
            )
            notice(f"drift issue #{created['number']} opened")
    elif issue is not None:
        github.call(
            "POST",
            f"/issues/{issue['number']}/comments",
            {"body": "Live assets match the manifests again."},
        )
        github.call("PATCH", f"/issues/{issue['number']}", {"state": "closed"})
        notice(f"drift issue #{issue['number']} closed: live assets match the manifests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
