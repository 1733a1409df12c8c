"""Audit the policy documents in an AWS account (moto, or moto behind the AWS proxy) with
parliament (Duo Labs' IAM policy linter, pinned in requirements.txt).

    <venv>/bin/python tests/sandbox/policy_audit.py --endpoint URL
        [--region us-east-1 ...] [--account 123456789012] [--community]

Lists every KMS key policy, S3 bucket policy and SQS queue policy in the regions (default:
$AWS_REGION, else us-east-1), every customer-managed IAM policy (its default version) and
every role's trust policy, runs parliament on each and prints one JSON report on stdout:

    {"documents": [{"kind", "name", "arn", "region", "mode",
                    "findings": [{"issue", "severity", "title", "detail", "location",
                                  "accepted": "<reason>" | null}]}],
     "unaccepted": [{"kind", "name", "issue", "severity", "detail"}],
     "modes": {"<kind>": "how parliament audits it"}}

Exit status: 0 every finding is accepted (ACCEPTED below, each with its reason), 1 some are
not, 2 bad arguments or AWS could not be read (a message on stderr).

Options: --endpoint (required) the AWS endpoint; --region (repeatable) where to list keys,
buckets and queues (IAM is global); --account lists another moto account (moto's
`x-moto-account-id` header; real AWS ignores it); --community adds parliament's community
auditors (privilege escalation, credentials exposure, ...). Credentials come from the
environment, `testing`/`testing` when unset (moto accepts anything). Every call carries
`x-sandbox-internal: policy-audit`, so the AWS proxy neither counts nor faults it.

How each kind is audited (parliament 1.6 has no mode for resource-based or trust policies;
it checks a Principal wherever one appears, and otherwise lints every document as an
identity policy):
  iam_policy, iam_role_trust_policy: as stored. A trust policy has no Resource, which
    parliament reports as MALFORMED and then stops; each statement without Resource or
    NotResource is given the role's own ARN, the resource a trust policy governs.
  kms_key_policy, s3_bucket_policy, sqs_queue_policy: as stored, except that each distinct
    Sid is renamed Sid1, Sid2, ... (duplicates stay duplicates). parliament holds Sids to the
    IAM identity-policy grammar [0-9A-Za-z]* and stops at the first other one, while these
    services accept more (the KMS console's own key policy has Sid "Enable IAM User
    Permissions"; the SQS console's has "__owner_statement").
Findings below parliament's LOW severity (INFO) are left out, as parliament's CLI does.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import os
import sys
import urllib.parse
import warnings
from pathlib import Path
from typing import Any, Callable

KINDS = ("kms_key_policy", "s3_bucket_policy", "sqs_queue_policy", "iam_policy",
         "iam_role_trust_policy")
MODES = {
    "iam_policy": "identity policy, as stored",
    "iam_role_trust_policy": "identity policy with Resource = the role's ARN in each statement "
                             "that has none (parliament has no trust-policy mode and requires "
                             "Resource)",
    "kms_key_policy": "as stored, Sids renamed Sid1.. (parliament has no resource-policy mode; "
                      "it checks Principal, and holds Sids to IAM's identity-policy grammar)",
    "s3_bucket_policy": "as stored, Sids renamed Sid1.. (as kms_key_policy)",
    "sqs_queue_policy": "as stored, Sids renamed Sid1.. (as kms_key_policy)",
}
RESOURCE_POLICY_KINDS = {"kms_key_policy", "s3_bucket_policy", "sqs_queue_policy"}

# The Expel CloudTrail guide, Step 6 (ExpelAPIPolicy, first statement "VisualEditor0"): read
# actions granted on "*". The provider writes them verbatim (provider/src/policy/documents.rs,
# READ_ONLY_ACTIONS), in ExpelAPIPolicy and in the member accounts' policy.
GUIDE_READ_ONLY_ACTIONS = [
    "ec2:DescribeInstances", "ec2:DescribeRegions", "ec2:DescribeSecurityGroups", "iam:List*",
    "iam:Get*", "rds:DescribeDBInstances", "rds:ListTagsForResource",
    "organizations:ListAccounts", "ec2:DescribeVolumes", "ecs:DescribeTaskDefinition",
    "ecs:ListTaskDefinitions", "lambda:GetFunction", "lambda:ListFunctions",
    "lightsail:GetInstances", "lightsail:GetRegions", "s3:ListAllMyBuckets",
    "s3:GetBucketNotification", "s3:GetEncryptionConfiguration", "cloudtrail:GetTrailStatus",
    "cloudtrail:DescribeTrails", "cloudtrail:GetTrail", "cloudtrail:ListTrails",
    "config:ListDiscoveredResources", "config:GetDiscoveredResourceCounts",
    "eks:DescribeCluster", "eks:ListClusters", "ecs:ListContainerInstances",
    "ecs:DescribeContainerInstances", "ecs:DescribeClusters", "ecs:ListClusters",
    "organizations:DescribeOrganization",
]

# Findings accepted on purpose. An entry matches a finding of its kind and issue; with
# "actions", only when every action the finding lists (parliament's detail) matches one of
# those patterns; with "name", only documents whose name matches that glob.
ACCEPTED: list[dict[str, Any]] = [
    {"kind": "iam_policy", "issue": "RESOURCE_STAR", "actions": GUIDE_READ_ONLY_ACTIONS,
     "reason": "The Expel CloudTrail guide (Step 6, ExpelAPIPolicy) deliberately grants these "
               "read actions on \"*\": Expel's investigations read the whole account "
               "(instances, roles, trails, buckets, clusters ...), whatever exists now or "
               "later; the provider writes the guide's statement verbatim."},
    {"kind": "kms_key_policy", "issue": "RESOURCE_STAR",
     "reason": "In a key policy, Resource \"*\" means the key the policy is attached to "
               "(AWS KMS Developer Guide, key policy elements: the value of Resource is \"*\", "
               "which means \"this KMS key\"), so it reaches no other resource."},
    # parliament's community auditors (--community) only:
    {"kind": "kms_key_policy", "issue": "PERMISSIONS_MANAGEMENT_ACTIONS",
     "reason": "The key policy's first statement gives the account root kms:* on the key, as "
               "KMS's default key policy does (\"Enable IAM User Permissions\"): it delegates "
               "the key to IAM; without it no IAM policy could manage the key."},
    {"kind": "iam_role_trust_policy", "issue": "CREDENTIALS_EXPOSURE",
     "reason": "sts:AssumeRole is what a trust policy grants: Expel's account assumes "
               "ExpelServiceRole with the organization id as external id (guide Step 7)."},
]

MINIMUM_SEVERITY = "LOW"  # parliament's CLI default


class AuditError(Exception):
    """AWS could not be listed (unreachable endpoint, refused call)."""


def _parliament() -> Any:
    with warnings.catch_warnings():  # pkg_resources is deprecated; parliament imports it
        warnings.simplefilter("ignore")
        import parliament
        import parliament.cli
    return parliament


_community_loaded = False


def audit_document(kind: str, name: str, document: Any, resource_arn: str | None = None,
                   community: bool = False,
                   accepted: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Audit one document (a dict, or its JSON text) of a kind in KINDS."""
    global _community_loaded
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    parliament = _parliament()
    if community and not _community_loaded:
        parliament.override_config(str(Path(parliament.__file__).parent / "community_auditors"
                                       / "config_override.yaml"))
        _community_loaded = True
    text = _prepared(kind, document, resource_arn)
    policy = parliament.analyze_policy_string(text, include_community_auditors=community)
    findings = []
    for raw in policy.findings:
        finding = parliament.enhance_finding(raw)
        if parliament.cli.is_finding_filtered(finding, MINIMUM_SEVERITY):
            continue
        out = {"issue": finding.issue, "severity": finding.severity, "title": finding.title,
               "detail": _plain(finding.detail), "location": _plain(finding.location)}
        out["accepted"] = _accepted_reason(kind, name, out, ACCEPTED if accepted is None
                                           else accepted)
        findings.append(out)
    return {"kind": kind, "name": name, "arn": resource_arn, "mode": MODES[kind],
            "findings": findings}


def _prepared(kind: str, document: Any, resource_arn: str | None) -> str:
    """The text parliament gets (see the module docstring); malformed input goes as is."""
    if isinstance(document, str):
        try:
            doc = json.loads(document)
        except ValueError:
            return document  # parliament reports MALFORMED_JSON
    else:
        doc = copy.deepcopy(document)
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    items = statements if isinstance(statements, list) else [statements]
    renamed: dict[str, str] = {}
    for stmt in items:
        if not isinstance(stmt, dict):
            continue
        if kind in RESOURCE_POLICY_KINDS and isinstance(stmt.get("Sid"), str):
            stmt["Sid"] = renamed.setdefault(stmt["Sid"], f"Sid{len(renamed) + 1}")
        if kind == "iam_role_trust_policy" and resource_arn and \
                "Resource" not in stmt and "NotResource" not in stmt:
            stmt["Resource"] = resource_arn
    return json.dumps(doc)


def _plain(value: Any) -> Any:
    """JSON-safe copy of a finding's detail or location (jsoncfg nodes become text)."""
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def _accepted_reason(kind: str, name: str, finding: dict[str, Any],
                     accepted: list[dict[str, Any]]) -> str | None:
    for entry in accepted:
        if entry["kind"] != kind or entry["issue"] != finding["issue"]:
            continue
        if "name" in entry and not fnmatch.fnmatchcase(name, entry["name"]):
            continue
        if "actions" in entry:
            listed = finding["detail"] if isinstance(finding["detail"], list) else None
            if not listed or not all(
                    any(fnmatch.fnmatch(str(action).lower(), pattern.lower())
                        for pattern in entry["actions"]) for action in listed):
                continue
        return entry["reason"]
    return None


# ---------------------------------------------------------------------------------------
# Listing the documents


def _document(doc: Any) -> Any:
    """IAM returns URL-encoded JSON on the wire; boto3 usually decodes it already."""
    if isinstance(doc, str):
        text = urllib.parse.unquote(doc) if doc.lstrip().startswith("%") else doc
        try:
            return json.loads(text)
        except ValueError:
            return text
    return doc


def list_documents(endpoint: str, regions: list[str], account: str | None = None
                   ) -> list[dict[str, Any]]:
    """[{"kind", "name", "arn", "region", "document"}] of every document to audit."""
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "testing",
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing",
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN") or None)

    def mark(request: Any, **_: Any) -> None:
        request.headers["x-sandbox-internal"] = "policy-audit"
        if account:
            request.headers["x-moto-account-id"] = account

    session.events.register("before-sign", mark)
    config = Config(retries={"total_max_attempts": 3, "mode": "standard"},
                    connect_timeout=5, read_timeout=30, s3={"addressing_style": "path"})

    def client(service: str, region: str) -> Any:
        return session.client(service, endpoint_url=endpoint, region_name=region, config=config)

    docs: list[dict[str, Any]] = []

    def add(kind: str, name: str, arn: str | None, region: str | None, document: Any) -> None:
        docs.append({"kind": kind, "name": name, "arn": arn, "region": region,
                     "document": _document(document)})

    def error_code(err: Exception) -> str:
        return str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))

    try:
        for region in regions:
            kms = client("kms", region)
            for page in kms.get_paginator("list_keys").paginate():
                for key in page["Keys"]:
                    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
                    if meta.get("KeyManager") == "AWS":
                        continue  # AWS-managed keys: AWS's own policies
                    for policy_name in kms.list_key_policies(KeyId=key["KeyId"])["PolicyNames"]:
                        text = kms.get_key_policy(KeyId=key["KeyId"],
                                                  PolicyName=policy_name)["Policy"]
                        add("kms_key_policy", meta["Arn"], meta["Arn"], region, text)
            sqs = client("sqs", region)
            for page in sqs.get_paginator("list_queues").paginate():
                for url in page.get("QueueUrls", []):
                    attrs = sqs.get_queue_attributes(
                        QueueUrl=url, AttributeNames=["Policy", "QueueArn"])["Attributes"]
                    if attrs.get("Policy"):
                        add("sqs_queue_policy", url.rstrip("/").rsplit("/", 1)[-1],
                            attrs.get("QueueArn"), region, attrs["Policy"])
        s3 = client("s3", regions[0])
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            where = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
            where = "eu-west-1" if where == "EU" else where
            if where not in regions:
                continue
            try:
                text = s3.get_bucket_policy(Bucket=name)["Policy"]
            except botocore.exceptions.ClientError as err:
                if error_code(err) == "NoSuchBucketPolicy":
                    continue
                raise
            add("s3_bucket_policy", name, f"arn:aws:s3:::{name}", where, text)
        iam = client("iam", regions[0])
        for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
            for policy in page["Policies"]:
                version = iam.get_policy_version(PolicyArn=policy["Arn"],
                                                 VersionId=policy["DefaultVersionId"])
                add("iam_policy", policy["PolicyName"], policy["Arn"], None,
                    version["PolicyVersion"]["Document"])
        for page in iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                if role.get("Path", "/").startswith("/aws-service-role/"):
                    continue  # service-linked roles: AWS's own trust policies
                add("iam_role_trust_policy", role["RoleName"], role["Arn"], None,
                    role.get("AssumeRolePolicyDocument"))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        raise AuditError(f"cannot list the documents at {endpoint}: {err}") from err
    return docs


def audit(endpoint: str, regions: list[str] | None = None, account: str | None = None,
          community: bool = False, accepted: list[dict[str, Any]] | None = None
          ) -> dict[str, Any]:
    """The report of the module docstring. AuditError when AWS cannot be listed."""
    regions = regions or [os.environ.get("AWS_REGION") or "us-east-1"]
    documents = []
    unaccepted = []
    for doc in list_documents(endpoint, regions, account):
        result = audit_document(doc["kind"], doc["name"], doc["document"], doc["arn"],
                                community, accepted)
        result["region"] = doc["region"]
        documents.append(result)
        for finding in result["findings"]:
            if finding["accepted"] is None:
                unaccepted.append({"kind": doc["kind"], "name": doc["name"],
                                   "issue": finding["issue"], "severity": finding["severity"],
                                   "detail": finding["detail"]})
    return {"documents": documents, "unaccepted": unaccepted, "modes": dict(MODES)}


def main(argv: list[str] | None = None, out: Callable[[str], Any] = print) -> int:
    p = argparse.ArgumentParser(
        prog="policy_audit.py", description="parliament audit of the policy documents in "
        "an AWS account (exit 0: every finding accepted, 1: some are not, 2: error)")
    p.add_argument("--endpoint", required=True, help="AWS endpoint (moto or the AWS proxy)")
    p.add_argument("--region", action="append", dest="regions", metavar="REGION",
                   help="region to list keys, buckets and queues in (repeatable; default "
                        "$AWS_REGION, else us-east-1)")
    p.add_argument("--account", help="moto account id to list (x-moto-account-id)")
    p.add_argument("--community", action="store_true",
                   help="also run parliament's community auditors")
    args = p.parse_args(argv)
    try:
        report = audit(args.endpoint, args.regions, args.account, args.community)
    except AuditError as err:
        print(f"policy_audit: {err}", file=sys.stderr)
        return 2
    out(json.dumps(report, indent=2))
    return 1 if report["unaccepted"] else 0


if __name__ == "__main__":
    sys.exit(main())
