data "expel_organization" "this" {}

output "soc_email" {
  value = provider::expel::soc_email(data.expel_organization.this.name)
}
