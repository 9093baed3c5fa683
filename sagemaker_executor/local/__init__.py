"""Local stand-ins for the outside world, used by the test suite, ``make demo`` and ``make bench``;
never by the deployed service.

* ``broker`` -- an embedded Kafka-protocol broker; ``tls`` -- TLS in front of it.
* ``sagemaker`` -- moto's SageMaker made to behave like the real one (``server``: as an endpoint;
  ``faults`` and ``control``: its fault injection and the client that steers it); ``timeline`` -- the
  clock and a simulated job's statuses; ``queries`` -- ListTrainingJobs and Search;
  ``jobspec``, ``runner`` (``runningjob``: one job; ``hosts``: one of its hosts) and ``motoaws`` --
  run mode, where a training job's container really runs (``runmode``: its jobs as moto shows them).
* ``executor`` -- the executor as a child process; ``demo`` -- ``make demo``.
"""
