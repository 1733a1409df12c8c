"""The fault-injecting proxy in front of moto (sandbox/awsproxy.py), driven with boto3."""

from __future__ import annotations

import base64
import hashlib
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

from awsstack import client, start_proxy
from conftest import Http

EVENTUAL_OFF = {"enabled": False, "refusals": 2, "assume_role_seconds": 5}
FAKE_AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{}/aws4_request, "
             "SignedHeaders=host, Signature=" + "0" * 64)


@pytest.fixture(scope="module")
def stack(moto_server):
    workdir = Path(tempfile.mkdtemp(prefix="awsproxy-test-"))
    proxy_url, proxy = start_proxy(workdir, moto_server)
    try:
        yield moto_server, proxy_url
    finally:
        proxy.stop()


@pytest.fixture
def proxy(stack) -> Http:
    moto_url, proxy_url = stack
    admin = Http(proxy_url)
    assert admin.post("/moto-api/reset").status == 200
    assert admin.post("/_proxy/reset").status == 204
    assert admin.call("PUT", "/_proxy/eventual", EVENTUAL_OFF).status == 200
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


def test_get_bucket_versioning_has_aws_root_element(aws):
    """moto's <GetBucketVersioningResponse> root reaches the client as AWS's
    <VersioningConfiguration> (the Rust SDK accepts no other)."""
    s3 = aws("s3")
    raw: list[bytes] = []
    s3.meta.events.register("after-call.s3.GetBucketVersioning",
                            lambda http_response, **_: raw.append(http_response.content))
    s3.create_bucket(Bucket="versioned-bucket")
    assert "Status" not in s3.get_bucket_versioning(Bucket="versioned-bucket")
    s3.put_bucket_versioning(Bucket="versioned-bucket",
                             VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket="versioned-bucket")["Status"] == "Enabled"
    assert b"<VersioningConfiguration" in raw[0] and b"GetBucketVersioning" not in raw[0], raw
    assert b"<Status>Enabled</Status></VersioningConfiguration>" in raw[1], raw


def test_overlapping_bucket_notifications_are_refused_as_s3_does(aws):
    """S3 refuses two configurations that share an event type with overlapping key filters
    (moto stores them); disjoint prefixes, or other event types, are accepted."""
    s3, sqs = aws("s3"), aws("sqs")
    s3.create_bucket(Bucket="shared-logs")
    url = sqs.create_queue(QueueName="consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def conf(*rules):
        return {"QueueConfigurations": [
            {"Id": f"c{i}", "QueueArn": arn, "Events": events,
             **({"Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}}
                if prefix else {})}
            for i, (events, prefix) in enumerate(rules)]}

    for refused in (
        conf((["s3:ObjectCreated:*"], ""), (["s3:ObjectCreated:Put"], "AWSLogs/")),
        conf((["s3:ObjectCreated:Put"], "AWSLogs/"), (["s3:ObjectCreated:Put"], "AWSLogs/o-1/")),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_bucket_notification_configuration(Bucket="shared-logs",
                                                     NotificationConfiguration=refused)
        assert error_of(e) == ("InvalidArgument", 400)
        assert "Configurations overlap" in str(e.value)
    for accepted in (
        conf((["s3:ObjectCreated:*"], "AWSLogs/"), (["s3:ObjectCreated:*"], "Digest/")),
        conf((["s3:ObjectCreated:*"], ""), (["s3:ObjectRemoved:*"], "")),
    ):
        s3.put_bucket_notification_configuration(Bucket="shared-logs",
                                                 NotificationConfiguration=accepted)
    assert len(s3.get_bucket_notification_configuration(Bucket="shared-logs")["QueueConfigurations"]) == 2


def test_iam_and_sts_pass_through(aws, moto):
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": "arn:aws:iam::012205512454:root"}}]}
    role = aws("iam").create_role(RoleName="ProxyRole", AssumeRolePolicyDocument=json.dumps(trust))
    assert role["Role"]["RoleName"] == "ProxyRole"
    assert moto("iam").get_role(RoleName="ProxyRole")["Role"]["AssumeRolePolicyDocument"] == trust
    assert aws("sts").get_caller_identity()["Account"] == "123456789012"


def test_sts_role_calls_record_what_they_asked_for_but_never_the_token(aws, proxy):
    sts = aws("sts")
    sts.assume_role(
        RoleArn="arn:aws:iam::123456789012:role/Deploy", RoleSessionName="ci",
        DurationSeconds=900, Policy='{"Version":"2012-10-17","Statement":[]}',
        PolicyArns=[{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
        Tags=[{"Key": "team", "Value": "sec"}, {"Key": "env", "Value": "ci"}],
        TransitiveTagKeys=["team"], SourceIdentity="ci-bot", ExternalId="x-123")
    sts.assume_role_with_web_identity(
        RoleArn="arn:aws:iam::123456789012:role/Oidc", RoleSessionName="gh",
        WebIdentityToken="eyJ-not-a-real-token")
    log = proxy.get("/_proxy/calls").body["log"]
    sessions = [e["session"] for e in log if "session" in e]
    assert sessions[0] == {
        "RoleArn": "arn:aws:iam::123456789012:role/Deploy", "RoleSessionName": "ci",
        "DurationSeconds": "900", "Policy": '{"Version":"2012-10-17","Statement":[]}',
        "SourceIdentity": "ci-bot", "PolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        "Tags": {"team": "sec", "env": "ci"}, "TransitiveTagKeys": ["team"],
        "ExternalId": True}
    web = sessions[1]
    assert web["RoleArn"].endswith("role/Oidc") and web["ExternalId"] is False
    assert "eyJ-not-a-real-token" not in json.dumps(log)
    assert web["WebIdentityTokenSha256"] == hashlib.sha256(b"eyJ-not-a-real-token").hexdigest()


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



# ---- eventual consistency ---------------------------------------------------------------------

POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}]})
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole",
     "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]})


def eventual(proxy: Http, **settings) -> dict:
    r = proxy.call("PUT", "/_proxy/eventual", settings)
    assert r.status == 200, r.body
    return r.body


def refused(call, times: int) -> list[botocore.exceptions.ClientError]:
    """Run call() `times` times, each must fail; then once more, which must succeed."""
    errors = []
    for _ in range(times):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        errors.append(e.value)
    call()
    return errors


def code_status_message(err: botocore.exceptions.ClientError) -> tuple[str, int, str]:
    return (err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"],
            err.response["Error"]["Message"])


def test_eventual_s3_new_bucket_refused_k_times(aws, proxy, moto):
    s3 = aws("s3")
    s3.create_bucket(Bucket="old-bucket")  # made while the mode is off: never refused
    eventual(proxy, enabled=True, refusals=2)
    s3.put_bucket_policy(Bucket="old-bucket", Policy=POLICY.replace("sqs:ReceiveMessage",
                                                                     "s3:GetObject"))
    s3.create_bucket(Bucket="new-bucket")
    errors = refused(lambda: s3.put_bucket_versioning(
        Bucket="new-bucket", VersioningConfiguration={"Status": "Enabled"}), 2)
    for err in errors:
        assert code_status_message(err) == ("NoSuchBucket", 404,
                                            "The specified bucket does not exist")
        assert err.response["Error"]["BucketName"] == "new-bucket"
    assert moto("s3").get_bucket_versioning(Bucket="new-bucket")["Status"] == "Enabled"
    # K is per bucket: the other operations on it now pass, a second new bucket has its own K
    s3.put_bucket_tagging(Bucket="new-bucket", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    s3.create_bucket(Bucket="newer-bucket")
    for op in (lambda: s3.put_public_access_block(Bucket="newer-bucket",
                                                  PublicAccessBlockConfiguration={
                                                      "BlockPublicAcls": True}),
               lambda: s3.put_bucket_encryption(Bucket="newer-bucket",
                                                ServerSideEncryptionConfiguration={"Rules": [{
                                                    "ApplyServerSideEncryptionByDefault": {
                                                        "SSEAlgorithm": "AES256"}}]})):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            op()
        assert error_of(e) == ("NoSuchBucket", 404)
    s3.put_bucket_notification_configuration(Bucket="newer-bucket",
                                              NotificationConfiguration={})
    log = proxy.get("/_proxy/calls").body["log"]
    assert [c["outcome"] for c in log if c["outcome"] == "eventual"] == ["eventual"] * 4
    assert [(c["operation"], c["status"]) for c in log if c["outcome"] == "eventual"] == [
        ("PutBucketVersioning", 404), ("PutBucketVersioning", 404),
        ("PutPublicAccessBlock", 404), ("PutBucketEncryption", 404)]
    assert proxy.get("/_proxy/eventual").body["refused"] == {
        "s3.PutBucketEncryption": 1, "s3.PutBucketVersioning": 2, "s3.PutPublicAccessBlock": 1}


def test_eventual_kms_new_key_and_create_trail(aws, proxy, moto):
    kms, ct, s3 = aws("kms"), aws("cloudtrail"), aws("s3")
    s3.create_bucket(Bucket="trail-logs")
    eventual(proxy, enabled=True, refusals=2)
    key = kms.create_key()["KeyMetadata"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "kms:*", "Resource": "*"}]})
    errors = refused(lambda: kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default",
                                                Policy=policy), 2)
    for err in errors:
        assert code_status_message(err) == ("NotFoundException", 400,
                                            f"Key '{key['Arn']}' does not exist")
    kms.enable_key_rotation(KeyId=key["Arn"])  # K used up for this key
    # A second key: CreateAlias by ARN refused twice; CreateTrail through the alias K times.
    key2 = kms.create_key()["KeyMetadata"]
    errors = refused(lambda: kms.create_alias(AliasName="alias/expel-trail",
                                              TargetKeyId=key2["Arn"]), 2)
    assert {code_status_message(e)[:2] for e in errors} == {("NotFoundException", 400)}
    kms.tag_resource(KeyId=key2["KeyId"], Tags=[{"TagKey": "k", "TagValue": "v"}])
    errors = refused(lambda: ct.create_trail(Name="trail-one", S3BucketName="trail-logs",
                                             KmsKeyId="alias/expel-trail"), 2)
    for err in errors:
        assert code_status_message(err) == (
            "KmsKeyNotFoundException", 400, "KMS key ID alias/expel-trail does not exist, "
            "or s3 bucket and key are not in the same region.")
    trails = moto("cloudtrail").describe_trails()["trailList"]
    assert [t["Name"] for t in trails] == ["trail-one"]
    # ... and by key ARN for the first key (its own K for CreateTrail)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ct.create_trail(Name="trail-two", S3BucketName="trail-logs", KmsKeyId=key["Arn"])
    assert error_of(e) == ("KmsKeyNotFoundException", 400)
    assert proxy.get("/_proxy/eventual").body["refused"] == {
        "cloudtrail.CreateTrail": 3, "kms.CreateAlias": 2, "kms.PutKeyPolicy": 2}


def test_eventual_iam_attach_role_policy(aws, proxy, moto):
    iam = aws("iam")
    old_role = iam.create_role(RoleName="OldRole", AssumeRolePolicyDocument=TRUST)["Role"]
    old_policy = iam.create_policy(PolicyName="OldPolicy", PolicyDocument=POLICY)["Policy"]
    eventual(proxy, enabled=True, refusals=2)
    iam.create_role(RoleName="NewRole", AssumeRolePolicyDocument=TRUST)
    errors = refused(lambda: iam.attach_role_policy(RoleName="NewRole",
                                                    PolicyArn=old_policy["Arn"]), 2)
    assert [code_status_message(e) for e in errors] == [
        ("NoSuchEntity", 404, "The role with name NewRole cannot be found.")] * 2
    assert errors[0].response["Error"]["Type"] == "Sender"
    new_policy = iam.create_policy(PolicyName="NewPolicy", PolicyDocument=POLICY)["Policy"]
    errors = refused(lambda: iam.attach_role_policy(RoleName=old_role["RoleName"],
                                                    PolicyArn=new_policy["Arn"]), 2)
    assert [code_status_message(e) for e in errors] == [
        ("NoSuchEntity", 404,
         f"Policy {new_policy['Arn']} does not exist or is not attachable.")] * 2
    # new role and new policy together: refused K times, naming the role
    iam.create_role(RoleName="Both", AssumeRolePolicyDocument=TRUST)
    both = iam.create_policy(PolicyName="BothPolicy", PolicyDocument=POLICY)["Policy"]["Arn"]
    errors = refused(lambda: iam.attach_role_policy(RoleName="Both", PolicyArn=both), 2)
    assert {code_status_message(e)[2] for e in errors} == {
        "The role with name Both cannot be found."}
    attached = moto("iam").list_attached_role_policies(RoleName="Both")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [both]
    assert proxy.get("/_proxy/eventual").body["refused"] == {"iam.AttachRolePolicy": 6}


def test_eventual_assume_role_refused_for_n_seconds(aws, proxy):
    eventual(proxy, enabled=True, assume_role_seconds=1)
    role = aws("iam").create_role(RoleName="Fresh", AssumeRolePolicyDocument=TRUST)["Role"]
    created = time.monotonic()
    sts = aws("sts")
    caller = sts.get_caller_identity()["Arn"]
    attempts = 0
    while True:
        try:
            sts.assume_role(RoleArn=role["Arn"], RoleSessionName="session")
            break
        except botocore.exceptions.ClientError as err:
            attempts += 1
            assert code_status_message(err) == (
                "AccessDenied", 403, f"User: {caller} is not authorized to perform: "
                                     f"sts:AssumeRole on resource: {role['Arn']}")
            assert err.response["Error"]["Type"] == "Sender"
            time.sleep(0.2)
    # Refused until the window ends, however many attempts fit in it (fewer on a loaded machine).
    assert attempts >= 1 and time.monotonic() - created >= 1.0
    assert proxy.get("/_proxy/eventual").body["refused"] == {"sts.AssumeRole": attempts}


def test_eventual_off_refuses_nothing(aws, proxy):
    s3, kms, iam, sts = aws("s3"), aws("kms"), aws("iam"), aws("sts")
    s3.create_bucket(Bucket="quiet")
    s3.put_bucket_policy(Bucket="quiet", Policy=POLICY.replace("sqs:ReceiveMessage",
                                                                "s3:GetObject"))
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key)
    role = iam.create_role(RoleName="Quiet", AssumeRolePolicyDocument=TRUST)["Role"]
    policy = iam.create_policy(PolicyName="Quiet", PolicyDocument=POLICY)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="Quiet", PolicyArn=policy)
    sts.assume_role(RoleArn=role["Arn"], RoleSessionName="session")
    body = proxy.get("/_proxy/eventual").body
    assert body["enabled"] is False and body["refused"] == {}
    assert all(not v for v in body["tracked"].values())
    assert {c["outcome"] for c in proxy.get("/_proxy/calls").body["log"]} == {"forwarded"}


def test_eventual_admin_route(aws, proxy):
    body = proxy.get("/_proxy/eventual").body
    assert {k: body[k] for k in ("enabled", "refusals", "assume_role_seconds")} == EVENTUAL_OFF
    for bad in ({"enabled": "yes"}, {"refusals": -1}, {"refusals": 1.5}, {"refusals": True},
                {"assume_role_seconds": "5"}, {"assume_role_seconds": -1}, {"colour": 1},
                [1], "nope"):
        r = proxy.call("PUT", "/_proxy/eventual", bad)
        assert r.status == 400 and "error" in r.body, bad
    assert proxy.call("PUT", "/_proxy/eventual", "{not json").status == 400
    assert proxy.get("/_proxy/eventual").body["enabled"] is False  # nothing changed
    got = eventual(proxy, enabled=True, refusals=3)  # a subset; the rest stays
    assert (got["enabled"], got["refusals"], got["assume_role_seconds"]) == (True, 3, 5)
    assert eventual(proxy, **got)["refusals"] == 3  # GET's answer can be PUT back
    aws("s3").create_bucket(Bucket="tracked")
    assert proxy.get("/_proxy/eventual").body["tracked"]["buckets"] == {"tracked": 3}
    # reset: settings stay, tracked objects and counters go
    assert proxy.post("/_proxy/reset").status == 204
    after = proxy.get("/_proxy/eventual").body
    assert (after["enabled"], after["refusals"]) == (True, 3)
    assert after["tracked"]["buckets"] == {} and after["refused"] == {}
    aws("s3").put_bucket_versioning(Bucket="tracked",
                                    VersioningConfiguration={"Status": "Enabled"})
    # turning the mode off forgets what it tracked
    aws("s3").create_bucket(Bucket="tracked2")
    eventual(proxy, enabled=False)
    eventual(proxy, enabled=True)
    aws("s3").put_bucket_versioning(Bucket="tracked2",
                                    VersioningConfiguration={"Status": "Enabled"})


def internal_client(service: str, endpoint: str):
    c = client(service, endpoint)
    c.meta.events.register("before-sign",
                           lambda request, **_: request.headers.__setitem__(
                               "x-sandbox-internal", "workbench"))
    return c


def test_internal_calls_are_refused_but_not_counted(aws, proxy, stack):
    eventual(proxy, enabled=True, assume_role_seconds=30)
    role = aws("iam").create_role(RoleName="Internal", AssumeRolePolicyDocument=TRUST)["Role"]
    fault(proxy, service="sts", operation="*", status=500, count=-1)  # never hits internal calls
    sts = internal_client("sts", stack[1])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="wb")
    assert error_of(e) == ("AccessDenied", 403)
    sts.get_caller_identity()
    assert operations(proxy) == {"iam.CreateRole": 1}
    body = proxy.get("/_proxy/eventual").body
    assert body["refused"] == {} and body["refused_internal"] == {"sts.AssumeRole": 1}
