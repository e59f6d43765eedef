"""Local stand-ins for the parts of GitHub's and GitLab's REST APIs the example pipelines call.

Real HTTP servers on 127.0.0.1 (``http.server``), keeping comments, notes and issues in memory,
so the pipelines' own scripts can be run unchanged with ``GITHUB_API_URL`` or ``CI_API_V4_URL``
pointed here. Requests without the expected token are refused as the real services refuse them.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "forge-token"
GITHUB_MAX_BODY = 65_536


@dataclass
class Forge:
    """What the pipelines left behind: comments (GitHub) or notes (GitLab), issues, labels."""

    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    next_id: int = 1000
    base_url: str = ""

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    per_page = min(int(query.get("per_page", ["30"])[0]), 100)
    page = int(query.get("page", ["1"])[0])
    return items[(page - 1) * per_page : page * per_page]


class _Handler(BaseHTTPRequestHandler):
    forge: Forge
    kind: str  # "github" or "gitlab"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if not raw:
            return {}
        if self.kind == "github":
            loaded: dict[str, Any] = json.loads(raw)
            return loaded
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

    def _authorised(self) -> bool:
        if self.kind == "github":
            return self.headers.get("Authorization") == f"Bearer {TOKEN}"
        return self.headers.get("PRIVATE-TOKEN") == TOKEN

    def _handle(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        self.forge.calls.append(f"{method} {url.path}")
        if not self._authorised():
            self._answer(401, {"message": "Bad credentials"})
            return
        body = self._body() if method in ("POST", "PUT", "PATCH") else {}
        handler = self._github if self.kind == "github" else self._gitlab
        status, answer = handler(method, url.path, query, body)
        self._answer(status, answer)

    do_GET = lambda self: self._handle("GET")  # noqa: E731
    do_POST = lambda self: self._handle("POST")  # noqa: E731
    do_PUT = lambda self: self._handle("PUT")  # noqa: E731
    do_PATCH = lambda self: self._handle("PATCH")  # noqa: E731

    def _issue(self, number: int) -> dict[str, Any] | None:
        key = "number" if self.kind == "github" else "iid"
        return next((i for i in self.forge.issues if i[key] == number), None)

    def _github(
        self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
    ) -> tuple[int, Any]:
        forge = self.forge
        if len(str(body.get("body", ""))) > GITHUB_MAX_BODY:
            return 422, {"message": "body is too long (maximum is 65536 characters)"}
        rest = re.sub(r"^/repos/[^/]+/[^/]+", "", path)
        if m := re.fullmatch(r"/issues/(\d+)/comments", rest):
            comments = forge.comments.setdefault(int(m[1]), [])
            if method == "GET":
                return 200, _page(comments, query)
            comment = {"id": forge.new_id(), "body": body["body"]}
            comments.append(comment)
            return 201, comment
        if (m := re.fullmatch(r"/issues/comments/(\d+)", rest)) and method == "PATCH":
            for comments in forge.comments.values():
                for comment in comments:
                    if comment["id"] == int(m[1]):
                        comment["body"] = body["body"]
                        return 200, comment
            return 404, {"message": "Not Found"}
        if rest == "/issues" and method == "GET":
            label = query.get("labels", [""])[0]
            state = query.get("state", ["open"])[0]
            found = [i for i in forge.issues if label in i["labels"] and i["state"] == state]
            return 200, _page(found, query)
        if rest == "/issues" and method == "POST":
            issue = {"number": len(forge.issues) + 1, "state": "open", **body}
            forge.issues.append(issue)
            return 201, issue
        if (m := re.fullmatch(r"/issues/(\d+)", rest)) and method == "PATCH":
            issue = self._issue(int(m[1]))
            if issue is None:
                return 404, {"message": "Not Found"}
            issue.update(body)
            return 200, issue
        if m := re.fullmatch(r"/labels/([^/]+)", rest):
            name = urllib.parse.unquote(m[1])
            if name not in forge.labels:
                return 404, {"message": "Not Found"}
            return 200, {"name": name}
        if rest == "/labels" and method == "POST":
            forge.labels.add(body["name"])
            return 201, body
        return 404, {"message": f"no route {method} {path}"}

    def _gitlab(
        self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
    ) -> tuple[int, Any]:
        forge = self.forge
        rest = re.sub(r"^/api/v4/projects/[^/]+", "", path)
        if m := re.fullmatch(r"/merge_requests/(\d+)/notes", rest):
            notes = forge.comments.setdefault(int(m[1]), [])
            if method == "GET":
                return 200, _page(notes, query)
            note = {"id": forge.new_id(), "body": body["body"]}
            notes.append(note)
            return 201, note
        if (m := re.fullmatch(r"/merge_requests/(\d+)/notes/(\d+)", rest)) and method == "PUT":
            for note in forge.comments.get(int(m[1]), []):
                if note["id"] == int(m[2]):
                    note["body"] = body["body"]
                    return 200, note
            return 404, {"message": "404 Not found"}
        if rest == "/issues" and method == "GET":
            label = query.get("labels", [""])[0]
            state = query.get("state", ["opened"])[0]
            found = [i for i in forge.issues if label in i["labels"] and i["state"] == state]
            return 200, _page(found, query)
        if rest == "/issues" and method == "POST":
            issue = {
                "iid": len(forge.issues) + 1,
                "state": "opened",
                "title": body["title"],
                "description": body["description"],
                "labels": body.get("labels", "").split(","),
            }
            forge.issues.append(issue)
            return 201, issue
        if (m := re.fullmatch(r"/issues/(\d+)", rest)) and method == "PUT":
            issue = self._issue(int(m[1]))
            if issue is None:
                return 404, {"message": "404 Not found"}
            if body.get("state_event") == "close":
                issue["state"] = "closed"
            if "description" in body:
                issue["description"] = body["description"]
            return 200, issue
        return 404, {"message": f"no route {method} {path}"}


@contextmanager
def serve_forge(kind: str) -> Iterator[Forge]:
    """A fake ``github`` or ``gitlab`` API on a free loopback port, for the ``with`` block."""
    forge = Forge()
    handler = type(f"{kind}Handler", (_Handler,), {"forge": forge, "kind": kind})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    forge.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield forge
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
