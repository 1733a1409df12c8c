terraform import module.member_a.expel_aws_member_role.this ExpelServiceRole
terraform import module.member_a.expel_aws_member_role.this arn:aws:iam::111111111111:role/ExpelServiceRole
