# The AWS CloudTrail guide as one resource. Run against the local stack:
#   eval "$(scripts/stack up)"   (exports the Workbench and AWS variables)
terraform {
  required_providers {
    expel = {
      source  = "expel-io/expel"
      version = "~> 0.1"
    }
  }
}

provider "expel" {}

resource "expel_cloudtrail_integration" "this" {
  name = "Acme - AWS CloudTrail"

  tags = {
    team = "platform"
  }
}

output "role_arn" {
  value = expel_cloudtrail_integration.this.role_arn
}

output "queue_url" {
  value = expel_cloudtrail_integration.this.queue_url
}

output "security_device_id" {
  value = expel_cloudtrail_integration.this.security_device_id
}
