# The SentinelOne Singularity Endpoint guide as one resource. Runs against the local stack
# (`eval "$(scripts/stack up)"`: it exports SENTINELONE_CONSOLE_URL, SENTINELONE_API_TOKEN and
# SENTINELONE_ACCOUNT_ID), or against your real console and Workbench.
terraform {
  required_providers {
    expel = {
      source  = "expel-io/expel"
      version = "~> 0.1"
    }
  }
}

variable "console_url" {
  description = "SentinelOne console, e.g. https://usea1-1001.sentinelone.net (TF_VAR_console_url)."
  type        = string
}

variable "account_id" {
  description = "SentinelOne account id (TF_VAR_account_id)."
  type        = string
}

# Workbench settings from EXPEL_WORKBENCH_URL / EXPEL_API_KEY / EXPEL_ORGANIZATION_ID; the
# SentinelOne token (a console user allowed to manage roles and users) from
# SENTINELONE_API_TOKEN.
provider "expel" {}

data "expel_organization" "this" {}

resource "expel_sentinelone_device" "edr" {
  name              = "${data.expel_organization.this.name} - S1 EDR"
  console_url       = var.console_url
  account_id        = var.account_id
  organization_name = data.expel_organization.this.name

  # The guide's defaults, spelled out:
  # role_name         = "Viewer - Expel"
  # service_user_name = "Expel API"
  token_expires_in = "365d"
  rotate_before    = "30d"
  status_syncing   = true
}

output "security_device_id" {
  value = expel_sentinelone_device.edr.security_device_id
}

output "console_user_email" {
  value = expel_sentinelone_device.edr.console_user_email
}

output "token_expires_at" {
  value = expel_sentinelone_device.edr.token_expires_at
}

output "drift" {
  value = expel_sentinelone_device.edr.drift
}
