variable "s1_admin_token" {
  description = "A SentinelOne API token that may manage roles, users and service users."
  type        = string
  sensitive   = true
}

provider "expel" {
  sentinelone {
    api_token = var.s1_admin_token # or SENTINELONE_API_TOKEN
  }
}

data "expel_organization" "this" {}

resource "expel_sentinelone_device" "edr" {
  name              = "Acme - S1 EDR"
  console_url       = "https://usea1-1001.sentinelone.net"
  account_id        = "1491542137455280128"
  organization_name = data.expel_organization.this.name
  token_expires_in  = "365d"
  rotate_before     = "30d"
  status_syncing    = true
}
