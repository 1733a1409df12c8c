# Run in the account that holds the trail's bucket (Control Tower: Log Archive).
provider "expel" {
  alias = "log_archive"
  aws {
    assume_role {
      role_arn = "arn:aws:iam::222222222222:role/AWSControlTowerExecution"
    }
  }
}

resource "expel_cloudtrail_integration" "control_tower" {
  provider = expel.log_archive
  name     = "Acme - AWS Control Tower"

  existing_trail {
    bucket_name       = "aws-controltower-logs-222222222222-us-east-1"
    bucket_account_id = "222222222222"
    kms_key_arn       = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    sns_topic_arn     = "arn:aws:sns:us-east-1:222222222222:aws-controltower-logs-events"
    trail_arn         = "arn:aws:cloudtrail:us-east-1:111111111111:trail/aws-controltower-BaselineCloudTrail"
  }
}
