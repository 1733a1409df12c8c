# By the stack set's name, in the account that administers it.
terraform import expel_aws_organization_member_roles.all ExpelMemberRoles
# From a StackSets delegated administrator.
terraform import expel_aws_organization_member_roles.all DELEGATED_ADMIN/ExpelMemberRoles
