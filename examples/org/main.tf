# An AWS Organization onboarded to Expel: the CloudTrail integration with an organization
# trail in the management account, and ExpelServiceRole with a read-only ExpelAPIPolicy in
# each member account (the guide, Steps 6 and 7).
#
# The default provider points at the management account; one alias per member account
# assumes the role AWS Organizations creates there (OrganizationAccountAccessRole).
# Run against the local stack (from the repository root, dev_overrides as in the README):
#   eval "$(scripts/stack up)"
#   .stack/venv/bin/python tests/e2e/oob.py org-setup   # organization, trusted access, two member accounts; prints their ids
#   cd examples/org && terraform get                      # links the local module
#   terraform apply -var 'member_account_ids=["<id1>","<id2>"]'
terraform {
  required_providers {
    expel = {
      source  = "expel-io/expel"
      version = "~> 0.1"
    }
  }
}

variable "member_account_ids" {
  description = "Two member accounts of the organization."
  type        = list(string)
}

variable "member_access_role" {
  description = "Role assumed in each member account."
  type        = string
  default     = "OrganizationAccountAccessRole"
}

provider "expel" {}

provider "expel" {
  alias = "member_a"
  aws {
    assume_role {
      role_arn = "arn:aws:iam::${var.member_account_ids[0]}:role/${var.member_access_role}"
    }
  }
}

provider "expel" {
  alias = "member_b"
  aws {
    assume_role {
      role_arn = "arn:aws:iam::${var.member_account_ids[1]}:role/${var.member_access_role}"
    }
  }
}

resource "expel_cloudtrail_integration" "org" {
  name               = "Acme - AWS Organization CloudTrail"
  organization_trail = true
}

module "member_a" {
  source    = "./modules/member"
  providers = { expel = expel.member_a }
  tags      = { team = "platform" }
}

module "member_b" {
  source    = "./modules/member"
  providers = { expel = expel.member_b }
  tags      = { team = "platform" }
}

output "management_role_arn" {
  value = expel_cloudtrail_integration.org.role_arn
}

output "member_role_arns" {
  value = [module.member_a.role_arn, module.member_b.role_arn]
}
