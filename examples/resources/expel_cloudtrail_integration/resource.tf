provider "expel" {
  # EXPEL_API_KEY, EXPEL_ORGANIZATION_ID and the AWS credentials come from the environment.
}

resource "expel_cloudtrail_integration" "this" {
  name = "Acme - AWS CloudTrail"
}

output "role_arn" {
  value = expel_cloudtrail_integration.this.role_arn
}

output "security_device_id" {
  value = expel_cloudtrail_integration.this.security_device_id
}
