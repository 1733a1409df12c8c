"""The Workbench health check of `aws` devices (sandbox/awshealth.py) against a real moto,
through the AWS proxy as scripts/stack wires it (the check's calls are marked internal)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from awsstack import client, start_proxy, start_sandbox
from conftest import Http

API_KEY = "aws-health-key"
ORG_ID = "3f1c9a52-8d0e-4b7a-b1c6-0e9f2d4a7c11"
EXPEL = "012205512454"
ACCOUNT = "123456789012"  # moto's default account
DEVICES = "/api/v2/security_devices"


@pytest.fixture(scope="module")
def stack(moto_server):
    workdir = Path(tempfile.mkdtemp(prefix="aws-health-test-"))
    moto_url = moto_server
    proxy_url, proxy = start_proxy(workdir, moto_url)
    try:
        sandbox_url, sandbox = start_sandbox(
            workdir, "--api-key", API_KEY, "--org-id", ORG_ID, "--moto-url", moto_url,
            "--aws-proxy-url", proxy_url, "--health-delay", "0.05")
        try:
            yield moto_url, sandbox_url, proxy_url
        finally:
            sandbox.stop()
    finally:
        proxy.stop()


@pytest.fixture
def api(stack) -> Http:
    moto_url, sandbox_url, proxy_url = stack
    assert Http(moto_url).post("/moto-api/reset").status == 200
    assert Http(proxy_url).post("/_proxy/reset").status == 204
    assert Http(proxy_url).call("PUT", "/_proxy/eventual", {
        "enabled": False, "refusals": 2, "assume_role_seconds": 5}).status == 200
    assert Http(sandbox_url).post("/_admin/reset").status == 204
    return Http(sandbox_url, API_KEY)


@pytest.fixture
def aws(stack, api):
    return lambda service: client(service, stack[0])


def trust_policy(principal: Any = f"arn:aws:iam::{EXPEL}:root", external_id: Any = ORG_ID,
                 **extra: Any) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": principal},
                            "Action": "sts:AssumeRole"}
    if external_id is not None:
        stmt["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    stmt.update(extra)
    return {"Version": "2012-10-17", "Statement": [stmt]}


def receive_policy(resource: str, actions: Any = ("sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                    "sqs:GetQueueAttributes"),
                   effect: str = "Allow") -> dict[str, Any]:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": effect, "Action": list(actions) if not isinstance(actions, str)
                           else actions, "Resource": resource}]}


def setup(aws, *, trust: dict | None = None, policy: dict | None | str = "default",
          queue: bool = True, role: bool = True, inline: bool = False) -> dict[str, str]:
    """A role (ExpelServiceRole), its policy and the queue in moto; the device_spec."""
    iam, sqs = aws("iam"), aws("sqs")
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:ExpelNotify"
    if queue:
        url = sqs.create_queue(QueueName="ExpelNotify")["QueueUrl"]
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"] == queue_arn
    else:
        url = f"{aws('sqs').meta.endpoint_url}/{ACCOUNT}/ExpelNotify"
    if role:
        iam.create_role(RoleName="ExpelServiceRole",
                        AssumeRolePolicyDocument=json.dumps(trust or trust_policy()))
        if policy == "default":
            policy = receive_policy(queue_arn)
        if policy is not None:
            if inline:
                iam.put_role_policy(RoleName="ExpelServiceRole", PolicyName="ExpelInline",
                                    PolicyDocument=json.dumps(policy))
            else:
                arn = iam.create_policy(PolicyName="ExpelAPIPolicy",
                                        PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
                iam.attach_role_policy(RoleName="ExpelServiceRole", PolicyArn=arn)
    return {"role_arn": f"arn:aws:iam::{ACCOUNT}:role/ExpelServiceRole",
            "role_session_name": "ExpelCloudTrail", "region": "us-east-1", "sqs_queue_url": url}


def device_health(api: Http, spec: dict[str, str], timeout: float = 20.0) -> dict[str, Any]:
    r = api.post(DEVICES, {"data": {
        "type": "security_devices",
        "attributes": {"name": "Acme - CloudTrail", "device_type": "CLOUD", "plugin_slug": "aws",
                       "location": "us-east-1", "device_spec": spec},
        "relationships": {"organization": {"data": {"type": "organizations", "id": ORG_ID}}}}})
    assert r.status == 201, r.body
    device_id = r.body["data"]["id"]
    deadline = time.monotonic() + timeout
    while True:
        attrs = api.get(f"{DEVICES}/{device_id}").body["data"]["attributes"]
        if not attrs["is_verifying_status"]:
            return attrs
        assert time.monotonic() < deadline, "health check did not finish"
        time.sleep(0.05)


def assert_unhealthy(attrs: dict[str, Any], reason: str) -> None:
    assert attrs["status"] == "unhealthy", attrs
    details = attrs["status_details"]
    assert reason in details["reason"], details
    assert details["checks"][-1]["result"] == "failed"


def test_healthy(stack, api, aws):
    attrs = device_health(api, setup(aws))
    assert attrs["status"] == "healthy", attrs["status_details"]
    checks = attrs["status_details"]["checks"]
    assert [c["name"] for c in checks] == ["assume_role", "role", "trust_policy", "queue",
                                           "role_policy"]
    assert all(c["result"] == "ok" for c in checks)
    # the check went through the proxy, marked as the sandbox's own: not counted
    assert Http(stack[2]).get("/_proxy/calls").body["total"] == 0
    assert Http(api.base).get("/_admin/health").body["aws_proxy_url"] == stack[2]


def test_new_role_cannot_be_assumed_yet(stack, api):
    """With the proxy's eventual-consistency mode on, Workbench's AssumeRole of a role made
    a moment ago is refused (AccessDenied) as in AWS; a re-check after N s is healthy."""
    proxy = Http(stack[2])
    assert proxy.call("PUT", "/_proxy/eventual", {"enabled": True, "refusals": 0,
                                                  "assume_role_seconds": 0.6}).status == 200
    spec = setup(lambda service: client(service, stack[2]))
    made = time.monotonic()
    attrs = device_health(api, spec)
    assert_unhealthy(attrs, f"cannot assume role {spec['role_arn']}: AccessDenied")
    assert attrs["status_details"]["checks"][-1]["name"] == "assume_role"
    time.sleep(max(0.0, 0.65 - (time.monotonic() - made)))
    attrs = device_health_again(api, lambda service: client(service, stack[0]), trust_policy())
    assert attrs["status"] == "healthy", attrs["status_details"]
    eventual = proxy.get("/_proxy/eventual").body
    assert eventual["refused"] == {} and eventual["refused_internal"] == {"sts.AssumeRole": 1}
    # only the test's own calls are in the log, none of Workbench's
    assert set(proxy.get("/_proxy/calls").body["operations"]) == {
        "sqs.CreateQueue", "sqs.GetQueueAttributes", "iam.CreateRole", "iam.CreatePolicy",
        "iam.AttachRolePolicy"}


def test_healthy_with_bare_account_principal_wildcards_and_inline_policy(api, aws):
    trust = trust_policy(principal=["arn:aws:iam::999999999999:root", EXPEL],
                         external_id=[ORG_ID], Action=["sts:AssumeRole", "sts:TagSession"])
    spec = setup(aws, trust=trust, inline=True,
                 policy=receive_policy(f"arn:aws:sqs:*:{ACCOUNT}:*", actions="sqs:*"))
    attrs = device_health(api, spec)
    assert attrs["status"] == "healthy", attrs["status_details"]


def test_wrong_external_id(api, aws):
    attrs = device_health(api, setup(aws, trust=trust_policy(external_id="someone-else")))
    assert_unhealthy(attrs, f"trust policy lacks sts:ExternalId = {ORG_ID}")
    assert attrs["status_details"]["checks"][-1]["name"] == "trust_policy"


def test_missing_external_id_condition(api, aws):
    attrs = device_health(api, setup(aws, trust=trust_policy(external_id=None)))
    assert_unhealthy(attrs, f"trust policy lacks sts:ExternalId = {ORG_ID}")


def test_trust_policy_without_expel_account(api, aws):
    attrs = device_health(api, setup(aws, trust=trust_policy(
        principal="arn:aws:iam::999999999999:root")))
    assert_unhealthy(attrs, f"trust policy does not allow account {EXPEL}")
    attrs = device_health_again(api, aws, trust_policy(principal="*"))
    assert_unhealthy(attrs, f"trust policy does not allow account {EXPEL}")


def device_health_again(api: Http, aws, trust: dict[str, Any]) -> dict[str, Any]:
    aws("iam").update_assume_role_policy(RoleName="ExpelServiceRole",
                                         PolicyDocument=json.dumps(trust))
    device_id = api.get(DEVICES).body["data"][0]["id"]
    r = api.patch(f"{DEVICES}/{device_id}", {"data": {
        "type": "security_devices", "id": device_id, "attributes": {"location": "again"}}})
    assert r.status == 200, r.body
    deadline = time.monotonic() + 20
    while True:
        attrs = api.get(f"{DEVICES}/{device_id}").body["data"]["attributes"]
        if not attrs["is_verifying_status"]:
            return attrs
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_role_missing(api, aws):
    attrs = device_health(api, setup(aws, role=False))
    assert_unhealthy(attrs, f"role ExpelServiceRole does not exist in account {ACCOUNT}")


def test_queue_missing(api, aws):
    spec = setup(aws, queue=False)
    attrs = device_health(api, spec)
    assert_unhealthy(attrs, f"queue {spec['sqs_queue_url']} does not exist")


def test_no_policy_attached(api, aws):
    attrs = device_health(api, setup(aws, policy=None))
    assert_unhealthy(attrs, "no policy of role ExpelServiceRole allows sqs:ReceiveMessage on "
                            f"arn:aws:sqs:us-east-1:{ACCOUNT}:ExpelNotify")


def test_policy_for_another_queue(api, aws):
    attrs = device_health(api, setup(aws, policy=receive_policy(
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:OtherQueue")))
    assert_unhealthy(attrs, "no policy of role ExpelServiceRole allows sqs:ReceiveMessage")


def test_policy_without_receive_message(api, aws):
    attrs = device_health(api, setup(aws, inline=True, policy=receive_policy(
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:ExpelNotify", actions=["sqs:SendMessage"])))
    assert_unhealthy(attrs, "no policy of role ExpelServiceRole allows sqs:ReceiveMessage")


def test_only_the_default_policy_version_counts(api, aws):
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:ExpelNotify"
    spec = setup(aws)
    iam = aws("iam")
    arn = iam.list_attached_role_policies(RoleName="ExpelServiceRole")[
        "AttachedPolicies"][0]["PolicyArn"]
    iam.create_policy_version(PolicyArn=arn, SetAsDefault=True, PolicyDocument=json.dumps(
        receive_policy(queue_arn, actions=["sqs:SendMessage"])))
    attrs = device_health(api, spec)
    assert_unhealthy(attrs, f"allows sqs:ReceiveMessage on {queue_arn}")


def test_explicit_deny(api, aws):
    spec = setup(aws)
    aws("iam").put_role_policy(RoleName="ExpelServiceRole", PolicyName="NoReceive",
                               PolicyDocument=json.dumps(receive_policy(
                                   "*", actions="sqs:Receive*", effect="Deny")))
    attrs = device_health(api, spec)
    assert_unhealthy(attrs, "policy NoReceive (inline) of role ExpelServiceRole denies "
                            "sqs:ReceiveMessage")


def test_expected_account_is_configurable(stack, api, aws):
    from sandbox.awshealth import check_aws_cloudtrail
    from sandbox.config import SandboxConfig
    from sandbox.health import HealthContext

    spec = setup(aws)
    device = {"plugin_slug": "aws", "organization_id": ORG_ID, "device_spec": spec}
    ctx = HealthContext(SandboxConfig(moto_url=stack[0], org_id=ORG_ID))
    assert check_aws_cloudtrail(device, ctx)[0] == "healthy"
    ctx = HealthContext(SandboxConfig(moto_url=stack[0], org_id=ORG_ID,
                                      expel_account_id="111122223333"))
    status, details = check_aws_cloudtrail(device, ctx)
    assert status == "unhealthy" and "account 111122223333" in details["reason"]
