"""One thin wrapper per external system (Kafka, SageMaker, S3); no business logic lives here."""
