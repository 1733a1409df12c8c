# An AWS Organization onboarded to Expel with one provider, whatever its size: the CloudTrail
# integration with an organization trail in the management account (which makes
# ExpelServiceRole there), and ExpelServiceRole with the read-only ExpelAPIPolicy in every
# member account, including accounts that join later (a service-managed CloudFormation
# StackSet with automatic deployment).
#
# Run against the local stack (from the repository root, dev_overrides as in the README):
#   eval "$(scripts/stack up)"
#   .stack/venv/bin/python tests/e2e/oob.py org-setup members=3   # organization and accounts
#   .stack/venv/bin/python tests/e2e/oob.py stacksets-access-on    # StackSets trusted access
#   cd examples/org-stackset && terraform apply
terraform {
  required_providers {
    expel = {
      source  = "expel-io/expel"
      version = "~> 0.1"
    }
  }
}

variable "organizational_unit_ids" {
  description = "OUs whose accounts get the role; null for the whole organization (its root)."
  type        = list(string)
  default     = null
}

variable "exclude_account_ids" {
  description = "Member accounts that must not get the role."
  type        = list(string)
  default     = []
}

# The management account's credentials (or a StackSets delegated administrator's, with
# call_as = "DELEGATED_ADMIN" below).
provider "expel" {}

resource "expel_cloudtrail_integration" "org" {
  name               = "Acme - AWS Organization CloudTrail"
  organization_trail = true
}

resource "expel_aws_organization_member_roles" "members" {
  organizational_unit_ids = var.organizational_unit_ids
  exclude_account_ids     = var.exclude_account_ids
}

output "management_role_arn" {
  value = expel_cloudtrail_integration.org.role_arn
}

output "member_accounts" {
  value = keys(expel_aws_organization_member_roles.members.accounts)
}

output "failed_accounts" {
  value = expel_aws_organization_member_roles.members.failed_accounts
}
