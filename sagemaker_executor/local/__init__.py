"""Local stand-ins for the outside world, used by the test suite, ``make demo`` and ``make bench``;
never by the deployed service.

* ``broker`` -- an embedded Kafka-protocol broker; ``tls`` -- TLS in front of it.
* ``sagemaker`` -- moto's SageMaker made to behave like the real one (``server``: as an endpoint);
  ``jobspec``, ``runner`` and ``motoaws`` -- run mode, where a training job's container really runs.
* ``demo`` -- ``make demo``.
"""
