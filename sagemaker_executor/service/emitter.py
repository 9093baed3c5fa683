"""Publishing the service's events the way every Anubis service does (CONTRACT §3 "Sending").

``StatusEmitter`` stamps each outgoing event (new ``message_id``, ``type`` = topic, ``visited`` +=
this service, ``tstamp`` = now), serialises it as strict JSON (``domain.strictjson``: a NaN or a lone
surrogate copied from the input is rendered, never sent bare), keys it by ``client_id`` and hands it
to the publisher. The handlers in
``service.submission`` and ``service.commands`` use it; the loop flushes it before committing.

Status events and command responses always fit (``domain.limits``): what they copy from the input is
bounded when they are built, and a copied payload that would make one larger than
``MAX_STATUS_BYTES`` is replaced by a note. An answer to an event whose ``action_id`` or ``client_id``
is too long to file is never sent (the handlers dead-letter such events before answering anything).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sagemaker_executor import SERVICE_NAME, __version__
from sagemaker_executor.domain import strictjson
from sagemaker_executor.domain.events import (
    JSONDict,
    Status,
    command_response,
    stamp_for_send,
    status_event,
)
from sagemaker_executor.domain.limits import (
    MAX_STATUS_BYTES,
    id_problem,
    unanswerable,
    without_payload,
)

log = logging.getLogger(__name__)


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

    def encoded(self, event: Mapping[str, Any], topic: str) -> bytes:
        """The value :meth:`send` would publish for ``event`` on ``topic`` now (stamped, UTF-8 JSON).

        The same size as what is sent later: only ``message_id`` (a uuid4) and the times differ.
        """
        return self._stamp(event, topic)[1]

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
        """A status event about ``handled``; ``src_event`` defaults to ``handled`` itself.

        At most ``MAX_STATUS_BYTES``; not sent at all (logged as an error) if ``handled``'s ids or
        ``target_action_id`` are too long to answer under.
        """
        if not self._status_topic:
            log.debug("STATUS_TOPIC is empty; dropping %s status: %s", status, message)
            return
        problem = unanswerable(handled) or id_problem("target_action_id", target_action_id)
        if problem is not None:
            log.error("not sending %s status %r: %s", status.value, message[:200], problem)
            return
        source = handled if src_event is None else src_event
        event = status_event(handled, status, message, src_event=source, target_action_id=target_action_id)
        stamped, data = self._stamp(event, self._status_topic)
        if len(data) > MAX_STATUS_BYTES:
            # The BFF stores each status whole in a DynamoDB item (400 KB at most): keep the source
            # event's (bounded) envelope and say why its payload is missing.
            event = status_event(
                handled,
                status,
                message,
                src_event=without_payload(source, len(data)),
                target_action_id=target_action_id,
            )
            stamped, data = self._stamp(event, self._status_topic)
        self._sink.send(self._status_topic, str(stamped.get("client_id")), data)
        headline, *more = message.split("\n")  # a FAILED status's log lines stay in the event
        extra = f" (and {len(more)} more lines)" if more else ""
        log.info("status %s for action %s: %s%s", status.value, stamped["action_id"], headline, extra)

    def respond(self, command: Mapping[str, Any], return_code: int, message: str, topic: str) -> None:
        """The ``CommandResponseEvent`` to ``command`` on ``topic``: at most ``MAX_STATUS_BYTES``, like a
        status (the BFF stores responses too); not sent (logged as an error) if ``command``'s ids are too
        long to answer under."""
        problem = unanswerable(command)
        if problem is not None:
            log.error("not sending the response %r: %s", message[:200], problem)
            return
        stamped, data = self._stamp(command_response(command, return_code, message), topic)
        if len(data) > MAX_STATUS_BYTES:
            trimmed = without_payload(command, len(data))
            stamped, data = self._stamp(command_response(trimmed, return_code, message), topic)
        self._sink.send(topic, str(stamped.get("client_id")), data)
