"""The events the client publishes, built as the anubis client, the BFF and the fetcher would.

``submit`` publishes a ``FetcherBenchmarkEvent`` (CONTRACT §4.1) on ``CONSUMER_TOPIC``: the descriptor
file base64-encoded with its SHA-1, its contents as parsed, the ``--script`` tarball named in
``ml.script`` and ``payload.scripts``, and data sources already in S3 used in place (the fetcher's copy
would hold the same bytes). ``cancel`` publishes the BFF's ``CommandRequestEvent`` on
``CMD_SUBMIT_TOPIC``. Pure apart from the clock, the user name and fresh ids.
"""

from __future__ import annotations

import base64
import copy
import getpass
import hashlib
import io
import socket
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagemaker_executor import __version__
from sagemaker_executor.domain.events import JSONDict, new_message_id

CLIENT_SVC = "anubis-client"


@dataclass(frozen=True)
class DescriptorFile:
    """A descriptor as read from disk: its bytes (``doc``) and the table TOML parsed them to."""

    path: Path
    doc: bytes
    contents: dict[str, Any]


def default_client_id() -> str:
    """The anubis client's default: ``sha1("<user>+<hostname>")``, 40 hex characters."""
    return hashlib.sha1(f"{getpass.getuser()}+{socket.gethostname()}".encode()).hexdigest()  # noqa: S324


def _envelope(client_id: str, topic: str, payload: JSONDict) -> JSONDict:
    now = int(time.time() * 1000)
    return {
        "action_id": str(uuid.uuid4()),
        "parent_action_id": None,
        "message_id": new_message_id(),
        "client_id": client_id,
        "client_version": __version__,
        "client_username": getpass.getuser(),
        "authenticated": False,
        "tstamp": now,
        "visited": [{"svc": CLIENT_SVC, "tstamp": now, "version": __version__, "node": None}],
        "type": topic,
        "payload": payload,
    }


def tar_scripts(path: Path) -> tuple[str, bytes]:
    """``(<sha1>.tar, bytes)``: ``path`` packed with its basename as root entry, as the anubis client does.

    Raises ``OSError`` when ``path`` or something under it cannot be read.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(str(path), arcname=path.name)
    data = buffer.getvalue()
    return hashlib.sha1(data).hexdigest() + ".tar", data  # noqa: S324 -- a content name, as the client's


def fetcher_event(descriptor: DescriptorFile, client_id: str, topic: str, script_uri: str | None) -> JSONDict:
    """The ``FetcherBenchmarkEvent`` for ``descriptor``; ``script_uri`` is the tarball's ``s3://`` URI."""
    contents = copy.deepcopy(descriptor.contents)
    if script_uri is not None:
        ml = contents.setdefault("ml", {})
        if isinstance(ml, dict):
            ml["script"] = {"script": script_uri.rsplit("/", 1)[-1]}
    data = contents.get("data")
    sources = data.get("sources", []) if isinstance(data, dict) else []
    datasets = [
        {
            "src": source.get("src"),
            "path": source.get("path"),
            "id": source.get("id"),
            "md5": source.get("md5"),
            "dst": source.get("src"),  # already in S3: the fetcher's copy would be the same bytes
            "type": "DIRECTORY",
            "status": "DONE",
            "message": None,
            "size_info": None,
        }
        for source in (sources if isinstance(sources, list) else [])
        if isinstance(source, dict)
    ]
    doc = descriptor.doc
    payload = {
        "toml": {
            "contents": contents,
            "doc": base64.b64encode(doc).decode("ascii"),
            "sha1": hashlib.sha1(doc).hexdigest(),  # noqa: S324 -- the BFF's checksum of the file
            "descriptor_filename": descriptor.path.name,
            "verified": True,
        },
        "datasets": datasets,
        "models": [],
        "scripts": [{"dst": script_uri}] if script_uri else [],
    }
    return _envelope(client_id, topic, payload)


def cancel_event(target_action_id: str, client_id: str, topic: str) -> JSONDict:
    """The BFF's ``CommandRequestEvent`` asking every executor to cancel ``target_action_id``."""
    return _envelope(client_id, topic, {"command": "cancel", "args": {"target_action_id": target_action_id}})
