"""moto_server with the CloudFormation StackSets behaviour AWS documents and moto 5.2.5 lacks.

Run as `python -m sandbox.motoext [moto_server arguments]` (scripts/stack does): it patches
moto's classes, then runs moto_server's own `main`. Everything here is an EMULATION of what
the AWS documentation says, labelled with its source; none of it is moto's. It touches only
service-managed stack sets and the organizations-access calls; every other call is moto's.

What moto 5.2.5 does and this adds (AWS CloudFormation API Reference, the pages named):
- CreateStackSet stores AutoDeployment and ManagedExecution (moto drops both) and
  DescribeStackSet returns them with the targeted OrganizationalUnitIds (API_StackSet).
- CreateStackInstances reaches every account of the target OUs at any depth (moto: one level)
  and honours DeploymentTargets.AccountFilterType with Accounts (API_DeploymentTargets:
  NONE, UNION, INTERSECTION, DIFFERENCE); the management account is never a target
  ("CloudFormation doesn't deploy stack instances to the organization management account").
  Each instance records its OrganizationalUnitId (API_StackInstanceSummary).
- DeleteStackInstances by DeploymentTargets.OrganizationalUnitIds (moto needs Accounts, which
  a service-managed stack set may not send) and RetainStacks (the stack's resources stay;
  API_DeleteStackInstances).
- UpdateStackSet redeploys the new template to every instance (moto stores it only) and
  updates AutoDeployment.
- Automatic deployment (API_AutoDeployment): an account created in or moved into a targeted
  OU gets an instance; one moved out loses it unless RetainStacksOnAccountRemoval.
- ListStackInstances pages: at most MaxResults (default and maximum 100) a page, NextToken for
  the rest (API_ListStackInstances; moto returns everything at once).
- DetectStackSetDrift (moto: HTTP 500): each instance's IAM roles compared with its template
  (the role, its trust policy and its inline policies), its DriftStatus (DRIFTED, IN_SYNC;
  NOT_CHECKED before) and LastDriftCheckTimestamp in ListStackInstances
  (API_DetectStackSetDrift, API_StackInstanceSummary); an operation of action DETECT_DRIFT.
- DescribeOrganizationsAccess / ActivateOrganizationsAccess / DeactivateOrganizationsAccess
  (moto: HTTP 500): trusted access is the organization's enabled service principal
  `member.org.stacksets.cloudformation.amazonaws.com`, as Organizations lists it
  (ListAWSServiceAccessForOrganization). With CallAs=DELEGATED_ADMIN, an account not
  registered as a StackSets delegated administrator is refused [G: the exact code and words
  are not documented; ValidationError as CloudFormation answers other refused CallAs].
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any

from moto.cloudformation import models as cfm
from moto.cloudformation import responses as cfr
from moto.cloudformation.exceptions import ValidationError
from moto.core.responses import ActionResult, EmptyResult
from moto.iam.models import iam_backends
from moto.organizations.models import OrganizationsBackend, organizations_backends

STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"
# moto's own list of principals that may have delegated administrators spells it without the
# `member.org.` prefix; AWS's user guide registers `member.org.stacksets...`. Both count.
DELEGATED_PRINCIPALS = (STACKSETS_PRINCIPAL, "stacksets.cloudformation.amazonaws.com")


# ---------------------------------------------------------------------------------------
# Organizations, seen from the stack set's (management) account.

def org_backend(account_id: str, partition: str = "aws") -> Any:
    """The organization's backend for a caller: the management account's."""
    master = organizations_backends.master_accounts.get(account_id)
    if master is not None:
        account_id, partition = master
    return organizations_backends[account_id][partition]


def descendants(org: Any, ou_ids: list[str]) -> set[str]:
    """The OUs named and every OU below them, at any depth."""
    found = set(ou_ids)
    frontier = list(ou_ids)
    while frontier:
        parent = frontier.pop()
        for ou in org.ou:
            if ou.parent_id == parent and ou.id not in found:
                found.add(ou.id)
                frontier.append(ou.id)
    return found


def targeted_accounts(org: Any, targets: dict[str, Any]) -> dict[str, str]:
    """account id -> the OU it is reached through, for DeploymentTargets (API_DeploymentTargets)."""
    ous = list(targets.get("OrganizationalUnitIds") or [])
    listed = set(targets.get("Accounts") or [])
    mode = targets.get("AccountFilterType") or ("UNION" if listed else "NONE")
    master = org.org.master_account_id if org.org else None
    out: dict[str, str] = {}
    for top in ous:
        tree = descendants(org, [top])
        for account in org.accounts:
            if account.parent_id in tree and account.id != master:
                out.setdefault(account.id, top)
    if mode == "INTERSECTION":
        out = {a: ou for a, ou in out.items() if a in listed}
    elif mode == "DIFFERENCE":
        out = {a: ou for a, ou in out.items() if a not in listed}
    elif mode == "UNION":
        for a in listed:
            if a != master:
                out.setdefault(a, "")
    return out


def ou_of(org: Any, account_id: str, tops: list[str]) -> str | None:
    """Which of the targeted OUs `account_id` sits under, if any."""
    for top in tops:
        tree = descendants(org, [top])
        for account in org.accounts:
            if account.id == account_id and account.parent_id in tree:
                return top
    return None


# ---------------------------------------------------------------------------------------
# Stack sets: stored settings, instances per OU, redeploy.

def _ext(stackset: Any) -> None:
    if not hasattr(stackset, "organizational_unit_ids"):
        stackset.organizational_unit_ids = []
        stackset.auto_deployment = None
        stackset.managed_execution_active = False


cfm.StackSet.managed_execution = property(  # type: ignore[assignment]
    lambda self: {"Active": bool(getattr(self, "managed_execution_active", False))}
)


def _new_instance(stackset: Any, account: str, region: str, ou: str) -> None:
    insts = stackset.instances
    if insts.get_instance(account, region) is not None:
        return
    inst = cfm.StackInstance(
        account_id=account,
        region_name=region,
        stackset_id=insts.stackset_id,
        stack_name=insts.stack_name,
        name=insts.stackset_name,
        template=insts.template,
        parameters=[],
        permission_model=stackset.permission_model,
    )
    inst.ou_id = ou
    insts.stack_instances.append(inst)


_to_dict = cfm.StackInstance.to_dict


def _instance_to_dict(self: Any) -> dict[str, Any]:
    d = _to_dict(self)
    if getattr(self, "ou_id", None):
        d["OrganizationalUnitId"] = self.ou_id
    d["DriftStatus"] = getattr(self, "drift_status", "NOT_CHECKED")
    if getattr(self, "drift_checked", None):
        d["LastDriftCheckTimestamp"] = self.drift_checked
    return d


def _template_roles(template: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(template)
    except ValueError:
        return []
    return [r.get("Properties", {}) for r in doc.get("Resources", {}).values()
            if r.get("Type") == "AWS::IAM::Role"]


def _role_drifted(account: str, partition: str, props: dict[str, Any]) -> bool:
    """Whether the role the template describes is missing or differs in `account`."""
    roles = iam_backends[account][partition].roles.values()
    role = next((r for r in roles if r.name == props.get("RoleName")), None)
    if role is None:
        return True
    if _doc(role.assume_role_policy_document) != props.get("AssumeRolePolicyDocument"):
        return True
    for p in props.get("Policies", []):
        live = role.policies.get(p["PolicyName"])
        if live is None or _doc(live) != p["PolicyDocument"]:
            return True
    return False


def _doc(d: Any) -> Any:
    """A policy document as moto keeps it (a JSON string or already a dict), as a dict."""
    if isinstance(d, str):
        try:
            return json.loads(d)
        except ValueError:
            return d
    return d


def detect_stack_set_drift(self: Any) -> ActionResult:
    _call_as_checked(self)
    stackset = self.cloudformation_backend.describe_stack_set(self._get_param("StackSetName"))
    now = datetime.now(timezone.utc)
    partition = stackset.arn.split(":")[1]
    for inst in stackset.instances.stack_instances:
        roles = _template_roles(stackset.instances.template)
        inst.drift_status = "DRIFTED" if any(_role_drifted(inst.account_id, partition, r) for r in roles) else "IN_SYNC"
        inst.drift_checked = now
    accounts = sorted({i.account_id for i in stackset.instances.stack_instances})
    regions = sorted({i.region_name for i in stackset.instances.stack_instances})
    return ActionResult({"OperationId": _operation(stackset, "DETECT_DRIFT", accounts, regions)})


cfm.StackInstance.to_dict = _instance_to_dict  # type: ignore[method-assign]


def _remove_instance(stackset: Any, inst: Any, retain: bool) -> None:
    if not retain:
        try:
            inst.delete()
        except Exception as e:  # noqa: BLE001
            # A resource deleted behind CloudFormation's back: stack deletion treats its
            # handler's NotFound as deleted (CloudFormation resource handler contract); moto
            # raises instead. Anything else is a real failure.
            if "NoSuchEntity" not in f"{type(e).__name__} {getattr(e, 'code', '')} {e}":
                raise
    stackset.instances.stack_instances.remove(inst)


def _operation(stackset: Any, action: str, accounts: list[str], regions: list[str]) -> str:
    op_id = str(cfm.mock_random.uuid4())
    stackset._create_operation(op_id, action, "SUCCEEDED", accounts, regions)
    return op_id


def _call_as_checked(self: Any) -> None:
    """CallAs=DELEGATED_ADMIN from an account that is not a registered delegated admin."""
    if self._get_param("CallAs") != "DELEGATED_ADMIN":
        return
    org = org_backend(self.current_account)
    registered = any(
        admin.account.id == self.current_account
        and any(p in admin.services for p in DELEGATED_PRINCIPALS)
        for admin in getattr(org, "admins", [])
    )
    if not registered:
        raise ValidationError(
            message=f"Account {self.current_account} is not registered as a delegated administrator for {STACKSETS_PRINCIPAL} [G]"
        )


_create_stack_set = cfr.CloudFormationResponse.create_stack_set


def create_stack_set(self: Any) -> ActionResult:
    _call_as_checked(self)
    result = _create_stack_set(self)
    stackset = self.cloudformation_backend.describe_stack_set(self._get_param("StackSetName"))
    _ext(stackset)
    auto = self._get_params().get("AutoDeployment")
    if auto is not None and stackset.permission_model == "SERVICE_MANAGED":
        stackset.auto_deployment = {
            "Enabled": auto.get("Enabled") in (True, "true"),
            "RetainStacksOnAccountRemoval": auto.get("RetainStacksOnAccountRemoval") in (True, "true"),
        }
    managed = self._get_params().get("ManagedExecution") or {}
    stackset.managed_execution_active = managed.get("Active") in (True, "true")
    return result


def create_stack_instances(self: Any) -> ActionResult:
    _call_as_checked(self)
    name = self._get_param("StackSetName")
    stackset = self.cloudformation_backend.describe_stack_set(name)
    targets = self._get_params().get("DeploymentTargets")
    if stackset.permission_model != "SERVICE_MANAGED" or not targets:
        return _create_stack_instances(self)
    _ext(stackset)
    regions = self._get_param("Regions", [])
    org = org_backend(self.current_account)
    reached = targeted_accounts(org, targets)
    for ou in targets.get("OrganizationalUnitIds") or []:
        if ou not in stackset.organizational_unit_ids:
            stackset.organizational_unit_ids.append(ou)
    for region in regions:
        for account, ou in reached.items():
            _new_instance(stackset, account, region, ou)
    return ActionResult({"OperationId": _operation(stackset, "CREATE", list(reached), regions)})


_create_stack_instances = cfr.CloudFormationResponse.create_stack_instances


def delete_stack_instances(self: Any) -> ActionResult:
    _call_as_checked(self)
    name = self._get_param("StackSetName")
    stackset = self.cloudformation_backend.describe_stack_set(name)
    targets = self._get_params().get("DeploymentTargets")
    if stackset.permission_model != "SERVICE_MANAGED" or not targets:
        return _delete_stack_instances(self)
    _ext(stackset)
    regions = self._get_param("Regions", [])
    retain = self._get_param("RetainStacks") in (True, "true")
    org = org_backend(self.current_account)
    reached = targeted_accounts(org, targets)
    ous = set(targets.get("OrganizationalUnitIds") or [])
    # A whole OU (no account filter) also takes the instances it reached accounts through
    # that have moved since, and leaves the stack set's targets.
    whole = (targets.get("AccountFilterType") or "NONE") == "NONE" and not targets.get("Accounts")
    gone = [
        i for i in list(stackset.instances.stack_instances)
        if i.region_name in regions
        and (i.account_id in reached or (whole and getattr(i, "ou_id", None) in ous))
    ]
    for inst in gone:
        _remove_instance(stackset, inst, retain)
    if whole:
        stackset.organizational_unit_ids = [o for o in stackset.organizational_unit_ids if o not in ous]
    accounts = sorted({i.account_id for i in gone})
    return ActionResult({"OperationId": _operation(stackset, "DELETE", accounts, regions)})


_delete_stack_instances = cfr.CloudFormationResponse.delete_stack_instances


def update_stack_set(self: Any) -> ActionResult:
    _call_as_checked(self)
    name = self._get_param("StackSetName")
    stackset = self.cloudformation_backend.describe_stack_set(name)
    _ext(stackset)
    params = self._get_params()
    auto = params.get("AutoDeployment")
    if auto is not None and (params.get("DeploymentTargets") or params.get("Regions")):
        # API_UpdateStackSet: "If you specify AutoDeployment, don't specify DeploymentTargets or Regions."
        raise ValidationError(message="AutoDeployment cannot be updated together with DeploymentTargets or Regions")
    result = _update_stack_set(self)
    if auto is not None:
        current = stackset.auto_deployment or {}
        stackset.auto_deployment = {
            "Enabled": auto.get("Enabled", current.get("Enabled")) in (True, "true"),
            "RetainStacksOnAccountRemoval": auto.get(
                "RetainStacksOnAccountRemoval", current.get("RetainStacksOnAccountRemoval")
            ) in (True, "true"),
        }
    managed = params.get("ManagedExecution")
    if managed is not None:
        stackset.managed_execution_active = managed.get("Active") in (True, "true")
    body = self._get_param("TemplateBody")
    if body and stackset.permission_model == "SERVICE_MANAGED":
        # Redeploy: every instance's stack is made again from the new template.
        stackset.instances.template = body
        for inst in list(stackset.instances.stack_instances):
            account, region, ou = inst.account_id, inst.region_name, getattr(inst, "ou_id", "")
            _remove_instance(stackset, inst, retain=False)
            _new_instance(stackset, account, region, ou)
    return result


_update_stack_set = cfr.CloudFormationResponse.update_stack_set


def _access_status(self: Any) -> str:
    org = org_backend(self.current_account)
    enabled = any(s.get("ServicePrincipal") == STACKSETS_PRINCIPAL for s in org.services)
    return "ENABLED" if enabled else "DISABLED"


def describe_organizations_access(self: Any) -> ActionResult:
    _call_as_checked(self)
    return ActionResult({"Status": _access_status(self)})


def activate_organizations_access(self: Any) -> ActionResult:
    org = org_backend(self.current_account)
    if org.org is None or org.org.master_account_id != self.current_account:
        raise ValidationError(message="Only the management account of an organization can activate trusted access [G]")
    org.enable_aws_service_access(ServicePrincipal=STACKSETS_PRINCIPAL)
    return EmptyResult()


def deactivate_organizations_access(self: Any) -> ActionResult:
    org = org_backend(self.current_account)
    org.disable_aws_service_access(ServicePrincipal=STACKSETS_PRINCIPAL)
    return EmptyResult()


# ---------------------------------------------------------------------------------------
# Automatic deployment: accounts that join or leave a targeted OU.

def _auto_stacksets(master: str, partition: str) -> list[Any]:
    out = []
    for region, backend in cfm.cloudformation_backends[master].items():
        del region
        for stackset in backend.stacksets.values():
            _ext(stackset)
            auto = stackset.auto_deployment or {}
            if stackset.status == "ACTIVE" and auto.get("Enabled"):
                out.append(stackset)
    return out


def _regions_of(stackset: Any) -> list[str]:
    regions = sorted({i.region_name for i in stackset.instances.stack_instances})
    return regions or [stackset.arn.split(":")[3]]


def _auto_deploy(org: Any, account_id: str) -> None:
    if org.org is None:
        return
    master = org.org.master_account_id
    if account_id == master:
        return
    for stackset in _auto_stacksets(master, org.partition):
        ou = ou_of(org, account_id, stackset.organizational_unit_ids)
        for region in _regions_of(stackset):
            present = stackset.instances.get_instance(account_id, region)
            if ou is not None and present is None:
                _new_instance(stackset, account_id, region, ou)
                _operation(stackset, "CREATE", [account_id], [region])
            elif ou is None and present is not None:
                retain = bool((stackset.auto_deployment or {}).get("RetainStacksOnAccountRemoval"))
                _remove_instance(stackset, present, retain)
                _operation(stackset, "DELETE", [account_id], [region])


_org_cls = OrganizationsBackend
_create_account = _org_cls.create_account
_move_account = _org_cls.move_account


def create_account(self: Any, **kwargs: Any) -> dict[str, Any]:
    status = _create_account(self, **kwargs)
    _auto_deploy(self, status["CreateAccountStatus"]["AccountId"])
    return status


def move_account(self: Any, **kwargs: Any) -> None:
    _move_account(self, **kwargs)
    _auto_deploy(self, kwargs["AccountId"])


def list_stack_instances(self: Any) -> ActionResult:
    stackset = self.cloudformation_backend.describe_stack_set(self._get_param("StackSetName"))
    region = self._get_param("StackInstanceRegion")
    items = [i.to_dict() for i in stackset.instances.stack_instances
             if region is None or i.region_name == region]
    size = min(int(self._get_param("MaxResults") or 100), 100)
    start = int(self._get_param("NextToken") or 0)
    page = items[start:start + size]
    result: dict[str, Any] = {"Summaries": page}
    if start + size < len(items):
        result["NextToken"] = str(start + size)
    return ActionResult(result)


def install() -> None:
    """Applies the patches (idempotent: the originals are kept at import)."""
    R = cfr.CloudFormationResponse
    R.create_stack_set = create_stack_set  # type: ignore[method-assign]
    R.create_stack_instances = create_stack_instances  # type: ignore[method-assign]
    R.delete_stack_instances = delete_stack_instances  # type: ignore[method-assign]
    R.update_stack_set = update_stack_set  # type: ignore[method-assign]
    R.list_stack_instances = list_stack_instances  # type: ignore[method-assign]
    R.detect_stack_set_drift = detect_stack_set_drift  # type: ignore[attr-defined]
    R.describe_organizations_access = describe_organizations_access  # type: ignore[attr-defined]
    R.activate_organizations_access = activate_organizations_access  # type: ignore[attr-defined]
    R.deactivate_organizations_access = deactivate_organizations_access  # type: ignore[attr-defined]
    _org_cls.create_account = create_account  # type: ignore[method-assign]
    _org_cls.move_account = move_account  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    install()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
