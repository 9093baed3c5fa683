"""``sagemaker-executor submit`` and ``cancel``: a small stand-in for the anubis client, BFF and fetcher.

``submit`` reads a descriptor, ships ``--script`` the way the anubis client does (a tar whose root entry
is the path's basename, named ``<sha1>.tar``, in ``s3://<scripts bucket>/anubis0/``), and publishes the
``FetcherBenchmarkEvent`` the fetcher would have published (datasets whose ``src`` is already in S3
are used in place). ``cancel`` publishes the BFF's ``CommandRequestEvent``. With ``--follow`` both
print the status events (and command responses) of the action as they arrive.

Used by ``make demo`` against the embedded broker, and by anyone against a real cluster.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import io
import json
import socket
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import toml
from kafka import KafkaConsumer, TopicPartition

from sagemaker_executor import __version__
from sagemaker_executor.adapters.kafka import Publisher, connection_config
from sagemaker_executor.config import Settings
from sagemaker_executor.domain.events import JSONDict, new_message_id

CLIENT_SVC = "anubis-client"
CLIENT_KAFKA_ID = "sagemaker-executor-client"  # the Kafka client.id of submit and cancel
# --until created: the executor's answer to the submission; --until ended: the job's end.
CREATED_STATUSES = {"SUCCEEDED", "ERROR"}
ENDED_STATUSES = {"ERROR", "FAILED", "CANCELED", "METRICS AVAILABLE", "FINISHED"}
FINISHED_PREFIX = "Benchmark finished"
METRICS_GRACE_S = 3.0


def default_client_id() -> str:
    """The anubis client's default: ``sha1("<user>+<hostname>")``."""
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
    """``(<sha1>.tar, bytes)``: ``path`` packed with its basename as root entry, as the anubis client does."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(str(path), arcname=path.name)
    data = buffer.getvalue()
    return hashlib.sha1(data).hexdigest() + ".tar", data  # noqa: S324 -- a content name, as the client's


def fetcher_event(descriptor_path: Path, client_id: str, topic: str, script_uri: str | None) -> JSONDict:
    doc = descriptor_path.read_bytes()
    contents: dict[str, Any] = toml.loads(doc.decode("utf-8"))
    if script_uri is not None:
        contents.setdefault("ml", {})["script"] = {"script": script_uri.rsplit("/", 1)[-1]}
    sources = contents.get("data", {}).get("sources", []) if isinstance(contents.get("data"), dict) else []
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
        for source in sources
        if isinstance(source, dict)
    ]
    payload = {
        "toml": {
            "contents": contents,
            "doc": base64.b64encode(doc).decode("ascii"),
            "sha1": hashlib.sha1(doc).hexdigest(),  # noqa: S324 -- the BFF's checksum of the file
            "descriptor_filename": descriptor_path.name,
            "verified": True,
        },
        "datasets": datasets,
        "models": [],
        "scripts": [{"dst": script_uri}] if script_uri else [],
    }
    return _envelope(client_id, topic, payload)


def cancel_event(target_action_id: str, client_id: str, topic: str) -> JSONDict:
    return _envelope(client_id, topic, {"command": "cancel", "args": {"target_action_id": target_action_id}})


class StatusTail:
    """Reads the status and command-return topics from their current end, without a consumer group."""

    def __init__(self, settings: Settings) -> None:
        options = settings.kafka_options(CLIENT_KAFKA_ID)
        self._consumer = KafkaConsumer(**connection_config(options), group_id=None, enable_auto_commit=False)
        partitions = [
            TopicPartition(topic, p)
            for topic in (settings.status_topic, settings.cmd_return_topic)
            if topic
            for p in sorted(self._consumer.partitions_for_topic(topic) or [])
        ]
        self._consumer.assign(partitions)
        self._consumer.seek_to_end()
        for tp in partitions:
            self._consumer.position(tp)  # resolve "end" now, before anything is published

    def follow(self, action_ids: set[str], timeout: float, *, stop_on: set[str]) -> str | None:
        """Print events about ``action_ids`` until one with a status in ``stop_on``; returns that status.

        "FINISHED" in ``stop_on`` stands for the SUCCEEDED that says a job completed: the final metrics
        follow it, so the tail waits a moment for them before returning.
        """
        deadline = time.monotonic() + timeout
        finished_at: float | None = None
        while time.monotonic() < deadline:
            if finished_at is not None and time.monotonic() > finished_at + METRICS_GRACE_S:
                return "FINISHED"
            for batch in self._consumer.poll(timeout_ms=500).values():
                for record in batch:
                    final = _print_event(record.value, action_ids, stop_on)
                    if final == "FINISHED":
                        finished_at = time.monotonic()
                    elif final is not None:
                        return final
        print(f"[{min(action_ids)[:8]}] no final answer within {timeout:.0f}s", file=sys.stderr)
        return None

    def close(self) -> None:
        self._consumer.close()


def _print_event(value: bytes, action_ids: set[str], stop_on: set[str]) -> str | None:
    try:
        event = json.loads(value)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    payload = event.get("payload") or {}
    if event.get("type") == "CMD_RETURN":
        command = (payload.get("cmd_submit") or {}).get("payload", {}).get("args") or {}
        if event.get("action_id") not in action_ids:
            return None
        print(
            f"[{str(command.get('target_action_id'))[:8]}] CMD_RETURN "
            f"{payload.get('return_code')}: {payload.get('message')}",
            flush=True,
        )
        return "RETURNED" if "RETURNED" in stop_on else None
    action_id = str(event.get("action_id"))
    if action_id not in action_ids:
        return None
    svc = (event.get("visited") or [{}])[-1].get("svc", "?")
    status = str(payload.get("status"))
    message = str(payload.get("message"))
    print(f"[{action_id[:8]}] {svc:<12} {status:<18} {message}", flush=True)
    if status == "SUCCEEDED" and message.startswith(FINISHED_PREFIX) and "FINISHED" in stop_on:
        return "FINISHED"
    return status if status in stop_on else None


def submit(
    settings: Settings,
    descriptor: Path,
    script: Path | None,
    follow: bool,
    timeout: float,
    client_id: str | None,
    until: str = "created",
) -> int:
    client_id = client_id or default_client_id()
    script_uri = None
    if script is not None:
        script_uri = _upload_script(settings, script)
    event = fetcher_event(descriptor, client_id, settings.consumer_topic, script_uri)
    stop_on = ENDED_STATUSES if until == "ended" else CREATED_STATUSES
    return _publish(settings, event, settings.consumer_topic, follow, timeout, stop_on, set())


def cancel(
    settings: Settings,
    target: str,
    follow: bool,
    timeout: float,
    client_id: str | None,
    until: str = "created",
) -> int:
    """``--until created`` stops at the executor's CMD_RETURN; ``--until ended`` at the job's end."""
    event = cancel_event(target, client_id or default_client_id(), settings.cmd_submit_topic)
    stop_on = ENDED_STATUSES if until == "ended" else {"RETURNED"}
    return _publish(settings, event, settings.cmd_submit_topic, follow, timeout, stop_on, {target})


def _publish(
    settings: Settings,
    event: JSONDict,
    topic: str,
    follow: bool,
    timeout: float,
    stop_on: set[str],
    also_follow: set[str],
) -> int:
    tail = StatusTail(settings) if follow else None
    publisher = Publisher(settings.kafka_options(CLIENT_KAFKA_ID))
    try:
        publisher.send(topic, event["client_id"], event)
        publisher.flush()
    finally:
        publisher.close()
    print(event["action_id"], flush=True)
    if tail is None:
        return 0
    try:
        final = tail.follow({event["action_id"], *also_follow}, timeout, stop_on=stop_on)
    finally:
        tail.close()
    return 0 if final in ("SUCCEEDED", "RETURNED", "FINISHED", "METRICS AVAILABLE", "CANCELED") else 1


def _upload_script(settings: Settings, path: Path) -> str:
    from sagemaker_executor.adapters.aws import client, make_session

    bucket = settings.scripts_exchange_s3_bucket_name
    if not bucket:
        raise SystemExit("submit --script needs SCRIPTS_EXCHANGE_S3_BUCKET_NAME or SAGEMAKER_OUTPUT_BUCKET")
    if not settings.aws_region:
        raise SystemExit("submit --script needs AWS_DEFAULT_REGION")
    name, data = tar_scripts(path)
    key = f"anubis0/{name}"
    client(make_session(settings.aws_region), "s3", settings.aws_retry_attempts).put_object(
        Bucket=bucket, Key=key, Body=data
    )
    return f"s3://{bucket}/{key}"
