"""The Kafka service: consumer loop, submission and cancel handlers, status emission."""
