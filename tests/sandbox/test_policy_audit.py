"""policy_audit.py: parliament over the documents in a fresh moto."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import policy_audit
from awsstack import HERE, client
from conftest import Http

ACCOUNT = "123456789012"
EXPEL = "012205512454"
ORG_ID = "6e1a4f0c-2b7d-4c59-9a83-5d0f1e2b3c4a"


@pytest.fixture
def moto_url(moto_server):
    return moto_server


@pytest.fixture
def aws(moto_url):
    assert Http(moto_url).post("/moto-api/reset").status == 200
    return lambda service: client(service, moto_url)


def guide_documents(aws) -> None:
    """What the provider makes (provider/src/policy/documents.rs), in moto."""
    sqs, s3, kms, iam = aws("sqs"), aws("s3"), aws("kms"), aws("iam")
    queue_url = sqs.create_queue(QueueName="ExpelNotify")["QueueUrl"]
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:ExpelNotify"
    bucket = f"arn:aws:s3:::expel-cloudtrail-{ACCOUNT}-us-east-1"
    trail = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/expel-cloudtrail"
    key = kms.create_key()["KeyMetadata"]["Arn"]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps({
        "Version": "2012-10-17", "Id": "ExpelCloudTrailKeyPolicy", "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*",
             "Resource": "*"},
            {"Sid": "Allow CloudTrail to encrypt logs", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "kms:GenerateDataKey*", "Resource": "*",
             "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                                          f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"},
                           "StringEquals": {"aws:SourceArn": trail}}},
            {"Sid": "Allow cloudtrail bucket to encrypt/decrypt SQS", "Effect": "Allow",
             "Principal": {"Service": "s3.amazonaws.com"},
             "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
             "Condition": {"StringLike": {"aws:SourceArn": bucket},
                           "StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}))
    s3.create_bucket(Bucket=bucket.rsplit(":", 1)[1])
    s3.put_bucket_policy(Bucket=bucket.rsplit(":", 1)[1], Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl",
             "Resource": bucket, "Condition": {"StringEquals": {"aws:SourceArn": trail}}},
            {"Sid": "AWSCloudTrailWrite", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
             "Resource": f"{bucket}/AWSLogs/{ACCOUNT}/*",
             "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                            "aws:SourceArn": trail}}}]}))
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17", "Id": "__default_policy_ID", "Statement": [{
            "Sid": "__owner_statement", "Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": "SQS:SendMessage", "Resource": queue,
            "Condition": {"ArnLike": {"aws:SourceArn": bucket}}}]})})
    api = iam.create_policy(PolicyName="ExpelAPIPolicy", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "VisualEditor0", "Effect": "Allow",
             "Action": policy_audit.GUIDE_READ_ONLY_ACTIONS, "Resource": "*"},
            {"Sid": "ExpelReadQueue", "Effect": "Allow",
             "Action": ["sqs:DeleteMessage", "sqs:ReceiveMessage"], "Resource": queue},
            {"Sid": "ExpelReadLogs", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": f"{bucket}/*"},
            {"Sid": "ExpelDecryptLogs", "Effect": "Allow", "Action": ["kms:Decrypt"],
             "Resource": key}]}))["Policy"]["Arn"]
    iam.create_role(RoleName="ExpelServiceRole", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "ExpelAssumeRole", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{EXPEL}:root"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": ORG_ID}}}]}))
    iam.attach_role_policy(RoleName="ExpelServiceRole", PolicyArn=api)


def by_kind(report: dict) -> dict[str, dict]:
    return {d["kind"]: d for d in report["documents"]}


def test_the_guides_documents_pass_with_accepted_findings(aws, moto_url, capsys):
    guide_documents(aws)
    assert policy_audit.main(["--endpoint", moto_url]) == 0
    report = json.loads(capsys.readouterr().out)
    docs = by_kind(report)
    assert sorted(docs) == sorted(policy_audit.KINDS)
    assert report["unaccepted"] == []
    assert docs["iam_policy"]["name"] == "ExpelAPIPolicy"
    [star] = docs["iam_policy"]["findings"]
    assert star["issue"] == "RESOURCE_STAR" and "ExpelAPIPolicy" in star["accepted"]
    assert "iam:GetRole" in star["detail"]
    assert {f["issue"] for f in docs["kms_key_policy"]["findings"]} == {"RESOURCE_STAR"}
    assert all("this KMS key" in f["accepted"] for f in docs["kms_key_policy"]["findings"])
    for kind in ("s3_bucket_policy", "sqs_queue_policy", "iam_role_trust_policy"):
        assert docs[kind]["findings"] == [], docs[kind]
    assert docs["iam_role_trust_policy"]["name"] == "ExpelServiceRole"
    assert "Resource" in report["modes"]["iam_role_trust_policy"]
    # --community: more auditors, their findings on these documents accepted too
    for doc in policy_audit.list_documents(moto_url, ["us-east-1"]):
        result = policy_audit.audit_document(doc["kind"], doc["name"], doc["document"],
                                             doc["arn"], community=True)
        assert all(f["accepted"] for f in result["findings"]), result
        if doc["kind"] == "iam_role_trust_policy":
            assert {f["issue"] for f in result["findings"]} == {"CREDENTIALS_EXPOSURE"}


def test_a_bad_document_fails_naming_the_finding(aws, moto_url):
    aws("iam").create_policy(PolicyName="Broken", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "Typo", "Effect": "Allow", "Action": "s3:GetObjects",
             "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "BadCondition", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::b/*",
             "Condition": {"StringEquals": {"aws:SourceAcount": ACCOUNT}}},
            {"Sid": "WideOpen", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    # the real command line, as the Rust e2e test runs it
    run = subprocess.run([sys.executable, str(HERE / "policy_audit.py"), "--endpoint", moto_url],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert {(u["name"], u["issue"]) for u in report["unaccepted"]} == {
        ("Broken", "UNKNOWN_ACTION"), ("Broken", "UNKNOWN_CONDITION_FOR_ACTION"),
        ("Broken", "RESOURCE_STAR")}  # s3:GetObject on "*" is not one of the guide's reads
    details = {u["issue"]: u["detail"] for u in report["unaccepted"]}
    assert "s3:GetObjects" in details["UNKNOWN_ACTION"]
    assert "aws:SourceAcount" in details["UNKNOWN_CONDITION_FOR_ACTION"]


def test_unreachable_endpoint_is_exit_2(capsys):
    assert policy_audit.main(["--endpoint", "http://127.0.0.1:9"]) == 2
    assert "cannot list the documents" in capsys.readouterr().err


def test_documents_parliament_cannot_read_as_stored():
    # a trust policy has no Resource; a key policy's Sid may have spaces: both audited
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{EXPEL}:root"},
        "Action": "sts:AssumeRole"}]}
    assert policy_audit.audit_document("iam_role_trust_policy", "R", trust,
                                       f"arn:aws:iam::{ACCOUNT}:role/R")["findings"] == []
    malformed = policy_audit.audit_document("iam_role_trust_policy", "R", "{not json")
    assert [f["issue"] for f in malformed["findings"]] == ["MALFORMED_JSON"]
    assert malformed["findings"][0]["accepted"] is None
    key = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Dup licate", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
         "Action": "kms:Decrypt", "Resource": "*"},
        {"Sid": "Dup licate", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
         "Action": "kms:Nope", "Resource": "*"}]}
    issues = {f["issue"] for f in policy_audit.audit_document("kms_key_policy", "k", key)[
        "findings"]}
    assert {"DUPLICATE_SID", "UNKNOWN_ACTION"} <= issues and "INVALID_SID" not in issues
