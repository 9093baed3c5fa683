"""What the SDK costs: import time and memory of the service's modules, and CPU per CreateTrainingJob request.

Run from the repository root: ``python -m bench.request_build`` (``--builds 300`` requests per builder,
``--repeats 5`` batches). Prints a table and writes ``bench/results/request_build.json``. Nothing here is
asserted; the figures go to the README.

* **Imports**, each in a fresh interpreter (``sys.executable``), ``--repeats`` times, median shown:
  ``boto3`` alone for reference; ``import sagemaker_executor.cli``; the service, i.e. every
  ``sagemaker_executor`` module the running service imports (all but ``local.*`` and the SDK path);
  and the service plus what ``REQUEST_BUILDER=sdk`` adds (``SdkEstimatorPath`` and the TensorFlow,
  PyTorch and MXNet estimators). Wall seconds of the imports, peak RSS (``ru_maxrss``) and modules
  loaded. ``python -X importtime`` breaks any of them down.
* **CPU per request**, in this process, ``time.process_time`` over ``--builds`` requests for the
  generated fetcher sample's descriptor (a TensorFlow job with metrics, hyperparameters and a channel),
  median batch of ``--repeats``: the boto3 builder alone (the pure function); the boto3 builder
  through ``create_training_job`` on a ``Stubber``-ed client (serialisation and validation included,
  no network); the SDK path through the same stubbed client (Estimator construction and ``fit``).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "request_build.json"

_MEASURE = """
import resource, sys, time
start = time.perf_counter()
{body}
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(seconds, peak, len(sys.modules))
"""
_SERVICE = """
import importlib, pkgutil, sagemaker_executor
for m in pkgutil.walk_packages(sagemaker_executor.__path__, "sagemaker_executor."):
    if not m.name.startswith(("sagemaker_executor.local", "sagemaker_executor.adapters.sagemaker_sdk")):
        importlib.import_module(m.name)
"""
_SDK = """
import sagemaker_executor.adapters.sagemaker_sdk as sdk
sdk.configure_sdk_environment()
import sagemaker.session, sagemaker.estimator, sagemaker.tensorflow.estimator
import sagemaker.pytorch.estimator, sagemaker.mxnet.estimator
"""
IMPORTS = {
    "boto3 (reference)": "import boto3",
    "import sagemaker_executor.cli": "import sagemaker_executor.cli",
    "service, REQUEST_BUILDER=boto3": _SERVICE,
    "service, REQUEST_BUILDER=sdk": _SERVICE + _SDK,
}


def measure_import(body: str, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _MEASURE.format(body=body)], capture_output=True, text=True, check=True
        ).stdout.split()
        runs.append([float(x) for x in out])
    seconds, peak, modules = (statistics.median(column) for column in zip(*runs, strict=True))
    return {"import_s": seconds, "peak_rss_mib": peak, "modules": modules}


def measure_builds(builds: int, repeats: int) -> dict[str, float]:
    import boto3
    from botocore.stub import Stubber

    from sagemaker_executor.adapters.sagemaker_sdk import SdkEstimatorPath
    from sagemaker_executor.domain.descriptor import parse_descriptor
    from sagemaker_executor.domain.events import FetcherBenchmarkEvent
    from sagemaker_executor.domain.request import create_training_job_request
    from sagemaker_executor.domain.translation import translate
    from tests.builders import SITE, sample

    event = sample("generated/04.fetcher.BAI_APP_FETCHER.json")
    spec = translate(
        parse_descriptor(event["payload"]["toml"]["contents"]),
        FetcherBenchmarkEvent.model_validate(event),
        SITE,
    )
    code_uri = f"s3://{SITE.output_bucket}/{spec.job_name}/source/sourcedir.tar.gz"
    session = boto3.Session(region_name="us-east-1")
    client = session.client("sagemaker")
    sdk = SdkEstimatorPath(session, client, default_bucket=SITE.output_bucket)
    logging.getLogger("sagemaker").setLevel(logging.ERROR)  # one INFO line per fit would be measured too

    def pure() -> None:
        create_training_job_request(spec, code_uri, "us-east-1")

    def boto3_sent() -> None:
        client.create_training_job(**create_training_job_request(spec, code_uri, "us-east-1"))

    def sdk_sent() -> None:
        sdk.start(spec, code_uri)

    results = {}
    for name, build in [
        ("boto3 builder, request only", pure),
        ("boto3 builder, sent to a stubbed client", boto3_sent),
        ("SDK Estimator, sent to a stubbed client", sdk_sent),
    ]:
        batches = []
        for _ in range(repeats + 1):  # the first batch warms caches and is dropped
            with Stubber(client) as stubber:
                for _ in range(builds):
                    stubber.add_response(
                        "create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:x:1:j/j"}
                    )
                start = time.process_time()
                for _ in range(builds):
                    build()
                batches.append((time.process_time() - start) / builds * 1000)
        results[name] = statistics.median(batches[1:])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    imports = {name: measure_import(body, args.repeats) for name, body in IMPORTS.items()}
    cpu_ms = measure_builds(args.builds, args.repeats)
    print(f"{'imports':45} {'seconds':>8} {'peak RSS MiB':>13} {'modules':>8}")
    for name, row in imports.items():
        print(f"{name:45} {row['import_s']:8.2f} {row['peak_rss_mib']:13.0f} {row['modules']:8.0f}")
    print(f"\n{'CPU per CreateTrainingJob request':45} {'ms':>8}")
    for name, ms in cpu_ms.items():
        print(f"{name:45} {ms:8.2f}")
    RESULTS.parent.mkdir(exist_ok=True)
    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "imports": imports,
        "cpu_ms_per_request": cpu_ms,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
