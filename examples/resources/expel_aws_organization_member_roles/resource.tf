# In the management account (or a StackSets delegated administrator with
# call_as = "DELEGATED_ADMIN"): ExpelServiceRole in every member account, including the ones
# that join later.
resource "expel_aws_organization_member_roles" "all" {
  # Default: the organization's root, i.e. every member account.
  organizational_unit_ids = ["ou-ab12-cdefgh34", "ou-ab12-ijklmn56"]
  exclude_account_ids     = ["111122223333"]
}

output "accounts_without_the_role" {
  value = expel_aws_organization_member_roles.all.failed_accounts
}
