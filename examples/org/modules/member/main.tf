# ExpelServiceRole and a read-only ExpelAPIPolicy in one member account of the organization.
# The caller passes the provider configured for that account:
#   module "member_a" {
#     source    = "./modules/member"
#     providers = { expel = expel.member_a }
#   }
terraform {
  required_providers {
    expel = {
      source  = "expel-io/expel"
      version = "~> 0.1"
    }
  }
}

variable "tags" {
  type    = map(string)
  default = {}
}

# The guide: the role must have the same name in every account (the default, ExpelServiceRole).
resource "expel_aws_member_role" "this" {
  tags = var.tags
}

output "account_id" {
  value = expel_aws_member_role.this.account_id
}

output "role_arn" {
  value = expel_aws_member_role.this.role_arn
}
