# AWS DataSync: the NAS (through an agent on the lab network, over NFS or SMB) to the destination bucket, one task
# whose executions the executor starts with include filters. Created only when an agent is given.
#
# The options are the reference behaviour; the executor passes the same ones with every execution.

# The agent: a VM (VMware, Hyper-V, KVM) or EC2 instance next to the NAS, deployed first, then activated here
# with its activation key (or its IP address, which makes terraform fetch the key from the agent over port 80).
# The key is single-use and expires after 30 minutes; later changes to it are ignored.
resource "aws_datasync_agent" "nas" {
  count = var.datasync_agent == null ? 0 : 1

  name                  = var.datasync_agent.name
  activation_key        = var.datasync_agent.activation_key
  ip_address            = var.datasync_agent.ip_address
  vpc_endpoint_id       = var.datasync_agent.vpc_endpoint_id
  private_link_endpoint = var.datasync_agent.private_link_endpoint
  subnet_arns           = var.datasync_agent.subnet_arns
  security_group_arns   = var.datasync_agent.security_group_arns

  lifecycle {
    ignore_changes = [activation_key, ip_address]
  }
}

resource "aws_cloudwatch_log_group" "datasync" {
  count = local.datasync_enabled ? 1 : 0

  name              = "/aws/datasync/${var.prefix}"
  retention_in_days = var.datasync_log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

data "aws_iam_policy_document" "datasync_logs" {
  count = local.datasync_enabled ? 1 : 0

  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.datasync[0].arn}:*"]

    principals {
      type        = "Service"
      identifiers = ["datasync.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "datasync" {
  count = local.datasync_enabled ? 1 : 0

  policy_name     = "${var.prefix}-datasync"
  policy_document = data.aws_iam_policy_document.datasync_logs[0].json
}

# The role DataSync assumes to write into the bucket.
data "aws_iam_policy_document" "datasync_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["datasync.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:datasync:${local.region}:${local.account_id}:*"]
    }
  }
}

data "aws_iam_policy_document" "datasync_bucket" {
  statement {
    sid       = "Bucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.runs.arn]
  }

  statement {
    sid = "Objects"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:GetObjectTagging",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
      "s3:PutObjectTagging",
    ]
    resources = ["${aws_s3_bucket.runs.arn}/*"]
  }

  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role" "datasync" {
  count = local.datasync_enabled ? 1 : 0

  name               = "${var.prefix}-datasync-bucket-access"
  assume_role_policy = data.aws_iam_policy_document.datasync_assume.json
}

resource "aws_iam_role_policy" "datasync" {
  count = local.datasync_enabled ? 1 : 0

  name   = "bucket"
  role   = aws_iam_role.datasync[0].id
  policy = data.aws_iam_policy_document.datasync_bucket.json
}

resource "aws_datasync_location_nfs" "nas" {
  count = local.datasync_enabled && var.nas_protocol == "NFS" ? 1 : 0

  server_hostname = var.nas_server_hostname
  subdirectory    = var.nas_export_path

  on_prem_config {
    agent_arns = local.datasync_agents
  }

  mount_options {
    version = var.nfs_version
  }

  lifecycle {
    precondition {
      condition     = var.nas_server_hostname != null
      error_message = "nas_server_hostname is required when DataSync is used."
    }
  }
}

# The same NAS root shared over SMB, for labs whose instruments write to a Windows share.
resource "aws_datasync_location_smb" "nas" {
  count = local.datasync_enabled && var.nas_protocol == "SMB" ? 1 : 0

  server_hostname = var.nas_server_hostname
  subdirectory    = var.nas_export_path
  user            = var.smb_user
  password        = var.smb_password
  domain          = var.smb_domain
  agent_arns      = local.datasync_agents

  mount_options {
    version = var.smb_version
  }

  lifecycle {
    precondition {
      condition     = var.nas_server_hostname != null && var.smb_user != null && var.smb_password != null
      error_message = "nas_protocol = SMB needs nas_server_hostname, smb_user and smb_password."
    }
  }
}

# Object key = path relative to the NAS root, as the local backend writes it.
resource "aws_datasync_location_s3" "runs" {
  count = local.datasync_enabled ? 1 : 0

  s3_bucket_arn    = aws_s3_bucket.runs.arn
  subdirectory     = "/"
  s3_storage_class = "STANDARD"

  s3_config {
    bucket_access_role_arn = aws_iam_role.datasync[0].arn
  }

  depends_on = [aws_iam_role_policy.datasync]
}

resource "aws_datasync_task" "sequencers" {
  count = local.datasync_enabled ? 1 : 0

  name                     = "${var.prefix}-sequencers"
  source_location_arn      = var.nas_protocol == "SMB" ? aws_datasync_location_smb.nas[0].arn : aws_datasync_location_nfs.nas[0].arn
  destination_location_arn = aws_datasync_location_s3.runs[0].arn
  cloudwatch_log_group_arn = aws_cloudwatch_log_group.datasync[0].arn

  options {
    transfer_mode          = "CHANGED"
    verify_mode            = "ONLY_FILES_TRANSFERRED"
    log_level              = "TRANSFER"
    atime                  = "BEST_EFFORT"
    mtime                  = "PRESERVE"
    preserve_deleted_files = "PRESERVE"
    overwrite_mode         = "ALWAYS"
    task_queueing          = "ENABLED"
  }

  depends_on = [aws_cloudwatch_log_resource_policy.datasync]
}
