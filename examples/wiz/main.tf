# The Wiz guide (Wiz Cloud) as one resource. Run against the local stack:
#   eval "$(scripts/stack up)"   (exports the Workbench and WIZ_* variables)
#   terraform apply
# Then send `domain_verification_code` to Expel; once Expel confirms, set
# console_access { domain_validated = true } and apply again.
terraform {
  required_providers {
    expel = {
      source  = "expel-io/expel"
      version = "~> 0.1"
    }
  }
}

# Workbench from EXPEL_*; Wiz from WIZ_CLIENT_ID, WIZ_CLIENT_SECRET, WIZ_AUTH_URL, WIZ_API_URL.
provider "expel" {}

variable "domain_validated" {
  type    = bool
  default = false
}

resource "expel_wiz_device" "this" {
  name    = "Acme Wiz"
  product = "cloud"

  console_access {
    domain_validated = var.domain_validated
  }
}

output "domain_verification_code" {
  value = expel_wiz_device.this.domain_verification_code
}

output "security_device_id" {
  value = expel_wiz_device.this.security_device_id
}

output "webhook_url" {
  value = expel_wiz_device.this.webhook_url
}

output "drift" {
  value = expel_wiz_device.this.drift
}
