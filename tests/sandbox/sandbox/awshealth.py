"""The Workbench health check of an `aws` (CloudTrail) device, against moto.

What Workbench does with such a device: assume the customer's role from Expel's account
with the organization id as external id, then read the CloudTrail notification queue. moto
evaluates no policy (it lets anyone assume any role), so the documents are checked here:

  1. sts AssumeRole(role_arn, role_session_name, ExternalId=org id). With moto this gives
     credentials in the role's account, used for every read below.
  2. iam GetRole: the role exists.
  3. its trust policy has an Allow sts:AssumeRole statement whose Principal.AWS names
     Expel's account (`arn:<partition>:iam::<acct>:root` or `<acct>`; config
     expel_account_id) with Condition StringEquals sts:ExternalId = the organization id.
  4. sqs GetQueueAttributes(sqs_queue_url) with the assumed credentials: the queue exists.
  5. a policy of the role (attached: default version; or inline) allows sqs:ReceiveMessage
     on the queue ARN, and none denies it.

Healthy only if every step passes; otherwise "unhealthy" with status_details
{"checks": [...], "reason": "<the failed check, in words>"}.

Where the calls go: through the AWS proxy when the sandbox knows it (--aws-proxy-url or
--aws-proxy-url-file; scripts/stack passes the file), each with the header
`x-sandbox-internal: workbench`, so that the proxy neither counts nor faults them but applies
its eventual-consistency refusals (a role made seconds ago cannot be assumed yet, as real
Workbench sees); else straight to moto.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]+)$")
NO_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
                  "NonExistentQueue"}


class CheckFailed(Exception):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(reason)
        self.name = name
        self.reason = reason


def _document(doc: Any) -> dict[str, Any]:
    """An IAM policy document: boto3 decodes them; the wire form is URL-encoded JSON."""
    if isinstance(doc, str):
        text = urllib.parse.unquote(doc) if doc.lstrip().startswith("%") else doc
        doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("policy document is not a JSON object")
    return doc


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _list(doc.get("Statement")) if isinstance(s, dict)]


def _wildcard(pattern: str, value: str, ignore_case: bool) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _covers(stmt: dict[str, Any], action: str, resource: str | None) -> bool:
    """Does the statement's Action/NotAction and Resource/NotResource cover the request?"""
    if "Action" in stmt:
        ok = any(_wildcard(str(a), action, True) for a in _list(stmt["Action"]))
    else:
        ok = "NotAction" in stmt and \
            not any(_wildcard(str(a), action, True) for a in _list(stmt["NotAction"]))
    if not ok or resource is None:
        return ok
    if "Resource" in stmt:
        return any(_wildcard(str(r), resource, False) for r in _list(stmt["Resource"]))
    return "NotResource" in stmt and \
        not any(_wildcard(str(r), resource, False) for r in _list(stmt["NotResource"]))


def _names_account(principal: Any, account: str) -> bool:
    if principal == "*":
        return False  # anyone: not what Expel's guide asks for
    if not isinstance(principal, dict):
        return False
    for p in _list(principal.get("AWS")):
        p = str(p)
        if p == account or re.fullmatch(rf"arn:aws[a-z-]*:iam::{account}:root", p):
            return True
    return False


def _external_ids(stmt: dict[str, Any]) -> list[str]:
    cond = stmt.get("Condition")
    if not isinstance(cond, dict):
        return []
    values: list[str] = []
    for op, keys in cond.items():
        if op != "StringEquals" or not isinstance(keys, dict):
            continue
        for key, value in keys.items():
            if key.lower() == "sts:externalid":
                values += [str(v) for v in _list(value)]
    return values


def check_trust_policy(doc: dict[str, Any], account: str, org_id: str) -> None:
    """Raise CheckFailed unless Expel's account may assume the role with the external id."""
    trusting = [s for s in _statements(doc)
                if s.get("Effect") == "Allow" and _covers(s, "sts:AssumeRole", None)
                and _names_account(s.get("Principal"), account)]
    if not trusting:
        raise CheckFailed("trust_policy", f"trust policy does not allow account {account} "
                                          f"(arn:aws:iam::{account}:root) to sts:AssumeRole")
    if not any(org_id in _external_ids(s) for s in trusting):
        raise CheckFailed("trust_policy", f"trust policy lacks sts:ExternalId = {org_id}")


def _client_error_code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or type(err).__name__)


def check_aws_cloudtrail(device: dict[str, Any], ctx: Any) -> tuple[str, dict[str, Any]]:
    config = ctx.config
    checks: list[dict[str, Any]] = []
    endpoint, internal = aws_endpoint(config)
    if not endpoint:
        return "healthy", {"checks": [{
            "name": "aws", "result": "skipped",
            "detail": "the sandbox was started without --moto-url or --aws-proxy-url"}]}
    import boto3  # slow to import: only when a check runs
    import botocore.exceptions
    from botocore.config import Config

    spec = device.get("device_spec") or {}
    role_arn = spec.get("role_arn", "")
    queue_url = spec.get("sqs_queue_url", "")
    region = spec.get("region") or "us-east-1"
    org_id = device.get("organization_id") or config.org_id
    account = getattr(config, "expel_account_id", "012205512454")
    session = boto3.session.Session()
    if internal:
        session.events.register("before-sign", _mark_internal)
    client_config = Config(retries={"total_max_attempts": 2, "mode": "standard"},
                           connect_timeout=5, read_timeout=15)

    def client(service: str, creds: dict[str, str] | None = None) -> Any:
        creds = creds or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return session.client(service, endpoint_url=endpoint, config=client_config,
                              region_name=region if service == "sqs" else "us-east-1", **creds)

    def ok(name: str, **extra: Any) -> None:
        checks.append({"name": name, "result": "ok", **extra})

    try:
        m = ROLE_ARN.match(role_arn)
        if not m:
            raise CheckFailed("role_arn", f"role_arn {role_arn!r} is not an IAM role ARN")
        role_name = m.group(3)

        try:
            got = client("sts").assume_role(
                RoleArn=role_arn, RoleSessionName=spec.get("role_session_name") or "Expel",
                ExternalId=org_id)["Credentials"]
        except botocore.exceptions.ClientError as err:
            raise CheckFailed("assume_role", f"cannot assume role {role_arn}: "
                                             f"{_client_error_code(err)}") from err
        creds = {"aws_access_key_id": got["AccessKeyId"],
                 "aws_secret_access_key": got["SecretAccessKey"],
                 "aws_session_token": got["SessionToken"]}
        ok("assume_role")

        iam = client("iam", creds)
        try:
            role = iam.get_role(RoleName=role_name)["Role"]
        except botocore.exceptions.ClientError as err:
            if _client_error_code(err) == "NoSuchEntity":
                raise CheckFailed("role", f"role {role_name} does not exist in account "
                                          f"{m.group(2)}") from err
            raise CheckFailed("role", f"cannot read role {role_name}: "
                                      f"{_client_error_code(err)}") from err
        ok("role")

        try:
            trust = _document(role.get("AssumeRolePolicyDocument"))
        except ValueError as err:
            raise CheckFailed("trust_policy", f"trust policy is not valid JSON: {err}") from err
        check_trust_policy(trust, account, org_id)
        ok("trust_policy")

        try:
            attrs = client("sqs", creds).get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        except botocore.exceptions.ClientError as err:
            code = _client_error_code(err)
            if code in NO_QUEUE_CODES:
                raise CheckFailed("queue", f"queue {queue_url} does not exist") from err
            raise CheckFailed("queue", f"cannot read queue {queue_url} with the role: "
                                       f"{code}") from err
        queue_arn = attrs["QueueArn"]
        ok("queue", queue_arn=queue_arn)

        allowed, denied = [], []
        for policy_name, doc in _role_policies(iam, role_name):
            for stmt in _statements(doc):
                if _covers(stmt, "sqs:ReceiveMessage", queue_arn):
                    (allowed if stmt.get("Effect") == "Allow" else denied).append(policy_name)
        if denied:
            raise CheckFailed("role_policy", f"policy {denied[0]} of role {role_name} denies "
                                             f"sqs:ReceiveMessage on {queue_arn}")
        if not allowed:
            raise CheckFailed("role_policy", f"no policy of role {role_name} allows "
                                             f"sqs:ReceiveMessage on {queue_arn}")
        ok("role_policy", policy=allowed[0])
    except CheckFailed as failed:
        checks.append({"name": failed.name, "result": "failed", "detail": failed.reason})
        return "unhealthy", {"checks": checks, "reason": failed.reason}
    except botocore.exceptions.BotoCoreError as err:  # moto unreachable and the like
        reason = f"cannot reach AWS: {err}"
        checks.append({"name": "aws", "result": "failed", "detail": reason})
        return "unhealthy", {"checks": checks, "reason": reason}
    return "healthy", {"checks": checks}


INTERNAL_HEADER = "x-sandbox-internal"  # sandbox/awsproxy.py: INTERNAL_HEADER


def aws_endpoint(config: Any) -> tuple[str | None, bool]:
    """(where the check sends AWS calls, whether that is the AWS proxy)."""
    if getattr(config, "aws_proxy_url", None) or getattr(config, "aws_proxy_url_file", None):
        proxy = config.resolve_aws_proxy_url()
        if proxy:
            return proxy, True
    moto_url = config.resolve_moto_url() if hasattr(config, "resolve_moto_url") \
        else config.moto_url
    return moto_url, False


def _mark_internal(request: Any, **kwargs: Any) -> None:
    request.headers[INTERNAL_HEADER] = "workbench"


def _role_policies(iam: Any, role_name: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, document) of every managed policy attached (default version) and inline."""
    out: list[tuple[str, dict[str, Any]]] = []
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for attached in page["AttachedPolicies"]:
            arn = attached["PolicyArn"]
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
            out.append((attached["PolicyName"], _document(doc["Document"])))
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for name in page["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            out.append((f"{name} (inline)", _document(doc)))
    return out
