"""GPU counts of SageMaker training instance types (`ml.<family>.<size>`).

Owns the table of known `ml.*` families: how many GPUs each size of a GPU family has, which families
have none (CPU families, and Trainium, whose accelerators are not GPUs). Called by
`descriptor.check_sagemaker_support` (`processes_per_instance = "gpus"` needs GPUs) and by
translation (processes per host for horovod). Replaces the original's `ec2_instance_info.csv`,
which had no `ml.` rows, so "gpus" failed on every SageMaker type (CONTRACT.md §7).
Pure: no I/O.
"""

import re
from collections.abc import Mapping

from sagemaker_executor.domain.errors import DescriptorError

FIELD = "hardware.instance_type"

_G5_LIKE = {
    "xlarge": 1,
    "2xlarge": 1,
    "4xlarge": 1,
    "8xlarge": 1,
    "16xlarge": 1,
    "12xlarge": 4,
    "24xlarge": 4,
    "48xlarge": 8,
}

GPUS_BY_FAMILY: Mapping[str, Mapping[str, int]] = {
    "p2": {"xlarge": 1, "8xlarge": 8, "16xlarge": 16},
    "p3": {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8},
    "p3dn": {"24xlarge": 8},
    "p4d": {"24xlarge": 8},
    "p4de": {"24xlarge": 8},
    "p5": {"48xlarge": 8},
    "p5e": {"48xlarge": 8},
    "p5en": {"48xlarge": 8},
    "g4dn": {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "metal": 8},
    "g5": _G5_LIKE,
    "g6": _G5_LIKE,
    "g6e": _G5_LIKE,
}

_CPU_FAMILIES = frozenset(
    (
        "c4",
        "c5",
        "c5d",
        "c5n",
        "c6i",
        "c6in",
        "c7i",
        "m4",
        "m5",
        "m5d",
        "m6i",
        "m7i",
        "r5",
        "r5d",
        "r6i",
        "r7i",
    )
) | {"t2", "t3"}

# Families without GPUs, at any size; the value explains accelerators that are not GPUs.
NO_GPU_FAMILIES: Mapping[str, str | None] = {
    **dict.fromkeys(_CPU_FAMILIES, None),
    "trn1": "AWS Trainium accelerators are Neuron devices, not GPUs",
    "trn1n": "AWS Trainium accelerators are Neuron devices, not GPUs",
}

_ML_TYPE = re.compile(r"ml\.([a-z][a-z0-9]*)\.([a-z0-9][a-z0-9-]*)")


def _family_and_size(instance_type: str) -> tuple[str, str]:
    match = _ML_TYPE.fullmatch(instance_type)
    if match:
        return match[1], match[2]
    if instance_type.startswith("ml."):
        raise DescriptorError(FIELD, f"{instance_type!r} is not of the form 'ml.<family>.<size>'")
    hint = (
        f" (did you mean 'ml.{instance_type}'?)"
        if re.fullmatch(r"[a-z0-9]+\.[a-z0-9-]+", instance_type)
        else ""
    )
    raise DescriptorError(
        FIELD,
        f"{instance_type!r} is not a SageMaker instance type; SageMaker types start with 'ml.', "
        f"e.g. 'ml.p3.2xlarge'{hint}",
    )


def check_sagemaker_instance_type(instance_type: str) -> None:
    """Raise DescriptorError unless `instance_type` looks like `ml.<family>.<size>`.

    Families missing from the tables pass: SageMaker adds families faster than this table grows, and
    SageMaker itself rejects a type that does not exist.
    """
    _family_and_size(instance_type)


def gpus_per_instance(instance_type: str) -> int:
    """Number of GPUs on one instance of a SageMaker type; 0 for CPU and Trainium families.

    Raises DescriptorError for non-`ml.` types and for families or GPU sizes this table does not know,
    rather than guessing a count.
    """
    family, size = _family_and_size(instance_type)
    if family in NO_GPU_FAMILIES:
        return 0
    sizes = GPUS_BY_FAMILY.get(family)
    if sizes is None:
        raise DescriptorError(
            FIELD,
            f"unknown SageMaker instance family 'ml.{family}'; cannot tell how many GPUs {instance_type} has",
        )
    if size not in sizes:
        raise DescriptorError(
            FIELD,
            f"{instance_type} is not a known size of 'ml.{family}' "
            f"(known: {', '.join(sorted(sizes, key=_size_order))})",
        )
    return sizes[size]


def accelerator_note(instance_type: str) -> str | None:
    """A remark about non-GPU accelerators on this type (e.g. Trainium), or None."""
    match = _ML_TYPE.fullmatch(instance_type)
    return NO_GPU_FAMILIES.get(match[1]) if match else None


def _size_order(size: str) -> tuple[int, str]:
    digits = re.match(r"\d*", size)
    return (int(digits[0]) if digits and digits[0] else 1, size)
