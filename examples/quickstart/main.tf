# Quickstart: runs against the local stack (`eval "$(scripts/stack up)"`), or against your
# real Workbench and AWS account with EXPEL_API_KEY / EXPEL_ORGANIZATION_ID and AWS
# credentials set.
terraform {
  required_providers {
    expel = {
      source  = "expel-io/expel"
      version = "~> 0.1"
    }
  }
}

# Every setting comes from the environment: EXPEL_WORKBENCH_URL, EXPEL_API_KEY,
# EXPEL_ORGANIZATION_ID, and the AWS variables for the CloudTrail integration.
provider "expel" {}

data "expel_organization" "this" {}

data "expel_plugins" "catalogue" {}

# The whole AWS CloudTrail guide: KMS key, log bucket, notification queue, bucket
# notification, multi-region trail, ExpelAPIPolicy, ExpelServiceRole, and the security
# device in Workbench.
resource "expel_cloudtrail_integration" "aws" {
  name = "${data.expel_organization.this.name} - AWS CloudTrail"
}

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

output "cloudtrail_role_arn" {
  value = expel_cloudtrail_integration.aws.role_arn
}

output "security_device_id" {
  value = expel_cloudtrail_integration.aws.security_device_id
}
