"""The fault-injecting proxy in front of moto (sandbox/awsproxy.py), driven with boto3."""

from __future__ import annotations

import base64
import http.client
import json
import os
import tempfile
import threading
import time
import urllib.parse
import zlib
from pathlib import Path

import botocore.exceptions
import pytest

from awsstack import client, start_moto, start_proxy
from conftest import Http

FAKE_AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{}/aws4_request, "
             "SignedHeaders=host, Signature=" + "0" * 64)


@pytest.fixture(scope="module")
def stack():
    workdir = Path(tempfile.mkdtemp(prefix="awsproxy-test-"))
    moto_url, moto = start_moto(workdir)
    try:
        proxy_url, proxy = start_proxy(workdir, moto_url)
        try:
            yield moto_url, proxy_url
        finally:
            proxy.stop()
    finally:
        moto.stop()


@pytest.fixture
def proxy(stack) -> Http:
    moto_url, proxy_url = stack
    admin = Http(proxy_url)
    assert admin.post("/moto-api/reset").status == 200
    assert admin.post("/_proxy/reset").status == 204
    return admin


@pytest.fixture
def aws(stack, proxy):
    moto_url, proxy_url = stack
    return lambda service: client(service, proxy_url)


@pytest.fixture
def moto(stack):
    """Clients that talk to moto directly (to look behind the proxy)."""
    return lambda service: client(service, stack[0])


def fault(proxy: Http, **spec) -> dict:
    r = proxy.post("/_proxy/faults", spec)
    assert r.status == 201, r.body
    return r.body


def operations(proxy: Http) -> dict[str, int]:
    return proxy.get("/_proxy/calls").body["operations"]


def error_of(excinfo) -> tuple[str, int]:
    resp = excinfo.value.response
    return resp["Error"]["Code"], resp["ResponseMetadata"]["HTTPStatusCode"]


# ---- pass-through ----------------------------------------------------------------------------

def test_sqs_pass_through(aws, proxy, stack):
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="passthrough")["QueueUrl"]
    assert url.startswith(stack[1])  # moto builds the URL from the Host header: the proxy's
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    msgs = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in msgs] == ["hello"]
    assert operations(proxy) == {"sqs.CreateQueue": 1, "sqs.ReceiveMessage": 1,
                                 "sqs.SendMessage": 1}


def test_s3_pass_through_small_and_1mb(aws):
    s3 = aws("s3")
    s3.create_bucket(Bucket="proxy-bucket")
    big = os.urandom(1 << 20)
    s3.put_object(Bucket="proxy-bucket", Key="small.txt", Body=b"hi")
    s3.put_object(Bucket="proxy-bucket", Key="dir/big.bin", Body=big, ChecksumAlgorithm="CRC32")
    assert s3.get_object(Bucket="proxy-bucket", Key="small.txt")["Body"].read() == b"hi"
    got = s3.get_object(Bucket="proxy-bucket", Key="dir/big.bin")
    assert got["Body"].read() == big and got["ContentLength"] == len(big)
    head = s3.head_object(Bucket="proxy-bucket", Key="dir/big.bin")
    assert head["ContentLength"] == len(big)  # HEAD keeps moto's Content-Length, no body
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket="proxy-bucket", Key="missing")
    assert error_of(e)[1] == 404


def _raw_put(proxy_url: str, path: str, headers: dict[str, str], body: bytes,
             chunks: list[bytes] | None = None) -> int:
    """PUT with http.client: a Content-Length body, or HTTP/1.1 chunked when chunks given."""
    u = urllib.parse.urlsplit(proxy_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if chunks is None:
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
        else:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for c in chunks:
                conn.send(f"{len(c):x}\r\n".encode() + c + b"\r\n")
            conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_s3_chunked_and_aws_chunked_bodies_pass_unchanged(aws, proxy, stack):
    s3 = aws("s3")
    s3.create_bucket(Bucket="chunky")
    auth = {"Authorization": FAKE_AUTH.format("s3"), "Host": urllib.parse.urlsplit(stack[1]).netloc}
    # HTTP/1.1 Transfer-Encoding: chunked
    parts = [os.urandom(70_000), os.urandom(1000), b"end"]
    assert _raw_put(stack[1], "/chunky/te.bin",
                    {**auth, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, b"", parts) == 200
    assert s3.get_object(Bucket="chunky", Key="te.bin")["Body"].read() == b"".join(parts)
    # aws-chunked with a trailing checksum, as the SDKs send PutObject
    data = os.urandom(200_000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = (f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n"
            + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode())
    status = _raw_put(stack[1], "/chunky/aws.bin", {
        **auth, "Content-Encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32"}, body)
    assert status == 200
    assert s3.get_object(Bucket="chunky", Key="aws.bin")["Body"].read() == data
    assert operations(proxy)["s3.PutObject"] == 2


def test_iam_and_sts_pass_through(aws, moto):
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": "arn:aws:iam::012205512454:root"}}]}
    role = aws("iam").create_role(RoleName="ProxyRole", AssumeRolePolicyDocument=json.dumps(trust))
    assert role["Role"]["RoleName"] == "ProxyRole"
    assert moto("iam").get_role(RoleName="ProxyRole")["Role"]["AssumeRolePolicyDocument"] == trust
    assert aws("sts").get_caller_identity()["Account"] == "123456789012"


def test_moto_api_passes_untouched_and_uncounted(proxy):
    fault(proxy, service="*", operation="*", kind="status", status=500, count=-1)
    r = proxy.get("/moto-api/data.json")
    assert r.status == 200 and isinstance(r.body, dict)
    assert proxy.post("/moto-api/reset").status == 200
    assert proxy.get("/_proxy/calls").body["total"] == 0


# ---- faults ----------------------------------------------------------------------------------

def test_status_500_on_create_queue_then_success(aws, proxy, moto):
    fault(proxy, service="sqs", operation="CreateQueue", nth=1, count=1, kind="status", status=500)
    sqs = aws("sqs")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.create_queue(QueueName="flaky")
    assert error_of(e) == ("InternalFailure", 500)
    assert moto("sqs").list_queues().get("QueueUrls", []) == []  # "before": moto never saw it
    assert sqs.create_queue(QueueName="flaky")["QueueUrl"].endswith("/flaky")
    assert operations(proxy) == {"sqs.CreateQueue": 2}
    f = proxy.get("/_proxy/faults").body["faults"][0]
    assert (f["matched"], f["fired"], f["exhausted"]) == (2, 1, True)
    log = proxy.get("/_proxy/calls").body["log"]
    assert [(c["status"], c["outcome"]) for c in log] == [(500, "fault"), (200, "forwarded")]


def test_throttling_on_iam_create_role(aws, proxy, moto):
    fault(proxy, service="iam", operation="CreateRole", kind="status", status=400,
          code="Throttling")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        aws("iam").create_role(RoleName="Throttled", AssumeRolePolicyDocument="{}")
    assert error_of(e) == ("Throttling", 400)
    assert e.value.response["Error"]["Type"] == "Sender"
    with pytest.raises(botocore.exceptions.ClientError):
        moto("iam").get_role(RoleName="Throttled")


def test_json_and_s3_error_envelopes(aws, proxy):
    fault(proxy, service="kms", operation="CreateKey", code="ThrottlingException")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        aws("kms").create_key()
    assert error_of(e) == ("ThrottlingException", 400)
    s3 = aws("s3")
    s3.create_bucket(Bucket="slow")
    fault(proxy, service="s3", operation="PutBucketPolicy", status=503)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_policy(Bucket="slow", Policy="{}")
    assert error_of(e) == ("SlowDown", 503)
    fault(proxy, service="s3", operation="HeadBucket", status=500)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_bucket(Bucket="slow")
    assert error_of(e)[1] == 500


def test_after_phase_is_a_lost_response(aws, proxy, moto):
    fault(proxy, service="sqs", operation="CreateQueue", kind="status", status=500, phase="after")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        aws("sqs").create_queue(QueueName="lost-response")
    assert error_of(e)[1] == 500
    assert "carried out" in e.value.response["Error"]["Message"]
    urls = moto("sqs").list_queues()["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in urls] == ["lost-response"]


def test_reset_is_a_connection_error(aws, proxy, moto):
    fault(proxy, service="sts", operation="GetCallerIdentity", kind="reset")
    sts = aws("sts")
    with pytest.raises(botocore.exceptions.HTTPClientError):
        sts.get_caller_identity()
    assert sts.get_caller_identity()["Account"] == "123456789012"
    # "after": moto carried the call out, then the connection dies
    fault(proxy, service="sqs", operation="CreateQueue", kind="reset", phase="after")
    with pytest.raises(botocore.exceptions.HTTPClientError):
        aws("sqs").create_queue(QueueName="reset-after")
    assert len(moto("sqs").list_queues()["QueueUrls"]) == 1
    outcomes = [c["outcome"] for c in proxy.get("/_proxy/calls").body["log"]]
    assert outcomes == ["reset", "forwarded", "reset"]


def test_latency_50ms_per_call(aws, proxy):
    sts = aws("sts")
    sts.get_caller_identity()  # warm up moto's STS backend and the client
    fault(proxy, kind="latency", latency_ms=50, service="*", operation="*", count=-1)
    for _ in range(3):
        t0 = time.monotonic()
        sts.get_caller_identity()
        assert time.monotonic() - t0 >= 0.050
    log = proxy.get("/_proxy/calls").body["log"]
    assert all(c["ms"] >= 50 for c in log[1:]) and log[0]["ms"] < 50


def test_concurrent_calls_are_served_in_parallel(stack, proxy):
    fault(proxy, kind="latency", latency_ms=300, count=-1)
    errors: list[Exception] = []
    clients = [client("sqs", stack[1]) for _ in range(12)]  # made up front: slow, CPU-bound
    start = threading.Barrier(len(clients) + 1)

    def worker(i: int) -> None:
        start.wait()
        try:
            clients[i].create_queue(QueueName=f"par-{i}")
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert not errors
    assert elapsed < 12 * 0.3 / 3, elapsed  # serial would take 3.6 s
    assert operations(proxy) == {"sqs.CreateQueue": 12}


def test_nth_and_count_window(aws, proxy):
    fault(proxy, service="sts", operation="getcalleridentity", nth=2, count=2, status=503)
    sts = aws("sts")
    results = []
    for _ in range(5):
        try:
            sts.get_caller_identity()
            results.append("ok")
        except botocore.exceptions.ClientError as err:
            results.append(err.response["Error"]["Code"])
    assert results == ["ok", "ServiceUnavailable", "ServiceUnavailable", "ok", "ok"]


def test_call_counts_and_operation_names(aws, proxy):
    sqs, s3, kms, iam, ct = aws("sqs"), aws("s3"), aws("kms"), aws("iam"), aws("cloudtrail")
    q = sqs.create_queue(QueueName="counted")["QueueUrl"]
    sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])
    sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": []}))
    ct.describe_trails()
    iam.list_roles()
    s3.create_bucket(Bucket="counted")
    s3.put_bucket_policy(Bucket="counted", Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": []}))
    s3.put_bucket_encryption(Bucket="counted", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_notification_configuration(Bucket="counted",
                                              NotificationConfiguration={})
    s3.get_bucket_notification_configuration(Bucket="counted")
    s3.put_public_access_block(Bucket="counted", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True})
    s3.put_bucket_versioning(Bucket="counted", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="counted", Key="a/b", Body=b"x")
    s3.put_object_tagging(Bucket="counted", Key="a/b",
                          Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    s3.copy_object(Bucket="counted", Key="c", CopySource="counted/a/b")
    s3.list_objects_v2(Bucket="counted")
    s3.delete_objects(Bucket="counted", Delete={"Objects": [{"Key": "c"}]})
    s3.delete_object(Bucket="counted", Key="a/b")
    s3.delete_bucket_policy(Bucket="counted")
    s3.list_buckets()
    assert operations(proxy) == {
        "cloudtrail.DescribeTrails": 1, "iam.ListRoles": 1, "kms.CreateKey": 1,
        "kms.PutKeyPolicy": 1, "s3.CopyObject": 1, "s3.CreateBucket": 1,
        "s3.DeleteBucketPolicy": 1, "s3.DeleteObject": 1, "s3.DeleteObjects": 1,
        "s3.GetBucketNotificationConfiguration": 1, "s3.ListBuckets": 1,
        "s3.ListObjectsV2": 1, "s3.PutBucketEncryption": 1,
        "s3.PutBucketNotificationConfiguration": 1, "s3.PutBucketPolicy": 1,
        "s3.PutBucketVersioning": 1, "s3.PutObject": 1, "s3.PutObjectTagging": 1,
        "s3.PutPublicAccessBlock": 1, "sqs.CreateQueue": 1, "sqs.GetQueueAttributes": 2,
    }
    calls = proxy.get("/_proxy/calls").body
    assert calls["total"] == 22 and len(calls["log"]) == 22
    assert proxy.get("/_proxy/calls?since=20").body["log"][0]["seq"] == 21
    assert proxy.delete("/_proxy/calls").status == 204
    assert proxy.get("/_proxy/calls").body == {"total": 0, "operations": {}, "log": []}


def test_admin_validation_and_listing(proxy):
    for spec in ({"kind": "explode"}, {"kind": "latency"}, {"status": 200},
                 {"status": 500, "colour": "red"}, {"kind": "reset", "status": 500},
                 {"status": 500, "count": 0}, {"status": 500, "phase": "during"}, [1]):
        assert proxy.post("/_proxy/faults", spec).status == 400, spec
    f = fault(proxy, service="sqs", operation="CreateQueue", status=500)
    assert f["kind"] == "status" and f["nth"] == 1 and f["count"] == 1
    assert [x["id"] for x in proxy.get("/_proxy/faults").body["faults"]] == [f["id"]]
    assert proxy.delete(f"/_proxy/faults/{f['id']}").status == 204
    assert proxy.delete(f"/_proxy/faults/{f['id']}").status == 404
    fault(proxy, kind="latency", latency_ms=5)
    assert proxy.delete("/_proxy/faults").status == 204
    assert proxy.get("/_proxy/faults").body == {"faults": []}
    assert proxy.get("/_proxy/health").body["status"] == "ok"
    assert proxy.get("/_proxy/nothing").status == 404


def test_upstream_file_is_read_when_first_needed(stack):
    """scripts/stack starts the proxy before moto's port is known (--upstream-file)."""
    workdir = Path(tempfile.mkdtemp(prefix="awsproxy-file-"))
    url_file = workdir / "moto.url"
    proxy_url, proc = start_proxy(workdir, upstream_file=url_file)
    try:
        admin = Http(proxy_url)
        assert admin.get("/_proxy/health").body == {"status": "ok", "upstream": None}
        done: dict[str, str] = {}

        def call() -> None:
            done["account"] = client("sts", proxy_url).get_caller_identity()["Account"]

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.3)  # the call waits for the file
        url_file.write_text(stack[0] + "\n")
        t.join(10)
        assert done == {"account": "123456789012"}
        assert admin.get("/_proxy/health").body["upstream"] == stack[0]
    finally:
        proc.stop()

