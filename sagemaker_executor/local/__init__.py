"""Local stand-ins for the outside world: the embedded Kafka broker and the local SageMaker on moto.

Used by the test suite, ``make demo`` and ``make bench``; never by the deployed service."""
