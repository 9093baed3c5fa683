"""sagemaker-executor: the Anubis executor for descriptors with ``info.execution_engine = "aws.sagemaker"``.

Layout (imports only point downwards; ``[tool.importlinter]`` in pyproject.toml keeps it so):

* ``cli``       -- entry point: parses the arguments and dispatches to ``app`` or ``client``.
* ``app``       -- composition root: the running service's object graph (with ``signals``, ``startup``).
* ``client``    -- the ``submit``, ``cancel``, ``status`` and ``logs`` commands: a stand-in for the
  anubis client, the BFF and the fetcher.
* ``config``    -- the settings: environment variables and flags, validated (pydantic-settings).
* ``service``   -- the Kafka consumer loop, submission and cancel handlers, status emission, tracking;
  it reaches the adapters through Protocols of its own.
* ``adapters``  -- one thin wrapper per external system: Kafka, SageMaker, S3, CloudWatch, CloudWatch
  Logs, HTTP.
* ``domain``    -- pure code: wire events, the descriptor, translation to a training-job spec.
* ``local``     -- the embedded broker and the local SageMaker, for tests, ``make demo`` and ``make bench``.
"""

__version__ = "0.1.0"
SERVICE_NAME = "sm-executor"
