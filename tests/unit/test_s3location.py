"""The one S3 URI parser: what every caller (descriptor, request, script store, local SageMaker) gets."""

from __future__ import annotations

import pytest

from sagemaker_executor.domain.s3location import S3Location, is_bucket_name, parse_s3_uri

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket", S3Location("bucket", "")),
        ("s3://bucket/", S3Location("bucket", "")),
        ("s3://my.bucket-1/a/b c/d.tar", S3Location("my.bucket-1", "a/b c/d.tar")),
    ],
)
def test_good_uris_split_into_bucket_and_key(uri: str, expected: S3Location) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("https://bucket/x", "must be an S3 URI"),
        ("s3:///x", "whose bucket is"),
        ("s3://Bucket/x", "whose bucket is"),
        ("s3://ab/x", "whose bucket is"),
        ("s3://bucket/x\ny", "control characters"),
    ],
)
def test_bad_uris_say_why(uri: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_s3_uri(uri)


def test_an_object_needs_a_key() -> None:
    with pytest.raises(ValueError, match="names no object"):
        parse_s3_uri("s3://bucket/", object_key=True)
    assert parse_s3_uri("s3://bucket/k", object_key=True).uri == "s3://bucket/k"


@pytest.mark.parametrize(("name", "ok"), [("abc", True), ("a" * 63, True), ("a" * 64, False), ("-ab", False)])
def test_bucket_names(name: str, ok: bool) -> None:
    assert is_bucket_name(name) is ok
