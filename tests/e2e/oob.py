"""Out-of-band changes and listings in moto, for the end-to-end tests (what a person with
console access might do behind Terraform's back). Talks to moto directly (MOTO_URL), so the
proxy's call counts only show the provider's calls.

    python oob.py <action> [name=value ...]

`account=<id>` acts in another account of the organization, through its
OrganizationAccountAccessRole (moto maps the assumed role's credentials to that account).
"""
import json
import os
import sys

import boto3
import botocore.exceptions

ACCOUNT = "123456789012"
REGION = "us-east-1"
DEFAULTS = {
    "bucket": f"expel-cloudtrail-{ACCOUNT}-{REGION}",
    "queue": "ExpelMasterCloudTrailNotify",
    "trail": "GlobalCloudTrail",
    "alias": "alias/ExpelCloudTrail",
    "role": "ExpelServiceRole",
    "policy": "ExpelAPIPolicy",
    "account": ACCOUNT,
    "members": "2",
}
ORG_ROLE = "OrganizationAccountAccessRole"
_ACCOUNT = [ACCOUNT]


def client(name):
    kw = dict(endpoint_url=os.environ["MOTO_URL"], region_name=REGION,
              aws_access_key_id="testing", aws_secret_access_key="testing")
    if _ACCOUNT[0] != ACCOUNT:
        creds = boto3.client("sts", **kw).assume_role(
            RoleArn=f"arn:aws:iam::{_ACCOUNT[0]}:role/{ORG_ROLE}", RoleSessionName="oob")["Credentials"]
        kw.update(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds["SessionToken"])
    return boto3.client(name, **kw)


def key_id(a):
    return client("kms").describe_key(KeyId=a["alias"])["KeyMetadata"]["KeyId"]


def queue_url(a):
    return client("sqs").get_queue_url(QueueName=a["queue"])["QueueUrl"]


def policy_arn(a):
    return f"arn:aws:iam::{_ACCOUNT[0]}:policy/{a['policy']}"


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


def policy_edit(a):
    iam = client("iam")
    doc = {"Version": "2012-10-17", "Statement": [{"Sid": "ExpelReadOnly", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.create_policy_version(PolicyArn=policy_arn(a), PolicyDocument=json.dumps(doc), SetAsDefault=True)


def role_delete(a):
    iam = client("iam")
    for p in iam.list_attached_role_policies(RoleName=a["role"])["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=a["role"], PolicyArn=p["PolicyArn"])
    for name in iam.list_role_policies(RoleName=a["role"])["PolicyNames"]:
        iam.delete_role_policy(RoleName=a["role"], PolicyName=name)
    iam.delete_role(RoleName=a["role"])


def role_foreign(a):
    """A role with our name that this provider did not make (no ownership tag)."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                                                    "Action": "sts:AssumeRole"}]}
    client("iam").create_role(RoleName=a["role"], AssumeRolePolicyDocument=json.dumps(trust))


def log_key(i):
    """A key laid out as CloudTrail writes its log files."""
    return f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/01/01/{ACCOUNT}_CloudTrail_{REGION}_20260101T0000Z_{i:05d}.json.gz"


def bucket_versions(a):
    """Log files with history in the log bucket: `null` files written before versioning is
    turned on (their version id is "null"), then versioning on, then `keys` files written
    `versions` times each and the first `markers` of them deleted (a delete marker each), and
    `uploads` unfinished multipart uploads. Prints the counts of versions and delete markers, as JSON."""
    from concurrent.futures import ThreadPoolExecutor
    s3 = client("s3")
    b = a["bucket"]
    null, keys, versions, markers = (int(a.get(k, d)) for k, d in
                                     (("null", 0), ("keys", 0), ("versions", 1), ("markers", 0)))
    for i in range(null):
        s3.put_object(Bucket=b, Key=log_key(100000 - 1 - i), Body=b"{}")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})

    def put(job):
        s3.put_object(Bucket=b, Key=log_key(job[0]), Body=f'{{"v": {job[1]}}}'.encode())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, [(i, v) for v in range(versions) for i in range(keys)]))
    for start in range(0, markers, 1000):
        objs = [{"Key": log_key(i)} for i in range(start, min(markers, start + 1000))]
        s3.delete_objects(Bucket=b, Delete={"Objects": objs, "Quiet": True})
    # `uploads` multipart uploads started and never finished (a part each).
    for i in range(int(a.get("uploads", 0))):
        key = f"exports/unfinished-{i}.json.gz"
        up = s3.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
        s3.upload_part(Bucket=b, Key=key, UploadId=up, PartNumber=1, Body=b"part")
    counts = {"versions": 0, "delete_markers": 0}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=b):
        counts["versions"] += len(page.get("Versions", []))
        counts["delete_markers"] += len(page.get("DeleteMarkers", []))
    print(json.dumps(counts))


def security_off(a):
    """What a person undoing the log bucket's security defaults does: KMS key rotation off,
    bucket versioning suspended, server access logging removed."""
    client("kms").disable_key_rotation(KeyId=key_id(a))
    s3 = client("s3")
    s3.put_bucket_versioning(Bucket=a["bucket"], VersioningConfiguration={"Status": "Suspended"})
    s3.put_bucket_logging(Bucket=a["bucket"], BucketLoggingStatus={})


def security_show(a):
    """Key rotation, bucket versioning and server access logging of the log bucket, as JSON."""
    s3 = client("s3")
    logging = s3.get_bucket_logging(Bucket=a["bucket"]).get("LoggingEnabled")
    print(json.dumps({
        "key_rotation": client("kms").get_key_rotation_status(KeyId=key_id(a))["KeyRotationEnabled"],
        "versioning": s3.get_bucket_versioning(Bucket=a["bucket"]).get("Status"),
        "logging": logging and {"bucket": logging["TargetBucket"], "prefix": logging.get("TargetPrefix")},
    }))


def access_log_bucket(a):
    """The customer's own access-log bucket `name`, as the S3 user guide sets one up: a bucket
    policy letting the logging service (logging.s3.amazonaws.com) put objects, for the log
    bucket as source, and someone else's object in it. `grant=no`: without that policy."""
    s3 = client("s3")
    s3.create_bucket(Bucket=a["name"])
    s3.put_object(Bucket=a["name"], Key="other-team/access.log", Body=b"theirs")
    if a.get("grant") == "no":
        return
    s3.put_bucket_policy(Bucket=a["name"], Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "S3ServerAccessLogsPolicy", "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{a['name']}/*",
            "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{a['bucket']}"},
                          "StringEquals": {"aws:SourceAccount": _ACCOUNT[0]}}}]}))


def bucket_hold(a):
    """Object Lock on the (empty) log bucket and a log file under legal hold, as an auditor
    might place one, next to `keys` ordinary ones."""
    s3 = client("s3")
    b = a["bucket"]
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    for i in range(int(a.get("keys", 0))):
        s3.put_object(Bucket=b, Key=log_key(i), Body=b"{}")
    s3.put_object(Bucket=b, Key=a["key"], Body=b"{}", ObjectLockLegalHoldStatus="ON", ChecksumAlgorithm="SHA256")


def bucket_release(a):
    """Lifts the legal hold of every version of `key`."""
    s3 = client("s3")
    for v in s3.list_object_versions(Bucket=a["bucket"], Prefix=a["key"]).get("Versions", []):
        s3.put_object_legal_hold(Bucket=a["bucket"], Key=a["key"], VersionId=v["VersionId"], LegalHold={"Status": "OFF"})


FOREIGN_DOC = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "AuditorsOwn", "Effect": "Allow", "Action": "guardduty:Get*", "Resource": "*"}]})


def role_attach_foreign(a):
    """Someone else's managed policy `foreign`, attached to our role."""
    iam = client("iam")
    arn = iam.create_policy(PolicyName=a["foreign"], PolicyDocument=FOREIGN_DOC)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=a["role"], PolicyArn=arn)


def role_foreign_off(a):
    """Takes `foreign` off our role: the managed policy of that name, the inline one, or both."""
    iam = client("iam")
    arn = f"arn:aws:iam::{_ACCOUNT[0]}:policy/{a['foreign']}"
    if arn in [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=a["role"])["AttachedPolicies"]]:
        iam.detach_role_policy(RoleName=a["role"], PolicyArn=arn)
    if a["foreign"] in iam.list_role_policies(RoleName=a["role"])["PolicyNames"]:
        iam.delete_role_policy(RoleName=a["role"], PolicyName=a["foreign"])


def role_inline_foreign(a):
    """Someone else's inline policy `foreign`, put on our role."""
    client("iam").put_role_policy(RoleName=a["role"], PolicyName=a["foreign"], PolicyDocument=FOREIGN_DOC)


def policy_attach_foreign(a):
    """Our policy attached to someone else's role and user (both named `foreign`)."""
    iam = client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                    "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=a["foreign"], AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_user(UserName=a["foreign"])
    iam.attach_role_policy(RoleName=a["foreign"], PolicyArn=policy_arn(a))
    iam.attach_user_policy(UserName=a["foreign"], PolicyArn=policy_arn(a))


def iam_attachments(a):
    """What is attached to what, as JSON: every role's managed (ARNs) and inline policies,
    and every customer policy's roles and users."""
    iam = client("iam")
    roles = {r["RoleName"]: {
        "managed": [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=r["RoleName"])["AttachedPolicies"]],
        "inline": iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"],
    } for r in iam.list_roles()["Roles"]}
    policies = {}
    for p in iam.list_policies(Scope="Local")["Policies"]:
        e = iam.list_entities_for_policy(PolicyArn=p["Arn"])
        policies[p["PolicyName"]] = {"roles": [r["RoleName"] for r in e["PolicyRoles"]],
                                     "users": [u["UserName"] for u in e["PolicyUsers"]]}
    print(json.dumps({"roles": roles, "policies": policies}))


def org_setup(a):
    """An AWS Organization with CloudTrail trusted access and member accounts, each with the
    OrganizationAccountAccessRole that AWS (and moto) creates in accounts made by CreateAccount. Prints
    the member account ids, one a line."""
    org = client("organizations")
    org.create_organization(FeatureSet="ALL")
    org.enable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com")
    ids = []
    for i in range(int(a["members"])):
        st = org.create_account(Email=f"member{i}@example.com", AccountName=f"member{i}")["CreateAccountStatus"]
        ids.append(st["AccountId"])
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                    "Action": "sts:AssumeRole"}]}
    for acct in ids:
        # moto's CreateAccount makes the role, as AWS does; older versions did not.
        _ACCOUNT[0] = acct
        iam = client("iam")
        if ORG_ROLE not in [r["RoleName"] for r in iam.list_roles()["Roles"]]:
            iam.create_role(RoleName=ORG_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    print("\n".join(ids))


def org_trail(a):
    """The organization id, the trail's organization flag and the log bucket's policy."""
    trail = client("cloudtrail").get_trail(Name=a["trail"])["Trail"]
    print(json.dumps({
        "org_id": client("organizations").describe_organization()["Organization"]["Id"],
        "is_organization_trail": trail.get("IsOrganizationTrail", False),
        "bucket_policy": json.loads(client("s3").get_bucket_policy(Bucket=a["bucket"])["Policy"]),
    }))


def org_trust_off(a):
    client("organizations").disable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com")


def org_trust_on(a):
    client("organizations").enable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com")


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
        "role_tags": {r["RoleName"]: {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=r["RoleName"])["Tags"]}
                      for r in iam.list_roles()["Roles"]},
    }
    print(json.dumps(out))


# What AWS (and moto) answer for an object that does not exist.
MISSING = {"NotFoundException", "NoSuchBucket", "NoSuchTagSet", "NoSuchEntity",
           "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
           "TrailNotFoundException", "ResourceNotFoundException"}


def if_exists(call):
    """call(), or None when the object it acts on does not exist."""
    try:
        return call()
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] not in MISSING:
            raise
        return None


def tags(a):
    """The tags of every piece that exists, as JSON (name -> {key: value})."""
    kms, s3, sqs, ct, iam = (client(n) for n in ("kms", "s3", "sqs", "cloudtrail", "iam"))
    trail_arn = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{a['trail']}"

    def trail_tags():
        found = ct.list_tags(ResourceIdList=[trail_arn])["ResourceTagList"]
        return {t["Key"]: t["Value"] for t in found[0]["TagsList"]} if found else None

    readers = {
        "key": lambda: {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id(a))["Tags"]},
        "bucket": lambda: {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=a["bucket"])["TagSet"]},
        "queue": lambda: sqs.list_queue_tags(QueueUrl=queue_url(a)).get("Tags", {}),
        "trail": trail_tags,
        "policy": lambda: {t["Key"]: t["Value"] for t in iam.list_policy_tags(PolicyArn=policy_arn(a))["Tags"]},
        "role": lambda: {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=a["role"])["Tags"]},
    }
    # A piece that does not exist (after a destroy) is left out.
    found = {piece: if_exists(read) for piece, read in readers.items()}
    print(json.dumps({piece: t for piece, t in found.items() if t is not None}))


PIECES = ("key", "bucket", "queue", "trail", "policy", "role")


def _edit_tags(a, pieces, key, value=None):
    """Sets tag `key` to `value` (or with None, removes it) on each piece of `pieces` that
    exists, leaving its other tags."""
    kms, s3, sqs, ct, iam = (client(n) for n in ("kms", "s3", "sqs", "cloudtrail", "iam"))
    trail_arn = f"arn:aws:cloudtrail:{REGION}:{_ACCOUNT[0]}:trail/{a['trail']}"
    add = value is not None

    def bucket():
        tagset = [t for t in s3.get_bucket_tagging(Bucket=a["bucket"])["TagSet"] if t["Key"] != key]
        tagset += [{"Key": key, "Value": value}] if add else []
        s3.put_bucket_tagging(Bucket=a["bucket"], Tagging={"TagSet": tagset})

    edits = {
        "key": lambda: kms.tag_resource(KeyId=key_id(a), Tags=[{"TagKey": key, "TagValue": value}])
        if add else kms.untag_resource(KeyId=key_id(a), TagKeys=[key]),
        "bucket": bucket,
        "queue": lambda: sqs.tag_queue(QueueUrl=queue_url(a), Tags={key: value})
        if add else sqs.untag_queue(QueueUrl=queue_url(a), TagKeys=[key]),
        "trail": lambda: ct.add_tags(ResourceId=trail_arn, TagsList=[{"Key": key, "Value": value}])
        if add else ct.remove_tags(ResourceId=trail_arn, TagsList=[{"Key": key}]),
        "policy": lambda: iam.tag_policy(PolicyArn=policy_arn(a), Tags=[{"Key": key, "Value": value}])
        if add else iam.untag_policy(PolicyArn=policy_arn(a), TagKeys=[key]),
        "role": lambda: iam.tag_role(RoleName=a["role"], Tags=[{"Key": key, "Value": value}])
        if add else iam.untag_role(RoleName=a["role"], TagKeys=[key]),
    }
    for piece in pieces:
        if_exists(edits[piece])


def owner_strip(a):
    """Takes the `expel:owner` tag off every piece that exists, leaving the marker: objects as
    a release before per-instance owners made them."""
    _edit_tags(a, PIECES, "expel:owner")


def tag_edit(a):
    """Another party edits tag `tag` on `pieces` (comma-separated, default every piece):
    `value=` sets it, no value removes it."""
    _edit_tags(a, a.get("pieces", ",".join(PIECES)).split(","), a["tag"], a.get("value"))


def _policy_doc(a):
    """(read, write) of the live policy document named by doc=bucket|key|queue|trust|api (api:
    the default version of the customer-managed policy policy=<name>)."""
    kind = a["doc"]
    if kind == "bucket":
        s3 = client("s3")
        return (lambda: s3.get_bucket_policy(Bucket=a["bucket"])["Policy"],
                lambda d: s3.put_bucket_policy(Bucket=a["bucket"], Policy=d))
    if kind == "key":
        kms, k = client("kms"), key_id(a)
        return (lambda: kms.get_key_policy(KeyId=k, PolicyName="default")["Policy"],
                lambda d: kms.put_key_policy(KeyId=k, PolicyName="default", Policy=d))
    if kind == "queue":
        sqs, url = client("sqs"), queue_url(a)
        return (lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"],
                lambda d: sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": d}))
    if kind == "trust":
        iam = client("iam")
        # boto3 decodes IAM's percent-encoded document into a dict.
        return (lambda: json.dumps(iam.get_role(RoleName=a["role"])["Role"]["AssumeRolePolicyDocument"]),
                lambda d: iam.update_assume_role_policy(RoleName=a["role"], PolicyDocument=d))
    if kind == "api":
        iam, arn = client("iam"), policy_arn(a)

        def read_api():
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            # boto3 decodes IAM's percent-encoded document into a dict.
            return json.dumps(iam.get_policy_version(PolicyArn=arn, VersionId=version)
                              ["PolicyVersion"]["Document"])

        def write_api(d):
            old = [v for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]
                   if not v["IsDefaultVersion"]]
            if len(old) >= 4:  # IAM keeps five versions
                oldest = min(old, key=lambda v: v["CreateDate"])
                iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
            iam.create_policy_version(PolicyArn=arn, PolicyDocument=d, SetAsDefault=True)
        return read_api, write_api
    raise SystemExit(f"unknown doc={kind}")


def policy_foreign(a):
    """Another party edits a policy: drop=<Sid> removes that statement of ours, add=<JSON
    statement> appends one of theirs, raw=<text> replaces the whole document."""
    read, write = _policy_doc(a)
    # raw: a document that is not JSON at all (moto's KMS accepts it;
    # docs/ARCHITECTURE.md#what-moto-does-not-do).
    if "raw" in a:
        write(a["raw"])
        return
    doc = json.loads(read())
    if "drop" in a:
        doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != a["drop"]]
    if "add" in a:
        doc["Statement"].append(json.loads(a["add"]))
    write(json.dumps(doc))


def policy_show(a):
    """The live policy document named by doc=..., as JSON (a string when it is not JSON)."""
    read, _ = _policy_doc(a)
    text = read()
    try:
        print(json.dumps(json.loads(text)))
    except ValueError:
        print(json.dumps(text))


# ---- A Control Tower-shaped organization -------------------------------------------------
# What an AWS Control Tower landing zone leaves behind (AWS Control Tower user guide, "About
# logging"; "Optionally configure AWS KMS keys"): an organization trail in the management
# account writing to the bucket aws-controltower-logs-<Log Archive account>-<region> in the Log
# Archive account, encrypted with a customer-managed key; here the bucket also already has a
# consumer of its object-create events (a SIEM's queue), either subscribed to a topic the bucket
# publishes to (consumer=topic) or notified directly (consumer=queue), plus a configuration for
# deletions (another event type, which never overlaps ours).
CT_TRAIL = "aws-controltower-BaselineCloudTrail"


def ct_names(la):
    return {"bucket": f"aws-controltower-logs-{la}-{REGION}", "topic": "aws-controltower-logs-events",
            "consumer": "siem-consumer", "deletes": "audit-deletes"}


def queue_arn_of(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def control_tower(a):
    """Prints JSON: the Log Archive account and the bucket, key, topic and trail ARNs."""
    org_setup(dict(a, members="1"))  # prints the member id first: the caller reads the last line
    _ACCOUNT[0] = ACCOUNT
    la = client("organizations").list_accounts()["Accounts"]
    la = next(x["Id"] for x in la if x["Id"] != ACCOUNT)
    _ACCOUNT[0] = la
    n = ct_names(la)
    kms, s3, sns, sqs = client("kms"), client("s3"), client("sns"), client("sqs")
    key_policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{la}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Allow CloudTrail to encrypt logs", "Effect": "Allow",
         "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "kms:GenerateDataKey*", "Resource": "*",
         "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"}}}]}
    key = kms.create_key(Description="Control Tower logs", Policy=json.dumps(key_policy),
                         Tags=[{"TagKey": "aws-control-tower", "TagValue": "managed-by-aws-control-tower"}])["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    s3.create_bucket(Bucket=n["bucket"])
    s3.put_bucket_versioning(Bucket=n["bucket"], VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=n["bucket"], ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}}]})
    s3.put_bucket_tagging(Bucket=n["bucket"], Tagging={"TagSet": [{"Key": "aws-control-tower", "Value": "managed-by-aws-control-tower"}]})
    s3.put_bucket_policy(Bucket=n["bucket"], Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSBucketPermissionsCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{n['bucket']}"},
        {"Sid": "AWSBucketDelivery", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{n['bucket']}/*/*"}]}))
    topic = sns.create_topic(Name=n["topic"])["TopicArn"]
    consumer = sqs.create_queue(QueueName=n["consumer"])["QueueUrl"]
    deletes = sqs.create_queue(QueueName=n["deletes"])["QueueUrl"]
    conf = {"QueueConfigurations": [{"Id": "audit-deletes", "QueueArn": queue_arn_of(sqs, deletes),
                                     "Events": ["s3:ObjectRemoved:*"]}]}
    if a.get("consumer", "topic") == "topic":
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn_of(sqs, consumer))
        conf["TopicConfigurations"] = [{"Id": "siem", "TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]
    elif a.get("consumer") == "queue":
        conf["QueueConfigurations"].append({"Id": "siem", "QueueArn": queue_arn_of(sqs, consumer),
                                            "Events": ["s3:ObjectCreated:*"],
                                            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "AWSLogs/"}]}}})
    s3.put_bucket_notification_configuration(Bucket=n["bucket"], NotificationConfiguration=conf)
    _ACCOUNT[0] = ACCOUNT
    trail = client("cloudtrail").create_trail(Name=CT_TRAIL, S3BucketName=n["bucket"], IsMultiRegionTrail=True,
                                              IsOrganizationTrail=True, KmsKeyId=key["Arn"],
                                              EnableLogFileValidation=True)["TrailARN"]
    client("cloudtrail").start_logging(Name=CT_TRAIL)
    print(json.dumps({"log_archive": la, "bucket": n["bucket"], "key_arn": key["Arn"], "topic_arn": topic,
                      "trail_arn": trail}))


def ct_snapshot(a):
    """What onboarding must leave as it was, as JSON: the trail (management account); the
    bucket's settings and notifications, the key's policy without our statement, its rotation
    and tags, the topic's other subscriptions (Log Archive account, `account=`)."""
    la = _ACCOUNT[0]
    n = ct_names(la)
    kms, s3, sns, sqs = client("kms"), client("s3"), client("sns"), client("sqs")
    key = kms.describe_key(KeyId=a["key"])["KeyMetadata"]["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    ours = [s for s in policy["Statement"] if s.get("Sid") == "ExpelServiceRoleDecryptLogs"]
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "ExpelServiceRoleDecryptLogs"]
    conf = s3.get_bucket_notification_configuration(Bucket=n["bucket"])
    conf.pop("ResponseMetadata", None)
    topic_arn = sns.list_topics()["Topics"][0]["TopicArn"] if sns.list_topics()["Topics"] else None
    subs = sorted(s["Endpoint"] for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]) if topic_arn else []
    _ACCOUNT[0] = ACCOUNT
    trail = client("cloudtrail").get_trail(Name=CT_TRAIL)["Trail"]
    logging_on = client("cloudtrail").get_trail_status(Name=CT_TRAIL)["IsLogging"]
    _ACCOUNT[0] = la
    print(json.dumps({
        "trail": trail, "trail_logging": logging_on,
        "bucket_versioning": s3.get_bucket_versioning(Bucket=n["bucket"]).get("Status"),
        "bucket_encryption": s3.get_bucket_encryption(Bucket=n["bucket"])["ServerSideEncryptionConfiguration"],
        "bucket_policy": json.loads(s3.get_bucket_policy(Bucket=n["bucket"])["Policy"]),
        "bucket_tags": s3.get_bucket_tagging(Bucket=n["bucket"])["TagSet"],
        "other_notifications": {k: sorted((c for c in v if c.get("Id") != "ExpelNotifyQueue"), key=lambda c: c.get("Id", ""))
                                for k, v in conf.items()},
        "our_notification": [c for v in conf.values() if isinstance(v, list) for c in v if c.get("Id") == "ExpelNotifyQueue"],
        "key_policy_others": policy, "our_key_statement": ours,
        "key_rotation": kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"],
        "key_tags": kms.list_resource_tags(KeyId=key)["Tags"],
        "topic_subscriptions": subs,
        "queues": sorted(sqs.list_queues().get("QueueUrls", [])),
    }, sort_keys=True, default=str))


def ct_deliver(a):
    """Puts a log file into the bucket as the trail would and prints, as JSON, which queues
    (`queues`, comma-separated names) received its ObjectCreated event, through a topic or not."""
    n = ct_names(_ACCOUNT[0])
    # No "/" in the key: S3 URL-encodes keys in event records.
    key = a.get("object", "delivery-check.json.gz")
    client("s3").put_object(Bucket=n["bucket"], Key=key, Body=b"{}")
    sqs = client("sqs")
    got = {}
    for q in a["queues"].split(","):
        url = sqs.get_queue_url(QueueName=q)["QueueUrl"]
        bodies = []
        for _ in range(3):
            bodies += [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
        got[q] = any(key in b or json.dumps(key)[1:-1] in b for b in bodies)
    print(json.dumps(got))


def trail_elsewhere(a):
    """A trail of the current account writing to another bucket of its own; prints its ARN."""
    bucket = f"other-logs-{_ACCOUNT[0]}"
    client("s3").create_bucket(Bucket=bucket)
    print(client("cloudtrail").create_trail(Name="team-trail", S3BucketName=bucket)["TrailARN"])


def key_statement_drop(a):
    """Takes our statement out of the existing key's policy (`key`), as a key admin might."""
    kms = client("kms")
    doc = json.loads(kms.get_key_policy(KeyId=a["key"], PolicyName="default")["Policy"])
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != "ExpelServiceRoleDecryptLogs"]
    kms.put_key_policy(KeyId=a["key"], PolicyName="default", Policy=json.dumps(doc))


def topic_unsubscribe(a):
    """Removes our queue's subscription to `topic` (the other consumers' stay)."""
    sns = client("sns")
    for sub in sns.list_subscriptions_by_topic(TopicArn=a["topic"])["Subscriptions"]:
        if sub["Endpoint"].endswith(":" + a["queue"]):
            sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])

def _member_access(org, ids):
    """OrganizationAccountAccessRole in each account (moto's CreateAccount makes it, as AWS does)."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                    "Action": "sts:AssumeRole"}]}
    for acct in ids:
        _ACCOUNT[0] = acct
        iam = client("iam")
        if ORG_ROLE not in [r["RoleName"] for r in iam.list_roles()["Roles"]]:
            iam.create_role(RoleName=ORG_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    _ACCOUNT[0] = ACCOUNT


def _account_in(org, root, parent, name):
    st = org.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
    acct = st["AccountId"]
    if parent != root:
        org.move_account(AccountId=acct, SourceParentId=root, DestinationParentId=parent)
    return acct


def stacksets_org(a):
    """An organization with nested OUs and members=<n> accounts spread over them (StackSets'
    trusted access off), as JSON: root, ous {workloads, prod, deep, sandbox}, accounts {ou name: [ids]}."""
    org = client("organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    mk = lambda parent, name: org.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]
    ous = {"workloads": mk(root, "Workloads")}
    ous["prod"] = mk(ous["workloads"], "Prod")
    ous["deep"] = mk(ous["prod"], "Deep")
    ous["sandbox"] = mk(root, "Sandbox")
    order = ["workloads", "prod", "deep", "sandbox"]
    accounts = {k: [] for k in order + ["root"]}
    n = int(a.get("members", "2"))
    for i in range(n):
        where = order[i % len(order)] if i < n - 1 else "root"
        parent = root if where == "root" else ous[where]
        accounts[where].append(_account_in(org, root, parent, f"m{i}"))
    _member_access(org, [x for v in accounts.values() for x in v])
    print(json.dumps({"root": root, "ous": ous, "accounts": accounts}))


def account_join(a):
    """A new account created in the organization and moved into ou=<id>; prints its id."""
    org = client("organizations")
    root = org.list_roots()["Roots"][0]["Id"]
    acct = _account_in(org, root, a["ou"], a.get("name", "joiner"))
    _member_access(org, [acct])
    print(acct)


def stacksets_access_on(a):
    client("cloudformation").activate_organizations_access()


def stacksets_access_off(a):
    client("cloudformation").deactivate_organizations_access()


def roles_everywhere(a):
    """Every account of the organization -> its role names, as JSON."""
    org = client("organizations")
    ids = [x["Id"] for x in org.list_accounts()["Accounts"]]
    out = {}
    for acct in ids:
        _ACCOUNT[0] = acct
        out[acct] = sorted(r["RoleName"] for r in client("iam").list_roles()["Roles"])
    _ACCOUNT[0] = ACCOUNT
    print(json.dumps(out))


def stackset_foreign(a):
    """Someone else's service-managed stack set `Foreign` (no ownership tags) with instances in ou=<id>."""
    cf = client("cloudformation")
    t = {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "ForeignRole", "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}}}}}
    cf.create_stack_set(StackSetName=a.get("name", "Foreign"), TemplateBody=json.dumps(t), PermissionModel="SERVICE_MANAGED",
                        AutoDeployment={"Enabled": False}, Capabilities=["CAPABILITY_NAMED_IAM"])
    cf.create_stack_instances(StackSetName=a.get("name", "Foreign"), Regions=[REGION],
                              DeploymentTargets={"OrganizationalUnitIds": [a["ou"]]})


def stacksets(a):
    """Every stack set (not deleted) -> its template body and instance accounts, as JSON."""
    cf = client("cloudformation")
    out = {}
    for s in cf.list_stack_sets()["Summaries"]:
        if s.get("Status") == "DELETED":
            continue
        name = s["StackSetName"]
        body = cf.describe_stack_set(StackSetName=name)["StackSet"]["TemplateBody"]
        inst = sorted(i["Account"] for i in cf.list_stack_instances(StackSetName=name)["Summaries"])
        out[name] = {"template": body, "accounts": inst}
    print(json.dumps(out))


ACTIONS = {f.__name__.replace("_", "-"): f for f in (
    key_policy_edit, key_disable, key_schedule_deletion, bucket_encryption_remove, notification_remove,
    queue_policy_change, trail_stop, trail_delete, role_trust_change, policy_detach, policy_edit, role_delete, role_foreign,
    org_setup, org_trail, org_trust_off, org_trust_on, bucket_versions, bucket_hold, bucket_release,
    role_attach_foreign, role_foreign_off, role_inline_foreign, policy_attach_foreign, iam_attachments,
    owner_strip, tag_edit, security_off, security_show, access_log_bucket, control_tower, ct_snapshot, ct_deliver, key_statement_drop,
    topic_unsubscribe, trail_elsewhere)}
ACTIONS["list"] = listing
ACTIONS.update({f.__name__.replace("_", "-"): f for f in (
    stacksets_org, account_join, stacksets_access_on, stacksets_access_off, roles_everywhere, stackset_foreign, stacksets)})
ACTIONS["tags"] = tags
ACTIONS.update({"policy-foreign": policy_foreign, "policy-show": policy_show})

if __name__ == "__main__":
    args = dict(DEFAULTS, **dict(kv.split("=", 1) for kv in sys.argv[2:]))
    _ACCOUNT[0] = args["account"]
    ACTIONS[sys.argv[1]](args)
