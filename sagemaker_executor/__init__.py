"""sagemaker-executor: the Anubis executor for descriptors with ``info.execution_engine = "aws.sagemaker"``.

Layout (imports only point downwards; ``.importlinter`` in pyproject.toml keeps it so):

* ``cli``       -- entry point and wiring: ``run`` and the client commands; ``config`` (the settings),
  ``startup`` (what stops the service before it consumes), ``logs`` (log lines, secrets masked).
* ``client``    -- the client commands: a stand-in for the anubis client, the BFF and the fetcher.
* ``service``   -- the Kafka consumer loop, submission and cancel handlers, status emission, tracking.
* ``adapters``  -- one thin wrapper per external system: Kafka, SageMaker, S3, CloudWatch, HTTP.
* ``domain``    -- pure code: wire events, the descriptor, translation to a training-job spec.
* ``local``     -- the embedded broker and the local SageMaker, for tests, ``make demo`` and ``make bench``.
"""

__version__ = "0.1.0"
SERVICE_NAME = "sm-executor"
