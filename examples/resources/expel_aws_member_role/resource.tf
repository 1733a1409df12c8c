# modules/member/main.tf
terraform {
  required_providers {
    expel = { source = "expel-io/expel", version = "~> 0.1" }
  }
}

resource "expel_aws_member_role" "this" {}

output "role_arn" {
  value = expel_aws_member_role.this.role_arn
}
