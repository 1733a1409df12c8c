# Benchmark: expel_cloudtrail_integration as scripts/bench.py applies it, side by side with
# bench/aws-anchor (the same AWS objects over hashicorp/aws). Not a test, not an example.
# Runs with dev_overrides (no `terraform init` on Terraform 1.11); settings from the stack's
# environment (EXPEL_*, AWS_ENDPOINT_URL = the fault proxy).
terraform {
  required_providers {
    expel = {
      source = "expel-io/expel"
    }
  }
}

variable "verify" {
  description = "Canary check after apply (an object in the bucket must reach the queue)."
  type        = bool
  default     = true
}

provider "expel" {}

resource "expel_cloudtrail_integration" "this" {
  name   = "Acme - AWS CloudTrail"
  verify = var.verify

  # Like the anchor's aws_s3_bucket.force_destroy and deletion_window_in_days: destroy removes
  # the bucket and schedules the key for deletion, so both sides do the same work.
  force_destroy            = true
  key_deletion_window_days = 7

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
