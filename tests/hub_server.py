"""A small Hugging Face Hub-compatible HTTP server for tests: the real `huggingface_hub` client talks to it.

It implements what `HfApi.create_repo / create_branch / create_commit / list_repo_tree / list_repo_refs /
model_info` and `hf_hub_download` (so `from_pretrained`) call, in huggingface_hub 0.36 and 2.x alike:

    POST /api/repos/create                               {"name", "organization", "private"}; 409 if it exists
    POST /api/models/{repo}/branch/{branch}              {"startingPoint"?}; 409 if it exists
    POST /api/validate-yaml                              the README front matter (always valid here)
    POST /api/models/{repo}/preupload/{rev}              every file "regular" (never LFS/xet), with the `oid`
                                                         (git blob sha1) of the file already there, so the
                                                         client itself drops unchanged files from a commit
    POST /api/models/{repo}/commit/{rev}                 NDJSON: header, file (base64), deletedFile
    GET  /api/models/{repo}[/revision/{rev}]             model info with `sha` and `siblings`
    GET  /api/models/{repo}/tree/{rev}[/{path}]          files (and folders) of a revision
    GET  /api/models/{repo}/refs                         branches
    GET  /api/models/{repo}/commits/{rev}                the history of a revision, newest first
    HEAD|GET /{repo}/resolve/{rev}/{path}                file content with ETag, X-Repo-Commit, Content-Length;
                                                         404 with X-Error-Code (RepoNotFound, RevisionNotFound,
                                                         EntryNotFound) as the Hub answers

Writes need `Authorization: Bearer <token>` (any non-empty token: 401 otherwise). Commits are
recorded with the paths they changed (`commits`), and every request in `requests`, for assertions.
Faults (`fail_next`): answer 500 once, or read part of the request body and drop the connection, on
the next request whose method and path match; the fault is then spent, so a retry succeeds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

REPO = r"(?P<repo>[^/]+/[^/]+)"
REV = r"(?P<rev>[^/]+)"


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a file, what the Hub reports as a regular file's `oid` (and the client computes)."""
    return hashlib.sha1(b"blob " + str(len(content)).encode() + b"\0" + content).hexdigest()


@dataclass
class Commit:
    oid: str
    files: dict[str, bytes]
    message: str
    parent: str | None
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    """Every file the commit request carried, changed or not (what travelled over the wire)."""


@dataclass
class Repo:
    repo_id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        oid = self.branches.get(revision, revision)
        return self.commits.get(oid)


@dataclass
class Fault:
    method: str
    path_pattern: str
    mode: str  # "500" or "drop"


class HubState:
    """Repos, the request log and armed faults; shared by the handler threads under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []

    def fail_next(self, method: str, path_pattern: str, mode: str = "500") -> None:
        """Arm one fault for the next `method` request whose path matches the regex `path_pattern`."""
        if mode not in ("500", "drop"):
            raise ValueError(f"unknown fault mode {mode!r}")
        with self.lock:
            self.faults.append(Fault(method, path_pattern, mode))

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and re.search(fault.path_pattern, path):
                    self.faults.remove(fault)
                    return fault
        return None

    def create_repo(self, repo_id: str, private: bool) -> bool:
        """False when it exists. A new repo has one commit on main, with a .gitattributes, as on the Hub."""
        with self.lock:
            if repo_id in self.repos:
                return False
            repo = Repo(repo_id, private)
            initial = Commit(
                uuid.uuid4().hex + uuid.uuid4().hex[:8],
                {".gitattributes": b"*.onnx filter=lfs\n"},
                "initial commit",
                None,
                [".gitattributes"],
            )
            repo.commits[initial.oid] = initial
            repo.branches["main"] = initial.oid
            self.repos[repo_id] = repo
            return True

    def files(self, repo_id: str, revision: str) -> dict[str, bytes]:
        """The files of `repo_id` at `revision` (a branch or commit id), for assertions."""
        commit = self.repos[repo_id].resolve(revision)
        if commit is None:
            raise KeyError(f"{repo_id} has no revision {revision}")
        return dict(commit.files)

    def history(self, repo_id: str, revision: str) -> list[Commit]:
        """Commits of `revision`, newest first."""
        repo = self.repos[repo_id]
        commit, commits = repo.resolve(revision), []
        while commit is not None:
            commits.append(commit)
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return commits


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubHTTPServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet test output
        pass

    # ----- plumbing -----------------------------------------------------------------------------
    @property
    def state(self) -> HubState:
        return self.server.state

    @property
    def base_url(self) -> str:
        return f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, payload=None, headers: dict[str, str] | None = None, body: bytes | None = None
    ):
        if body is None:
            body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "application/json" if payload is not None else "application/octet-stream"
        )
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message}, headers)

    def _authorized(self) -> bool:
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if not token:
            self._error(401, "Invalid username or password.")
            return False
        return True

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        with self.state.lock:
            self.state.requests.append((method, path))
        fault = self.state.take_fault(method, path)
        if fault is not None and fault.mode == "500":
            self._body()
            self._error(500, "Internal Error - We're working hard to fix this as soon as possible!")
            return
        if fault is not None and fault.mode == "drop":
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(max(1, length // 2))  # mid-upload: part of the body is read, then the line dies
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        for pattern, handler in ROUTES.get(method, ()):
            match = re.fullmatch(pattern, path)
            if match:
                handler(self, query=query, **match.groupdict())
                return
        self._error(404, f"no route for {method} {path}")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # ----- repos and refs -----------------------------------------------------------------------
    def _repo(self, repo_id: str) -> Repo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            self._error(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit | None:
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def create_repo(self, query) -> None:
        if not self._authorized():
            return
        payload = json.loads(self._body() or b"{}")
        repo_id = f"{payload.get('organization') or 'hfkdq-tester'}/{payload['name']}"
        url = f"{self.base_url}/{repo_id}"
        if not self.state.create_repo(repo_id, bool(payload.get("private"))):
            self._send(409, {"error": "You already created this model repo", "url": url})
            return
        self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def create_branch(self, query, repo: str, branch: str) -> None:
        if not self._authorized() or (found := self._repo(repo)) is None:
            return
        payload = json.loads(self._body() or b"{}")
        with self.state.lock:
            if branch in found.branches:
                self._error(409, f"Reference already exists: refs/heads/{branch}")
                return
            start = found.resolve(payload.get("startingPoint") or "main")
            found.branches[branch] = start.oid
        self._send(200, {})

    def refs(self, query, repo: str) -> None:
        if (found := self._repo(repo)) is None:
            return
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
            for name, oid in found.branches.items()
        ]
        self._send(200, {"branches": branches, "tags": [], "converts": []})

    def model_info(self, query, repo: str, rev: str = "main") -> None:
        if (found := self._repo(repo)) is None or (commit := self._commit(found, rev)) is None:
            return
        self._send(
            200,
            {
                "id": repo,
                "modelId": repo,
                "sha": commit.oid,
                "private": found.private,
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
                "tags": [],
                "downloads": 0,
                "likes": 0,
            },
        )

    def tree(self, query, repo: str, rev: str, subpath: str | None = None) -> None:
        if (found := self._repo(repo)) is None or (commit := self._commit(found, rev)) is None:
            return
        prefix = f"{subpath.strip('/')}/" if subpath else ""
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        entries, folders = [], set()
        for path in sorted(commit.files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest:
                folder = prefix + rest.split("/")[0]
                if folder not in folders:
                    folders.add(folder)
                    entries.append(
                        {"type": "directory", "oid": git_blob_sha1(folder.encode()), "path": folder}
                    )
                if not recursive:
                    continue
            content = commit.files[path]
            entries.append(
                {"type": "file", "oid": git_blob_sha1(content), "size": len(content), "path": path}
            )
        if prefix and not entries:
            self._error(404, f"{subpath} does not exist on {rev}", "EntryNotFound")
            return
        self._send(200, entries)

    def commits(self, query, repo: str, rev: str) -> None:
        if (found := self._repo(repo)) is None or self._commit(found, rev) is None:
            return
        history = self.state.history(repo, rev)
        self._send(
            200,
            [
                {
                    "id": c.oid,
                    "title": c.message,
                    "message": "",
                    "authors": [],
                    "date": "2024-01-01T00:00:00.000Z",
                }
                for c in history
            ],
        )

    def validate_yaml(self, query) -> None:
        self._body()
        self._send(200, {"errors": [], "warnings": []})

    # ----- upload -------------------------------------------------------------------------------
    def preupload(self, query, repo: str, rev: str) -> None:
        if not self._authorized() or (found := self._repo(repo)) is None:
            return
        payload = json.loads(self._body())
        commit = found.resolve(rev)
        existing = commit.files if commit is not None else {}
        files = [
            {
                "path": item["path"],
                "uploadMode": "regular",
                "shouldIgnore": False,
                "oid": git_blob_sha1(existing[item["path"]]) if item["path"] in existing else None,
            }
            for item in payload["files"]
        ]
        self._send(200, {"files": files, "commitOid": commit.oid if commit else None})

    def commit(self, query, repo: str, rev: str) -> None:
        if not self._authorized() or (found := self._repo(repo)) is None:
            return
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        with self.state.lock:
            parent = found.resolve(rev)
            if parent is None:
                self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
                return
            files, changed, deleted, sent, message = dict(parent.files), [], [], [], ""
            for line in lines:
                key, value = line["key"], line["value"]
                if key == "header":
                    message = value.get("summary", "")
                elif key == "file":
                    if value.get("encoding") != "base64":
                        self._error(400, f"unsupported encoding {value.get('encoding')!r}")
                        return
                    content = base64.b64decode(value["content"])
                    sent.append(value["path"])
                    if files.get(value["path"]) != content:  # as in git: an identical blob is no change
                        changed.append(value["path"])
                    files[value["path"]] = content
                elif key in ("deletedFile", "deletedFolder"):
                    doomed = [
                        p
                        for p in files
                        if p == value["path"] or p.startswith(value["path"].rstrip("/") + "/")
                    ]
                    if not doomed:
                        self._error(404, "A file with this name doesn't exist", "EntryNotFound")
                        return
                    for path in doomed:
                        del files[path]
                    deleted.extend(doomed)
                else:
                    self._error(
                        400, f"unsupported commit line {key!r} (this test server takes regular files only)"
                    )
                    return
            commit = Commit(
                uuid.uuid4().hex + uuid.uuid4().hex[:8], files, message, parent.oid, changed, deleted, sent
            )
            found.commits[commit.oid] = commit
            found.branches[rev if rev in found.branches else "main"] = commit.oid
        self._send(
            200,
            {
                "commitUrl": f"{self.base_url}/{repo}/commit/{commit.oid}",
                "commitOid": commit.oid,
                "pullRequestUrl": None,
            },
        )

    # ----- download -----------------------------------------------------------------------------
    def resolve(self, query, repo: str, rev: str, filename: str) -> None:
        if (found := self._repo(repo)) is None or (commit := self._commit(found, rev)) is None:
            return
        content = commit.files.get(filename)
        if content is None:
            headers = {
                "X-Error-Code": "EntryNotFound",
                "X-Repo-Commit": commit.oid,
                "X-Error-Message": "Entry not found",
            }
            self._send(404, {"error": "Entry not found"}, headers)
            return
        etag = f'"{git_blob_sha1(content)}"'
        self._send(200, headers={"ETag": etag, "X-Repo-Commit": commit.oid}, body=content)


API = r"/api/models/" + REPO
ROUTES: dict[str, list[tuple[str, object]]] = {
    "POST": [
        (r"/api/repos/create", HubHandler.create_repo),
        (r"/api/validate-yaml", HubHandler.validate_yaml),
        (API + r"/branch/(?P<branch>[^/]+)", HubHandler.create_branch),
        (API + r"/preupload/" + REV, HubHandler.preupload),
        (API + r"/commit/" + REV, HubHandler.commit),
    ],
    "GET": [
        (API + r"/refs", HubHandler.refs),
        (API + r"/tree/" + REV + r"(?:/(?P<subpath>.*))?", HubHandler.tree),
        (API + r"/commits/" + REV, HubHandler.commits),
        (API + r"/revision/" + REV, HubHandler.model_info),
        (API, HubHandler.model_info),
        (r"/" + REPO + r"/resolve/" + REV + r"/(?P<filename>.+)", HubHandler.resolve),
    ],
    "HEAD": [(r"/" + REPO + r"/resolve/" + REV + r"/(?P<filename>.+)", HubHandler.resolve)],
}


class HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HubHandler)  # port 0: a free port, chosen by the OS
        self.state = HubState()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class HubServer:
    """`with HubServer() as hub:` serves in a background thread; `hub.url` is what HF_ENDPOINT gets."""

    def __init__(self) -> None:
        self.httpd = HubHTTPServer()
        self.state = self.httpd.state
        self.url = self.httpd.url
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
