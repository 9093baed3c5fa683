"""One thin wrapper per external system; no business logic lives here.

* ``kafka`` -- topics, the producer, the consumer-group member, the broker check;
  ``kafka_connection`` -- how they all reach the brokers (TLS, SASL); ``kafka_group`` -- the member's
  lag and rebalances.
* ``aws`` -- boto3 sessions and clients, and the one mapping of botocore errors to error kinds.
* ``sagemaker`` (and ``sagemaker_sdk``, the SDK 2.x path) -- creating, finding and stopping jobs;
  ``pacing`` -- the token bucket that paces CreateTrainingJob.
* ``s3`` -- benchmark scripts; ``sourcedir`` -- the job's source directory built on local disk from them,
  each archive unpacked by ``untar`` (safe unpacking) reading it through ``tarstream`` (the capped tar
  stream, ``UnsafeArchiveError``); ``tempspace`` -- private work dirs and the temp disk's failures.
* ``cloudwatch`` -- final metrics as CloudWatch metrics and a dashboard; ``joblogs`` -- jobs' logs.
* ``http`` -- ``/healthz``, ``/readyz`` and ``/metrics``.
"""
