# An AWS Control Tower landing zone onboarded to Expel: its organization trail already writes
# every account's logs to the Log Archive account's bucket. The integration attaches to that
# trail (`existing_trail`) instead of making one: in the Log Archive account it makes the queue,
# subscribes it to the topic the bucket publishes to (or notifies it directly when nothing else
# takes the bucket's object-create events), adds our decrypt statement to the logs' KMS key
# policy, and makes ExpelServiceRole with ExpelAPIPolicy. The trail, the bucket and the key are
# never modified or deleted; destroy removes only what was added.
#
# The default provider points at the management account; the alias assumes a role in the Log
# Archive account (Control Tower makes AWSControlTowerExecution there). See the guide
# "Existing trails and Control Tower".
#
# Against the local stack (from the repository root, dev_overrides as in the README):
#   eval "$(scripts/stack up)"
#   .stack/venv/bin/python tests/e2e/oob.py control-tower   # prints the landing zone's ids as JSON
#   cd examples/control-tower && terraform apply \
#     -var log_archive_account_id=<log_archive> -var log_archive_access_role=OrganizationAccountAccessRole \
#     -var kms_key_arn=<key_arn> -var sns_topic_arn=<topic_arn> -var trail_arn=<trail_arn>
terraform {
  required_providers {
    expel = {
      source  = "expel-io/expel"
      version = "~> 0.1"
    }
  }
}

variable "log_archive_account_id" {
  description = "The Log Archive account of the landing zone."
  type        = string
}

variable "log_archive_access_role" {
  description = "Role assumed in the Log Archive account."
  type        = string
  default     = "AWSControlTowerExecution"
}

variable "region" {
  description = "The landing zone's home region (where the log bucket is)."
  type        = string
  default     = "us-east-1"
}

variable "kms_key_arn" {
  description = "The KMS key the organization trail encrypts with (null if none)."
  type        = string
  default     = null
}

variable "sns_topic_arn" {
  description = "A topic the log bucket already publishes to (null to notify the queue directly)."
  type        = string
  default     = null
}

variable "trail_arn" {
  description = "The organization trail, for validation (null to skip)."
  type        = string
  default     = null
}

provider "expel" {}

provider "expel" {
  alias = "log_archive"
  aws {
    region = var.region
    assume_role {
      role_arn = "arn:aws:iam::${var.log_archive_account_id}:role/${var.log_archive_access_role}"
    }
  }
}

resource "expel_cloudtrail_integration" "control_tower" {
  provider = expel.log_archive
  name     = "Acme - AWS Control Tower"

  existing_trail {
    bucket_name       = "aws-controltower-logs-${var.log_archive_account_id}-${var.region}"
    bucket_account_id = var.log_archive_account_id
    kms_key_arn       = var.kms_key_arn
    sns_topic_arn     = var.sns_topic_arn
    trail_arn         = var.trail_arn
  }
}

output "role_arn" {
  value = expel_cloudtrail_integration.control_tower.role_arn
}

output "queue_url" {
  value = expel_cloudtrail_integration.control_tower.queue_url
}
