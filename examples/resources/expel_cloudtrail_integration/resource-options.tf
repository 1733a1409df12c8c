provider "expel" {
  aws {
    region = "eu-west-1"
    assume_role {
      role_arn = "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole"
    }
  }
}

resource "expel_cloudtrail_integration" "org" {
  name            = "Acme - AWS CloudTrail (organization)"
  device_location = "Dublin"

  # Guide names, spelled out (these are the defaults).
  trail_name  = "GlobalCloudTrail"
  queue_name  = "ExpelMasterCloudTrailNotify"
  kms_alias   = "alias/ExpelCloudTrail"
  policy_name = "ExpelAPIPolicy"
  role_name   = "ExpelServiceRole"

  bucket_name               = "acme-cloudtrail-logs"
  organization_trail        = true # run in the management account of the AWS Organization
  bucket_key_enabled        = true
  message_retention_seconds = 1209600

  role_session_name = "ExpelCloudTrail"

  tags = {
    team = "platform"
  }

  verify           = true
  wait_for_healthy = true

  force_destroy            = false
  key_deletion_window_days = 30

  timeouts {
    create = "30m"
    update = "30m"
    delete = "20m"
  }
}
