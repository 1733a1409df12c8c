"""The StackSets emulation around moto (sandbox/motoext.py): what AWS documents for
service-managed stack sets, which moto 5.2.5 alone does not do. In-process moto (mock_aws)
with the same patches moto_server runs with in the local stack."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox import motoext

REGION = "us-east-1"
TEMPLATE = {
    "Resources": {
        "R": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": "ExpelServiceRole",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
                "Policies": [{"PolicyName": "ExpelAPIPolicy", "PolicyDocument": {"Version": "2012-10-17", "Statement": []}}],
            },
        }
    }
}


@pytest.fixture()
def org():
    motoext.install()
    with mock_aws():
        o = boto3.client("organizations", region_name=REGION)
        o.create_organization(FeatureSet="ALL")
        root = o.list_roots()["Roots"][0]["Id"]
        top = o.create_organizational_unit(ParentId=root, Name="top")["OrganizationalUnit"]["Id"]
        nested = o.create_organizational_unit(ParentId=top, Name="nested")["OrganizationalUnit"]["Id"]
        deeper = o.create_organizational_unit(ParentId=nested, Name="deeper")["OrganizationalUnit"]["Id"]

        def account(name: str, parent: str) -> str:
            a = o.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]["AccountId"]
            o.move_account(AccountId=a, SourceParentId=root, DestinationParentId=parent)
            return a

        yield {"o": o, "root": root, "top": top, "nested": nested, "deeper": deeper, "account": account}


def roles(account: str) -> list[str]:
    sts = boto3.client("sts", region_name=REGION)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                        RoleSessionName="check")["Credentials"]
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id=c["AccessKeyId"],
                       aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
    return [r["RoleName"] for r in iam.list_roles()["Roles"]]


def stack_set(auto: bool = True) -> object:
    cf = boto3.client("cloudformation", region_name=REGION)
    cf.create_stack_set(StackSetName="expel", TemplateBody=json.dumps(TEMPLATE), PermissionModel="SERVICE_MANAGED",
                        AutoDeployment={"Enabled": auto, "RetainStacksOnAccountRemoval": False},
                        ManagedExecution={"Active": True}, Capabilities=["CAPABILITY_NAMED_IAM"])
    return cf


def test_nested_ous_filters_and_delete_by_ou(org):
    a, b, c, skip = (org["account"](n, p) for n, p in
                     [("a", org["top"]), ("b", org["nested"]), ("c", org["deeper"]), ("skip", org["deeper"])])
    cf = stack_set()
    s = cf.describe_stack_set(StackSetName="expel")["StackSet"]
    assert s["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert s["ManagedExecution"] == {"Active": True}
    cf.create_stack_instances(StackSetName="expel", Regions=[REGION], DeploymentTargets={
        "OrganizationalUnitIds": [org["top"]], "AccountFilterType": "DIFFERENCE", "Accounts": [skip]})
    got = {i["Account"]: i["OrganizationalUnitId"] for i in cf.list_stack_instances(StackSetName="expel")["Summaries"]}
    assert got == {a: org["top"], b: org["top"], c: org["top"]}
    assert "ExpelServiceRole" in roles(c) and "ExpelServiceRole" not in roles(skip)
    assert cf.describe_stack_set(StackSetName="expel")["StackSet"]["OrganizationalUnitIds"] == [org["top"]]
    with pytest.raises(ClientError) as e:
        cf.delete_stack_set(StackSetName="expel")
    assert e.value.response["Error"]["Code"] == "StackSetNotEmptyException"
    cf.delete_stack_instances(StackSetName="expel", Regions=[REGION], RetainStacks=False,
                              DeploymentTargets={"OrganizationalUnitIds": [org["top"]]})
    assert cf.list_stack_instances(StackSetName="expel")["Summaries"] == []
    assert "ExpelServiceRole" not in roles(a)
    cf.delete_stack_set(StackSetName="expel")


def test_auto_deployment_follows_accounts_and_retain_keeps_roles(org):
    cf = stack_set()
    cf.create_stack_instances(StackSetName="expel", Regions=[REGION],
                              DeploymentTargets={"OrganizationalUnitIds": [org["top"]]})
    late = org["account"]("late", org["deeper"])
    assert [i["Account"] for i in cf.list_stack_instances(StackSetName="expel")["Summaries"]] == [late]
    assert "ExpelServiceRole" in roles(late)
    org["o"].move_account(AccountId=late, SourceParentId=org["deeper"], DestinationParentId=org["root"])
    assert cf.list_stack_instances(StackSetName="expel")["Summaries"] == []
    assert "ExpelServiceRole" not in roles(late)
    # RetainStacks: the instance goes, the role stays.
    org["o"].move_account(AccountId=late, SourceParentId=org["root"], DestinationParentId=org["top"])
    cf.delete_stack_instances(StackSetName="expel", Regions=[REGION], RetainStacks=True,
                              DeploymentTargets={"OrganizationalUnitIds": [org["top"]]})
    assert cf.list_stack_instances(StackSetName="expel")["Summaries"] == []
    assert "ExpelServiceRole" in roles(late)


def test_update_redeploys_and_refuses_auto_deployment_with_targets(org):
    a = org["account"]("a", org["top"])
    cf = stack_set(auto=False)
    cf.create_stack_instances(StackSetName="expel", Regions=[REGION],
                              DeploymentTargets={"OrganizationalUnitIds": [org["top"]]})
    t = json.loads(json.dumps(TEMPLATE))
    t["Resources"]["R"]["Properties"]["RoleName"] = "Renamed"
    cf.update_stack_set(StackSetName="expel", TemplateBody=json.dumps(t), Capabilities=["CAPABILITY_NAMED_IAM"])
    assert "Renamed" in roles(a) and "ExpelServiceRole" not in roles(a)
    with pytest.raises(ClientError):
        cf.update_stack_set(StackSetName="expel", UsePreviousTemplate=True, Regions=[REGION],
                            AutoDeployment={"Enabled": True},
                            DeploymentTargets={"OrganizationalUnitIds": [org["top"]]})
    cf.update_stack_set(StackSetName="expel", UsePreviousTemplate=True, AutoDeployment={"Enabled": True})
    assert cf.describe_stack_set(StackSetName="expel")["StackSet"]["AutoDeployment"]["Enabled"] is True


def test_organizations_access_and_delegated_admin(org):
    cf = boto3.client("cloudformation", region_name=REGION)
    assert cf.describe_organizations_access()["Status"] == "DISABLED"
    cf.activate_organizations_access()
    assert cf.describe_organizations_access(CallAs="SELF")["Status"] == "ENABLED"
    services = org["o"].list_aws_service_access_for_organization()["EnabledServicePrincipals"]
    assert [s["ServicePrincipal"] for s in services] == [motoext.STACKSETS_PRINCIPAL]
    with pytest.raises(ClientError) as e:
        cf.describe_organizations_access(CallAs="DELEGATED_ADMIN")
    assert e.value.response["Error"]["Code"] == "ValidationError"


def test_drift_detection_finds_a_role_deleted_or_edited_in_a_member_account(org):
    a, b = org["account"]("a", org["top"]), org["account"]("b", org["nested"])
    cf = stack_set()
    cf.create_stack_instances(StackSetName="expel", Regions=[REGION],
                              DeploymentTargets={"OrganizationalUnitIds": [org["top"]]})
    drift = lambda: {i["Account"]: i["DriftStatus"] for i in cf.list_stack_instances(StackSetName="expel")["Summaries"]}
    assert drift() == {a: "NOT_CHECKED", b: "NOT_CHECKED"}
    op = cf.detect_stack_set_drift(StackSetName="expel")["OperationId"]
    assert cf.describe_stack_set_operation(StackSetName="expel", OperationId=op)["StackSetOperation"]["Action"] == "DETECT_DRIFT"
    assert drift() == {a: "IN_SYNC", b: "IN_SYNC"}
    sts = boto3.client("sts", region_name=REGION)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{b}:role/OrganizationAccountAccessRole", RoleSessionName="oob")["Credentials"]
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id=c["AccessKeyId"],
                       aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
    iam.delete_role_policy(RoleName="ExpelServiceRole", PolicyName="ExpelAPIPolicy")
    iam.delete_role(RoleName="ExpelServiceRole")
    assert drift() == {a: "IN_SYNC", b: "IN_SYNC"}, "refresh-like reads keep the last result"
    cf.detect_stack_set_drift(StackSetName="expel")
    assert drift() == {a: "IN_SYNC", b: "DRIFTED"}


def test_stack_instances_come_in_pages_of_at_most_100(org):
    top = org["top"]
    for i in range(105):
        org["account"](f"p{i}", top)
    cf = stack_set()
    cf.create_stack_instances(StackSetName="expel", Regions=[REGION], DeploymentTargets={"OrganizationalUnitIds": [top]})
    first = cf.list_stack_instances(StackSetName="expel", StackInstanceRegion=REGION)
    assert len(first["Summaries"]) == 100 and first["NextToken"]
    rest = cf.list_stack_instances(StackSetName="expel", NextToken=first["NextToken"], MaxResults=100)
    assert len(rest["Summaries"]) == 5 and "NextToken" not in rest
    small = cf.list_stack_instances(StackSetName="expel", MaxResults=40)
    assert len(small["Summaries"]) == 40
