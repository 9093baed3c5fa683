"""Pure domain code: what the executor knows about Anubis and SageMaker, without doing anything.

Nothing here does I/O, reads the clock or imports from the layers above.

* Anubis's side: ``events`` (the wire events), ``descriptor`` (the descriptor's checks and their
  errors; ``sections``: its model, one class per TOML table; ``fieldrules``: rules tables share),
  ``strictjson`` (values JSON cannot carry), ``limits`` (sizes of what the executor sends),
  ``errors`` (the few error kinds).
* One rule each: ``shell`` (a variable name, benchmark code, ``ml.args``), ``requirements`` (a pip
  requirement line), ``s3location`` (an S3 URI, a bucket name), ``instances`` (GPUs of an instance
  type), ``constraints`` (every SageMaker input limit; ``javaregex``: its patterns, ``violation``: what
  breaks one, told to a user and as SageMaker says it), ``expansion`` (Kubernetes' ``$(VAR)``).
* From a submission to a training job: ``translation`` (descriptor + event -> ``TrainingJobSpec``),
  ``entrypoint`` (script mode's entry files), ``command`` and ``bootstrap`` (command mode;
  ``quoting``: how its ``$(VAR)`` values are quoted for the shell),
  ``request`` (the CreateTrainingJob request), ``preflight`` (that request checked, naming the source).
* After: ``lifecycle`` (a job's state as an Anubis status), ``tracking`` (the durable record of a
  tracked job), ``joblog`` (a job's log as a failed status shows it).
"""
