"""Fetching script tarballs from S3 (moto): the executor's temp space failing is its own outage."""

from __future__ import annotations

import errno
import io
import tempfile

import boto3
import pytest
from moto import mock_aws

from sagemaker_executor.adapters.s3 import ScriptStore
from sagemaker_executor.domain.errors import OutageError, PermanentError

URI = "s3://scripts-exchange/anubis0/abc.tar"


@pytest.fixture
def store():
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        session.client("s3").create_bucket(Bucket="scripts-exchange")
        session.client("s3").put_object(Bucket="scripts-exchange", Key="anubis0/abc.tar", Body=b"x" * 5000)
        yield ScriptStore(session, 2)


def test_a_script_is_spooled_and_read_back(store: ScriptStore) -> None:
    with store.fetch(URI, 10_000) as spool:
        assert spool.read() == b"x" * 5000


class _FullDisk(io.BytesIO):
    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["creating", "writing"])
def test_no_space_for_the_spool_is_an_outage_not_the_users_error(store, monkeypatch, where) -> None:
    def temporary_file() -> io.BytesIO:
        if where == "creating":
            raise OSError(errno.ENOSPC, "No space left on device", tempfile.gettempdir())
        return _FullDisk()

    monkeypatch.setattr("sagemaker_executor.adapters.s3.tempfile.TemporaryFile", temporary_file)
    with pytest.raises(OutageError) as caught:
        store.fetch(URI, 10_000)
    assert caught.value.dependency == "disk" and "ENOSPC" in str(caught.value)
    assert not isinstance(caught.value, PermanentError)
