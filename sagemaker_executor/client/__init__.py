"""The client commands ``submit``, ``cancel`` and ``status``: a small stand-in for the anubis client,
the BFF and the fetcher, for the same topics the service uses.

Used by ``make demo`` against the embedded broker, and by anyone against a real cluster.

* ``commands`` -- what each command does, in order (check, connect, upload, publish, follow).
* ``checks``   -- the local checks of a descriptor: the service's own parser, validation and pre-flight.
* ``events``   -- the events published (``FetcherBenchmarkEvent``, the cancel ``CommandRequestEvent``).
* ``topics``   -- the client's Kafka connection: brokers and topics checked, reads, publishing.
* ``upload``   -- ``--script`` to S3, as the BFF stores it.
* ``timeline`` -- what an action's events mean (pure): "job created", "training", "job finished".
* ``view``     -- the terminal view (``rich``) and the plain lines of a pipe.
* ``errors``   -- exit codes and the one error type the CLI turns into a message.
"""
