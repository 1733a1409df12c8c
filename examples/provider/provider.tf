terraform {
  required_providers {
    expel = { source = "expel-io/expel", version = "~> 0.1" }
  }
}

provider "expel" {
  # api_key and organization_id come from EXPEL_API_KEY / EXPEL_ORGANIZATION_ID.
}

data "expel_organization" "this" {}

output "soc_email" {
  value = provider::expel::soc_email(data.expel_organization.this.name)
}
