"""Publishing the service's events the way every Anubis service does (CONTRACT §3 "Sending").

``StatusEmitter`` stamps each outgoing event (new ``message_id``, ``type`` = topic, ``visited`` +=
this service, ``tstamp`` = now), serialises it as strict JSON (``domain.strictjson``: a NaN or a lone
surrogate copied from the input is rendered, never sent bare), keys it by ``client_id`` and hands it
to the publisher. The handlers in
``service.submission`` and ``service.commands`` use it; the loop flushes it before committing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sagemaker_executor import SERVICE_NAME, __version__
from sagemaker_executor.domain import strictjson
from sagemaker_executor.domain.events import JSONDict, Status, stamp_for_send, status_event

log = logging.getLogger(__name__)

MAX_STATUS_BYTES = 350_000  # under the BFF's 400 KB DynamoDB item, with room for its own fields


class RecordSink(Protocol):
    def send(self, topic: str, key: str | None, value: dict[str, Any] | bytes) -> None: ...


def now_ms() -> int:
    return int(time.time() * 1000)


class StatusEmitter:
    def __init__(
        self,
        sink: RecordSink,
        *,
        status_topic: str,
        node: str | None,
        service: str = SERVICE_NAME,
        version: str = __version__,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._sink = sink
        self._status_topic = status_topic
        self._node = node
        self._service = service
        self._version = version
        self._clock_ms = clock_ms

    def send(self, event: Mapping[str, Any], topic: str) -> JSONDict:
        stamped, data = self._stamp(event, topic)
        self._sink.send(topic, str(stamped.get("client_id")), data)
        return stamped

    def _stamp(self, event: Mapping[str, Any], topic: str) -> tuple[JSONDict, bytes]:
        """The event as sent, and its bytes: serialised once, here, for the size check and the wire."""
        stamped = stamp_for_send(
            dict(event),
            topic=topic,
            service=self._service,
            version=self._version,
            node=self._node,
            now_ms=self._clock_ms(),
        )
        return stamped, strictjson.encode(stamped)

    def status(
        self,
        handled: Mapping[str, Any],
        status: Status,
        message: str,
        *,
        src_event: Mapping[str, Any] | None = None,
        target_action_id: str | None = None,
    ) -> None:
        """A status event about ``handled``; ``src_event`` defaults to ``handled`` itself."""
        if not self._status_topic:
            log.debug("STATUS_TOPIC is empty; dropping %s status: %s", status, message)
            return
        source = handled if src_event is None else src_event
        event = status_event(handled, status, message, src_event=source, target_action_id=target_action_id)
        stamped, data = self._stamp(event, self._status_topic)
        if len(data) > MAX_STATUS_BYTES:
            # The BFF stores each status whole in a DynamoDB item (400 KB at most): keep the source
            # event's envelope and say why its payload is missing.
            trimmed = {
                **source,
                "payload": {"omitted": f"payload too large for a status event ({len(data)} bytes)"},
            }
            event = status_event(
                handled, status, message, src_event=trimmed, target_action_id=target_action_id
            )
            stamped, data = self._stamp(event, self._status_topic)
        self._sink.send(self._status_topic, str(stamped.get("client_id")), data)
        log.info("status %s for action %s: %s", status.value, stamped["action_id"], message)
