# Benchmark anchor (not a test, not an example): the AWS side of expel_cloudtrail_integration
# written by hand over hashicorp/aws 5.100.0, object for object, with the same documents
# (provider/src/policy/documents.rs). scripts/bench.py applies it against the same moto,
# through the same fault proxy, as bench/expel/main.tf. It has no Workbench side and no
# canary: hand-written HCL registers the device by clicking in the UI.
#
# Needs `terraform init` against the filesystem mirror in /opt/tf-plugins (bench.py writes the
# CLI config); the variables come from TF_VAR_* set by bench.py.
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

variable "aws_endpoint" {
  description = "Every AWS service goes here: the fault proxy in front of moto (AWS_PROXY_URL)."
  type        = string
}

variable "external_id" {
  description = "The Workbench organization id (the sandbox's by default)."
  type        = string
  default     = "6e1a4f0c-2b7d-4c59-9a83-5d0f1e2b3c4a"
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true

  endpoints {
    cloudtrail = var.aws_endpoint
    iam        = var.aws_endpoint
    kms        = var.aws_endpoint
    s3         = var.aws_endpoint
    sqs        = var.aws_endpoint
    sts        = var.aws_endpoint
  }

  # Two tags on every object, as the expel side (the user's tag plus its ownership marker).
  default_tags {
    tags = {
      team         = "platform"
      "managed-by" = "hand-written-hcl"
    }
  }
}

# The account is looked up, as our provider does (STS GetCallerIdentity).
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  region     = "us-east-1"

  trail_name  = "GlobalCloudTrail"
  bucket_name = "expel-cloudtrail-${local.account_id}-${local.region}"
  queue_name  = "ExpelMasterCloudTrailNotify"

  trail_arn  = "arn:${local.partition}:cloudtrail:${local.region}:${local.account_id}:trail/${local.trail_name}"
  bucket_arn = "arn:${local.partition}:s3:::${local.bucket_name}"
  # Known before the queue exists, so the queue's policy can be inline (one CreateQueue).
  queue_arn = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.queue_name}"

  # ExpelAPIPolicy's read-only actions (guide Step 6), in the guide's order.
  read_only_actions = [
    "ec2:DescribeInstances",
    "ec2:DescribeRegions",
    "ec2:DescribeSecurityGroups",
    "iam:List*",
    "iam:Get*",
    "rds:DescribeDBInstances",
    "rds:ListTagsForResource",
    "organizations:ListAccounts",
    "ec2:DescribeVolumes",
    "ecs:DescribeTaskDefinition",
    "ecs:ListTaskDefinitions",
    "lambda:GetFunction",
    "lambda:ListFunctions",
    "lightsail:GetInstances",
    "lightsail:GetRegions",
    "s3:ListAllMyBuckets",
    "s3:GetBucketNotification",
    "s3:GetEncryptionConfiguration",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrail",
    "cloudtrail:ListTrails",
    "config:ListDiscoveredResources",
    "config:GetDiscoveredResourceCounts",
    "eks:DescribeCluster",
    "eks:ListClusters",
    "ecs:ListContainerInstances",
    "ecs:DescribeContainerInstances",
    "ecs:DescribeClusters",
    "ecs:ListClusters",
    "organizations:DescribeOrganization",
  ]
}

# Steps 1 and 4: the KMS key, its policy and alias.
resource "aws_kms_key" "trail" {
  description             = "Expel CloudTrail: encrypts the trail's logs, its bucket and the notification queue"
  deletion_window_in_days = 7
  enable_key_rotation     = true # as the expel side's enable_key_rotation (default true)
  policy = jsonencode({
    Version = "2012-10-17"
    Id      = "ExpelCloudTrailKeyPolicy"
    Statement = [
      {
        Sid       = "Enable IAM User Permissions"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "Allow CloudTrail to encrypt logs"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "kms:GenerateDataKey*"
        Resource  = "*"
        Condition = {
          StringLike = {
            "kms:EncryptionContext:aws:cloudtrail:arn" = "arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"
          }
          StringEquals = { "aws:SourceArn" = local.trail_arn }
        }
      },
      {
        Sid       = "Allow CloudTrail to describe key"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "kms:DescribeKey"
        Resource  = "*"
      },
      {
        Sid       = "Allow cloudtrail bucket to encrypt/decrypt SQS"
        Effect    = "Allow"
        Principal = { Service = "s3.amazonaws.com" }
        Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource  = "*"
        Condition = {
          StringLike   = { "aws:SourceArn" = local.bucket_arn }
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "trail" {
  name          = "alias/ExpelCloudTrail"
  target_key_id = aws_kms_key.trail.key_id
}

# Steps 1 and 2: the log bucket, SSE-KMS, public access block, CloudTrail's bucket policy.
resource "aws_s3_bucket" "logs" {
  bucket        = local.bucket_name
  force_destroy = true # as the expel side's force_destroy = true
}

# As the expel side's bucket_versioning (default true).
resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.trail.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AWSCloudTrailAclCheck"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "s3:GetBucketAcl"
        Resource  = local.bucket_arn
        Condition = { StringEquals = { "aws:SourceArn" = local.trail_arn } }
      },
      {
        Sid       = "AWSCloudTrailWrite"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${local.bucket_arn}/AWSLogs/${local.account_id}/*"
        Condition = {
          StringEquals = {
            "s3:x-amz-acl"  = "bucket-owner-full-control"
            "aws:SourceArn" = local.trail_arn
          }
        }
      },
    ]
  })
  # As the expel side: the public access block first, then the policy.
  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# Step 3: the notification queue with SSE-KMS and the guide's access policy (inline).
resource "aws_sqs_queue" "notify" {
  name                       = local.queue_name
  visibility_timeout_seconds = 30
  message_retention_seconds  = 604800
  delay_seconds              = 0
  max_message_size           = 262144
  receive_wait_time_seconds  = 0
  kms_master_key_id          = aws_kms_key.trail.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Id      = "__default_policy_ID"
    Statement = [
      {
        Sid       = "__owner_statement"
        Effect    = "Allow"
        Principal = { AWS = "*" }
        Action    = "SQS:SendMessage"
        Resource  = local.queue_arn
        Condition = { ArnLike = { "aws:SourceArn" = local.bucket_arn } }
      },
    ]
  })
}

# Step 5: every object-create event of the bucket goes to the queue.
resource "aws_s3_bucket_notification" "logs" {
  bucket = aws_s3_bucket.logs.id
  queue {
    id        = "ExpelNotifyQueue"
    queue_arn = aws_sqs_queue.notify.arn
    events    = ["s3:ObjectCreated:*"]
  }
}

# Step 1: the multi-region trail, logging on, all read and write management events.
#
# moto gap (moto 5.2.5): hashicorp/aws 5.x uses the trail ARN as the id and calls DeleteTrail
# with Name = <ARN>, which AWS accepts; moto's delete_trail only matches names, answers 200 and
# keeps the trail. So `terraform destroy` of this file leaves the trail in moto. No HCL change
# can alter the Name the provider sends, so nothing is worked around here: bench.py resets moto
# before every apply and reports what each side's destroy left behind.
resource "aws_cloudtrail" "global" {
  name                          = local.trail_name
  s3_bucket_name                = aws_s3_bucket.logs.id
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  is_organization_trail         = false
  kms_key_id                    = aws_kms_key.trail.arn
  enable_logging                = true

  event_selector {
    read_write_type           = "All"
    include_management_events = true
  }

  # CreateTrail fails on real AWS until the bucket policy lets CloudTrail write.
  depends_on = [
    aws_s3_bucket_policy.logs,
    aws_s3_bucket_server_side_encryption_configuration.logs,
    aws_s3_bucket_notification.logs,
  ]
}

# Step 6: ExpelAPIPolicy.
resource "aws_iam_policy" "expel_api" {
  name        = "ExpelAPIPolicy"
  description = "Expel Workbench: read-only investigation access plus the CloudTrail queue, logs and key"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "VisualEditor0"
        Effect   = "Allow"
        Action   = local.read_only_actions
        Resource = "*"
      },
      {
        Sid      = "ExpelReadQueue"
        Effect   = "Allow"
        Action   = ["sqs:DeleteMessage", "sqs:ReceiveMessage"]
        Resource = aws_sqs_queue.notify.arn
      },
      {
        Sid      = "ExpelReadLogs"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = "${aws_s3_bucket.logs.arn}/*"
      },
      {
        Sid      = "ExpelDecryptLogs"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = aws_kms_key.trail.arn
      },
    ]
  })
}

# Step 7: ExpelServiceRole, trusting Expel's account with the organization id as external id.
resource "aws_iam_role" "expel" {
  name        = "ExpelServiceRole"
  description = "Expel Workbench assumes this role to read CloudTrail logs and investigate"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "ExpelAssumeRole"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::012205512454:root" }
        Action    = "sts:AssumeRole"
        Condition = { StringEquals = { "sts:ExternalId" = var.external_id } }
      },
    ]
  })
}

resource "aws_iam_role_policy_attachment" "expel" {
  role       = aws_iam_role.expel.name
  policy_arn = aws_iam_policy.expel_api.arn
}

output "role_arn" {
  value = aws_iam_role.expel.arn
}

output "queue_url" {
  value = aws_sqs_queue.notify.url
}
