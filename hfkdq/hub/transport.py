"""Talking to the Hub: the checks before any upload (offline mode, token) and one commit per revision.

Each revision mirrors its file list: a file hfkdq no longer publishes there is deleted, and an unchanged
file is not re-sent (compared by git blob id or LFS sha256), so pushing the same run twice makes no
commit and an update commits only what changed. A commit is all or nothing, so a push interrupted by a
network error leaves every revision either updated or untouched; running the same command again
completes it.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfkdq.hub.layout import MAIN, hub_endpoint
from hfkdq.hub.plan import PushPlan, plan_push
from hfkdq.quality_gate import GateFailure


class HubPushError(RuntimeError):
    """Talking to the Hub failed (HTTP error, dropped connection); the message says what is safe to do."""


@dataclass
class PushResult:
    repo_id: str
    commits: dict[str, str]
    """Revision -> commit id after the push (unchanged when nothing changed)."""
    blocked: list[GateFailure]
    plan: PushPlan


def check_can_push(token: str | None = None) -> str:
    """The token to push with; fails (before any upload) in offline mode or without a token."""
    import huggingface_hub
    from huggingface_hub import constants

    offline_env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")
    if constants.HF_HUB_OFFLINE or offline_env:
        raise ValueError(
            "offline mode is on (HF_HUB_OFFLINE=1), so nothing can be pushed to the Hub: unset HF_HUB_OFFLINE "
            "(or use --dry_run to see what would be uploaded)"
        )
    token = token or huggingface_hub.get_token()
    if not token:
        raise ValueError(
            "no Hugging Face token: log in with `huggingface-cli login` (or `hf auth login`), set HF_TOKEN, "
            "or pass --token (a token with write access)"
        )
    return token


def _remote_files(api: Any, repo_id: str, revision: str) -> dict[str, Any]:
    """Path -> `RepoFile` (its git blob id, and sha256 when it is stored in LFS/xet) of one revision."""
    from huggingface_hub.hf_api import RepoFile

    entries = api.list_repo_tree(repo_id, revision=revision, recursive=True)
    return {entry.path: entry for entry in entries if isinstance(entry, RepoFile)}


def _as_upload(content: Path | bytes) -> str | bytes:
    return content if isinstance(content, bytes) else str(content)


def _same_content(content: Path | bytes, remote: Any) -> bool:
    """Whether the remote file already holds `content`: same git blob id, or same LFS sha256.

    Compared here, not left to the client: huggingface_hub 0.x re-sends unchanged regular files (the
    Hub then records no change for them, but the bytes still travel).
    """
    if remote is None:
        return False
    data = content if isinstance(content, bytes) else content.read_bytes()
    lfs = getattr(remote, "lfs", None)
    sha256 = getattr(lfs, "sha256", None) or (lfs.get("sha256") if isinstance(lfs, dict) else None)
    if sha256:
        return hashlib.sha256(data).hexdigest() == sha256
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == getattr(remote, "blob_id", None)


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a failed HTTP exchange raises: huggingface_hub 0.x uses requests, 1.x httpx, 2.x httpx2."""
    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [HfHubHTTPError, OSError]
    for module, name in (("requests", "RequestException"), ("httpx", "HTTPError"), ("httpx2", "HTTPError")):
        try:
            errors.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def push_to_hub(
    path: str | Path,
    repo_id: str,
    *,
    max_metric_drop: float | None = None,
    private: bool = False,
    token: str | None = None,
    dry_run: bool = False,
    license: str = "apache-2.0",  # noqa: A002 - the card field's name
    commit_message: str = "Upload with hfkdq push",
    out=None,
    run_results: dict[str, Any] | None = None,
) -> PushResult:
    """Publish a run (student on main, each passing variant on its branch); print the file lists first.

    Returns the commit of every revision and the variants the gate kept back (`PushResult.blocked`);
    raises ValueError for bad input (before any upload) and `HubPushError` when the Hub exchange fails.
    `run_results`: the run's results, when the caller holds them (a recipe publishing itself).
    """
    out = out or sys.stdout
    plan = plan_push(path, repo_id, max_metric_drop, license, run_results)
    if not dry_run:
        token = check_can_push(token)
    print(plan.describe(), file=out, flush=True)
    for failure in plan.blocked:
        print(f"hfkdq push: {failure.describe('not pushed')}", file=sys.stderr, flush=True)
    if dry_run:
        print("Dry run: nothing was uploaded.", file=out)
        return PushResult(repo_id, {}, plan.blocked, plan)

    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = HfApi(token=token)
    commits: dict[str, str] = {}
    revision = MAIN
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        for upload in plan.uploads:
            revision = upload.revision
            if revision != MAIN:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            remote = _remote_files(api, repo_id, revision)
            changed = [
                name
                for name in sorted(upload.files)
                if not _same_content(upload.files[name], remote.get(name))
            ]
            operations: list[Any] = [
                CommitOperationAdd(path_in_repo=name, path_or_fileobj=_as_upload(upload.files[name]))
                for name in changed
            ]
            operations += [
                CommitOperationDelete(path_in_repo=name)
                for name in sorted(set(remote) - set(upload.files) - {".gitattributes"})
            ]
            if not operations:
                commits[revision] = api.model_info(repo_id, revision=revision).sha
                print(f"{repo_id}@{revision}: unchanged ({commits[revision]})", file=out, flush=True)
                continue
            info = api.create_commit(repo_id, operations, commit_message=commit_message, revision=revision)
            commits[revision] = info.oid
            print(
                f"{repo_id}@{revision}: {len(operations)} file(s) changed, {info.commit_url}",
                file=out,
                flush=True,
            )
    except _network_errors() as error:
        done = ", ".join(commits) or "none"
        raise HubPushError(
            f"pushing revision {revision!r} of {repo_id} to {hub_endpoint()} failed: {type(error).__name__}: "
            f"{error}. Revisions completed: {done}; revision {revision!r} was not changed (a commit is all or "
            "nothing). Run the same command again to finish: files already on the Hub are not sent again."
        ) from error
    return PushResult(repo_id, commits, plan.blocked, plan)
