"""The Kafka service: what the executor does with each record, and what it tells its operators.

* ``loop`` -- poll, run records concurrently, publish, wait for acks, commit in order (``offsets``);
  ``attempts`` -- one attempt at a record, which ends it or parks it; ``loopconfig`` -- the loop's
  ports (source, sink, observer) and settings; ``records`` -- what a record is to it (decoding, its
  action) and its dead letters.
* ``submission`` and ``commands`` -- the handlers of ``BAI_APP_FETCHER`` events and ``cancel``.
* ``outcomes`` -- the one mapping of an expected failure to a user's message, and the dead-letter error.
* ``emitter`` -- status and executor events published as every Anubis service does.
* ``tracker`` -- jobs followed until they end; ``backoff`` -- the one backoff rule.
* ``observability`` -- metrics, liveness, readiness and the dependency probes.
"""
