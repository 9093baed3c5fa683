"""GPU counts of SageMaker instance types."""

import pytest

from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.instances import (
    GPUS_BY_FAMILY,
    accelerator_note,
    check_sagemaker_instance_type,
    gpus_per_instance,
)


@pytest.mark.parametrize(
    ("instance_type", "gpus"),
    [
        ("ml.p2.xlarge", 1),
        ("ml.p2.8xlarge", 8),
        ("ml.p2.16xlarge", 16),
        ("ml.p3.2xlarge", 1),
        ("ml.p3.8xlarge", 4),
        ("ml.p3.16xlarge", 8),
        ("ml.p3dn.24xlarge", 8),
        ("ml.p4d.24xlarge", 8),
        ("ml.p4de.24xlarge", 8),
        ("ml.p5.48xlarge", 8),
        ("ml.g4dn.xlarge", 1),
        ("ml.g4dn.2xlarge", 1),
        ("ml.g4dn.4xlarge", 1),
        ("ml.g4dn.8xlarge", 1),
        ("ml.g4dn.16xlarge", 1),
        ("ml.g4dn.12xlarge", 4),
        ("ml.g4dn.metal", 8),
        ("ml.g5.xlarge", 1),
        ("ml.g5.16xlarge", 1),
        ("ml.g5.12xlarge", 4),
        ("ml.g5.24xlarge", 4),
        ("ml.g5.48xlarge", 8),
        ("ml.g6.xlarge", 1),
        ("ml.g6.12xlarge", 4),
        ("ml.g6.48xlarge", 8),
        ("ml.g6e.2xlarge", 1),
        ("ml.g6e.24xlarge", 4),
        ("ml.g6e.48xlarge", 8),
        ("ml.trn1.2xlarge", 0),
        ("ml.trn1.32xlarge", 0),
        ("ml.c4.xlarge", 0),
        ("ml.c5.18xlarge", 0),
        ("ml.c5n.9xlarge", 0),
        ("ml.c6i.32xlarge", 0),
        ("ml.m4.xlarge", 0),
        ("ml.m5.large", 0),
        ("ml.m6i.24xlarge", 0),
        ("ml.r5.2xlarge", 0),
        ("ml.t3.medium", 0),
    ],
)
def test_gpus_per_instance(instance_type: str, gpus: int) -> None:
    assert gpus_per_instance(instance_type) == gpus
    check_sagemaker_instance_type(instance_type)


def test_every_gpu_size_has_gpus() -> None:
    assert all(count >= 1 for sizes in GPUS_BY_FAMILY.values() for count in sizes.values())


def test_trainium_is_noted_and_cpus_are_not() -> None:
    assert "Trainium" in (accelerator_note("ml.trn1.32xlarge") or "")
    assert accelerator_note("ml.c5.xlarge") is None
    assert accelerator_note("ml.p3.2xlarge") is None
    assert accelerator_note("p3.2xlarge") is None


@pytest.mark.parametrize(
    ("instance_type", "fragment"),
    [
        ("p3.8xlarge", "did you mean 'ml.p3.8xlarge'"),
        ("c5.18xlarge", "start with 'ml.'"),
        ("local", "not a SageMaker instance type"),
        ("local_gpu", "not a SageMaker instance type"),
        ("", "not a SageMaker instance type"),
        ("ML.P3.2XLARGE", "not a SageMaker instance type"),
        ("ml.p3", "ml.<family>.<size>"),
        ("ml..2xlarge", "ml.<family>.<size>"),
        ("ml.p3.2xlarge ", "ml.<family>.<size>"),
        ("ml.p3.2xlarge\n", "ml.<family>.<size>"),
    ],
)
def test_not_sagemaker_types_are_rejected(instance_type: str, fragment: str) -> None:
    for check in (gpus_per_instance, check_sagemaker_instance_type):
        with pytest.raises(DescriptorError) as caught:
            check(instance_type)
        assert caught.value.field == "hardware.instance_type"
        assert fragment in caught.value.reason


@pytest.mark.parametrize(
    ("instance_type", "fragment"),
    [
        ("ml.p3.4xlarge", "not a known size of 'ml.p3' (known: 2xlarge, 8xlarge, 16xlarge)"),
        ("ml.g5.metal", "not a known size of 'ml.g5'"),
        ("ml.p9.48xlarge", "unknown SageMaker instance family 'ml.p9'"),
        ("ml.g42.xlarge", "unknown SageMaker instance family 'ml.g42'"),
        ("ml.zz1.large", "unknown SageMaker instance family"),
    ],
)
def test_unknown_families_and_sizes_raise_instead_of_guessing(instance_type: str, fragment: str) -> None:
    with pytest.raises(DescriptorError) as caught:
        gpus_per_instance(instance_type)
    assert caught.value.field == "hardware.instance_type"
    assert fragment in caught.value.reason
    check_sagemaker_instance_type(instance_type)  # well-formed: SageMaker itself decides whether it exists
