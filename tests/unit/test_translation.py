"""Translation rules the golden files (tests/component/test_golden.py) do not pin on their own."""

from __future__ import annotations

import pytest

from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.translation import volume_size_gb
from tests.builders import fetcher_event

GIB = 1024**3


def _with_sizes(*sizes: int) -> FetcherBenchmarkEvent:
    datasets = [
        {"src": f"s3://b/{i}", "path": "/d", "size_info": {"total_size": n, "file_count": 1, "max_size": n}}
        for i, n in enumerate(sizes)
    ]
    return FetcherBenchmarkEvent.model_validate(fetcher_event(datasets=datasets))


@pytest.mark.parametrize(
    ("sizes", "volume"),
    [
        ((), 30),
        ((1,), 30),
        ((27 * GIB,), 30),  # 1.1 * 27 = 29.7
        ((147_897_477_120,), 151),  # the golden imagenet: 138 GiB
        ((100 * GIB, 1), 111),  # ceil to 101 GiB first
        ((1000 * GIB,), 1100),
    ],
)
def test_volume_is_the_originals_estimate(sizes: tuple[int, ...], volume: int) -> None:
    assert volume_size_gb(_with_sizes(*sizes)) == volume


def test_an_absurd_dataset_size_gives_an_absurd_volume_not_an_overflow() -> None:
    """A 400-digit total_size is valid JSON; float division used to raise OverflowError (an Internal
    error); now SageMaker gets to refuse the volume, which the adapter reports as the user's ERROR."""
    assert volume_size_gb(_with_sizes(10**400)) > 10**390
