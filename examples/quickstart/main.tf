# Quickstart: runs against the local stack (`eval "$(scripts/stack up)"`), or against your
# real Workbench with EXPEL_API_KEY / EXPEL_ORGANIZATION_ID set.
terraform {
  required_providers {
    expel = {
      source = "expel-io/expel"
    }
  }
}

# Every setting comes from the environment: EXPEL_WORKBENCH_URL, EXPEL_API_KEY,
# EXPEL_ORGANIZATION_ID, and the AWS variables for the CloudTrail resources.
provider "expel" {}

data "expel_organization" "this" {}

data "expel_plugins" "catalogue" {}

output "organization" {
  value = data.expel_organization.this.name
}

# The address the onboarding guides ask you to invite for Expel's SOC.
output "soc_email" {
  value = provider::expel::soc_email(data.expel_organization.this.name)
}

output "plugins" {
  value = { for p in data.expel_plugins.catalogue.plugins : p.slug => p.display_name }
}
