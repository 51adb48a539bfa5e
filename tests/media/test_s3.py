"""The S3 backend: SigV4 against AWS's published example, and against a real S3-compatible HTTP server (moto's
server, with signature checking on) both directly and behind the API."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import httpx
import pytest

from store.media_storage import EMPTY_SHA256, MissingObject, S3Storage, StorageError, sigv4_headers
from tests.media.conftest import create, media_stack, stored_files, upload
from tests.support.media import mp4
from tests.support.servers import free_port

moto_server = pytest.importorskip("moto.server", reason="moto[server] is a dev dependency")
boto3 = pytest.importorskip("boto3")

BUCKET = "herald-media"


def test_sigv4_matches_the_aws_documented_example():
    """The signature of AWS's 'GET Object' SigV4 example (S3 docs) comes out byte for byte."""
    headers = sigv4_headers("GET", "https://examplebucket.s3.amazonaws.com/test.txt", region="us-east-1",
                            access_key="AKIAIOSFODNN7EXAMPLE",
                            secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", payload_hash=EMPTY_SHA256,
                            headers={"Range": "bytes=0-9"}, now=datetime(2013, 5, 24, tzinfo=UTC))
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a loopback port with an IAM user allowed s3:*, then signature checking switched on."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boot = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bootstrap",
                aws_secret_access_key="bootstrap")
    iam = boto3.client("iam", **boot)
    iam.create_user(UserName="herald")
    key = iam.create_access_key(UserName="herald")["AccessKey"]
    iam.put_user_policy(UserName="herald", PolicyName="media", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    boto3.client("s3", **boot).create_bucket(Bucket=BUCKET)
    httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()
    try:
        yield endpoint, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"inf")
        server.stop()


def bucket_keys(s3_server) -> list[str]:
    endpoint, access, secret = s3_server
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=access,
                      aws_secret_access_key=secret)
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


async def test_s3_storage_round_trip_with_signature_checks(s3_server, tmp_path):
    """commit/open/delete work over HTTP against a server that verifies every signature; a wrong secret is
    refused by the server and surfaces as StorageError."""
    endpoint, access, secret = s3_server
    storage = S3Storage(endpoint=endpoint, bucket=BUCKET, region="us-east-1", access_key=access, secret_key=secret,
                        spool_dir=tmp_path / "spool")
    data = mp4(3 * 1024 * 1024 + 17)
    spooled = storage.ensure_spool_dir() / "in.part"
    spooled.write_bytes(data)
    key = "ws_1/med_1/abc"
    await storage.commit(spooled, key, content_type="video/mp4", sha256=hashlib.sha256(data).hexdigest(),
                         size=len(data))
    assert not spooled.exists() and key in bucket_keys(s3_server)
    stored = await storage.open(key)
    assert stored.size == len(data)
    assert b"".join([chunk async for chunk in stored.chunks]) == data

    forged = S3Storage(endpoint=endpoint, bucket=BUCKET, region="us-east-1", access_key=access,
                       secret_key=secret + "x", spool_dir=tmp_path / "spool")
    with pytest.raises(StorageError, match="SignatureDoesNotMatch"):
        await forged.open(key)

    await storage.delete(key)
    assert key not in bucket_keys(s3_server)
    with pytest.raises(MissingObject):
        await storage.open(key)
    await storage.delete(key)  # deleting twice is fine


async def test_api_uploads_and_serves_from_the_bucket(database, temporal_env, tmp_path, s3_server):
    """With HERALD_MEDIA_STORAGE=s3 the presigned upload lands in the bucket (nothing stays on local disk), the
    download URL streams it back from the bucket, and DELETE removes the object."""
    endpoint, access, secret = s3_server
    data = mp4(256 * 1024)
    async with media_stack(database, temporal_env, tmp_path / "data", media_storage="s3",
                           media_s3_endpoint=endpoint, media_s3_bucket=BUCKET, media_s3_access_key=access,
                           media_s3_secret_key=secret) as stack:
        async with stack.client(stack.tenant.test_key) as c:
            media = await create(c, "clip.mp4", "video/mp4", size_bytes=len(data))
            assert (await upload(c, media, data)).status_code == 200
            keys = [k for k in bucket_keys(s3_server) if media["id"] in k]
            assert len(keys) == 1 and keys[0].startswith(f"{stack.tenant.workspace_id}/{media['id']}/")
            assert stored_files(stack) == []
            assert not any((tmp_path / "data" / "media-spool").iterdir())

            download = (await c.get(f"/v1/media/{media['id']}")).json()["data"]["download_url"]
            r = await c.get(download)
            assert r.status_code == 200 and r.content == data and r.headers["content-type"] == "video/mp4"

            assert (await c.delete(f"/v1/media/{media['id']}")).status_code == 200
            assert not [k for k in bucket_keys(s3_server) if media["id"] in k]
            assert (await c.get(download)).status_code == 404
