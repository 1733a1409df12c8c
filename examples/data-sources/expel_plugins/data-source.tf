data "expel_plugins" "aws" {
  slug = "aws"
}

output "aws_device_spec_fields" {
  value = keys(jsondecode(data.expel_plugins.aws.plugins[0].device_spec_schema).properties)
}
