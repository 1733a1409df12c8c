# The organization rollout of the benchmark (scripts/bench.py, org_side): ExpelServiceRole in
# every member account through one service-managed stack set targeting the root.
terraform {
  required_providers {
    expel = {
      source = "expel-io/expel"
    }
  }
}

provider "expel" {}

resource "expel_aws_organization_member_roles" "all" {}
