"""Out-of-band changes and listings in moto, for the end-to-end tests (what a person with
console access might do behind Terraform's back). Talks to moto directly (MOTO_URL), so the
proxy's call counts only show the provider's calls.

    python oob.py <action> [name=value ...]
"""
import json
import os
import sys

import boto3

ACCOUNT = "123456789012"
REGION = "us-east-1"
DEFAULTS = {
    "bucket": f"expel-cloudtrail-{ACCOUNT}-{REGION}",
    "queue": "ExpelMasterCloudTrailNotify",
    "trail": "GlobalCloudTrail",
    "alias": "alias/ExpelCloudTrail",
    "role": "ExpelServiceRole",
    "policy": "ExpelAPIPolicy",
}


def client(name):
    return boto3.client(name, endpoint_url=os.environ["MOTO_URL"], region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def key_id(a):
    return client("kms").describe_key(KeyId=a["alias"])["KeyMetadata"]["KeyId"]


def queue_url(a):
    return client("sqs").get_queue_url(QueueName=a["queue"])["QueueUrl"]


def policy_arn(a):
    return f"arn:aws:iam::{ACCOUNT}:policy/{a['policy']}"


def key_policy_edit(a):
    kms = client("kms")
    k = key_id(a)
    doc = json.loads(kms.get_key_policy(KeyId=k, PolicyName="default")["Policy"])
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != "Allow cloudtrail bucket to encrypt/decrypt SQS"]
    kms.put_key_policy(KeyId=k, PolicyName="default", Policy=json.dumps(doc))


def key_disable(a):
    client("kms").disable_key(KeyId=key_id(a))


def key_schedule_deletion(a):
    client("kms").schedule_key_deletion(KeyId=key_id(a), PendingWindowInDays=7)


def bucket_encryption_remove(a):
    client("s3").delete_bucket_encryption(Bucket=a["bucket"])


def notification_remove(a):
    client("s3").put_bucket_notification_configuration(Bucket=a["bucket"], NotificationConfiguration={})


def queue_policy_change(a):
    sqs = client("sqs")
    url = queue_url(a)
    doc = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    doc["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"] = "arn:aws:s3:::someone-elses-bucket"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(doc)})


def trail_stop(a):
    client("cloudtrail").stop_logging(Name=a["trail"])


def trail_delete(a):
    client("cloudtrail").delete_trail(Name=a["trail"])


def role_trust_change(a):
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                                                   "Action": "sts:AssumeRole"}]}
    client("iam").update_assume_role_policy(RoleName=a["role"], PolicyDocument=json.dumps(doc))


def policy_detach(a):
    client("iam").detach_role_policy(RoleName=a["role"], PolicyArn=policy_arn(a))


def listing(a):
    """What exists, as JSON: the tests check destroy leaves only what is retained on purpose."""
    kms, s3, sqs, ct, iam = (client(n) for n in ("kms", "s3", "sqs", "cloudtrail", "iam"))
    keys = {}
    for k in kms.list_keys()["Keys"]:
        keys[k["KeyId"]] = kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"]
    out = {
        "keys": keys,
        "aliases": [x["AliasName"] for x in kms.list_aliases()["Aliases"] if not x["AliasName"].startswith("alias/aws/")],
        "buckets": [b["Name"] for b in s3.list_buckets().get("Buckets", [])],
        "queues": sqs.list_queues().get("QueueUrls", []),
        "trails": [t["Name"] for t in ct.describe_trails()["trailList"]],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"]],
        "policies": [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]],
    }
    print(json.dumps(out))


ACTIONS = {f.__name__.replace("_", "-"): f for f in (
    key_policy_edit, key_disable, key_schedule_deletion, bucket_encryption_remove, notification_remove,
    queue_policy_change, trail_stop, trail_delete, role_trust_change, policy_detach)}
ACTIONS["list"] = listing

if __name__ == "__main__":
    args = dict(DEFAULTS, **dict(kv.split("=", 1) for kv in sys.argv[2:]))
    ACTIONS[sys.argv[1]](args)
