# The destination bucket (run data, ad-hoc manifests and results, checksum manifests) and its access-log bucket.

resource "aws_s3_bucket" "runs" {
  bucket = local.bucket
}

resource "aws_s3_bucket_ownership_controls" "runs" {
  bucket = aws_s3_bucket.runs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "runs" {
  bucket                  = aws_s3_bucket.runs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "runs" {
  bucket = aws_s3_bucket.runs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "runs" {
  bucket = aws_s3_bucket.runs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

data "aws_iam_policy_document" "runs" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.runs.arn, "${aws_s3_bucket.runs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOutdatedTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.runs.arn, "${aws_s3_bucket.runs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "runs" {
  bucket = aws_s3_bucket.runs.id
  policy = data.aws_iam_policy_document.runs.json

  depends_on = [aws_s3_bucket_public_access_block.runs]
}

resource "aws_s3_bucket_logging" "runs" {
  bucket        = aws_s3_bucket.runs.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/"

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "runs" {
  bucket = aws_s3_bucket.runs.id

  rule {
    id     = "basecalls-to-deep-archive"
    status = "Enabled"

    filter {
      tag {
        key   = local.storage_class_tag
        value = "basecalls"
      }
    }

    transition {
      days          = var.basecalls_to_deep_archive_days
      storage_class = "DEEP_ARCHIVE"
    }
  }

  rule {
    id     = "alignments-to-deep-archive"
    status = "Enabled"

    filter {
      tag {
        key   = local.storage_class_tag
        value = "alignments"
      }
    }

    transition {
      days          = var.alignments_to_deep_archive_days
      storage_class = "DEEP_ARCHIVE"
    }
  }

  rule {
    id     = "variants-to-standard-ia"
    status = "Enabled"

    filter {
      tag {
        key   = local.storage_class_tag
        value = "variants"
      }
    }

    transition {
      days          = var.variants_to_standard_ia_days
      storage_class = "STANDARD_IA"
    }
  }

  # Everything else in a run folder (InterOp, XML, sample sheets, logs): the reference moved all data to Glacier
  # after 30 days; Glacier Instant Retrieval keeps these small files readable in milliseconds.
  rule {
    id     = "run-data-to-glacier-ir"
    status = "Enabled"

    filter {
      tag {
        key   = local.storage_class_tag
        value = "run"
      }
    }

    transition {
      days          = var.run_data_to_glacier_ir_days
      storage_class = "GLACIER_IR"
    }
  }

  dynamic "rule" {
    for_each = var.reads_expire_days == null ? [] : [var.reads_expire_days]

    content {
      id     = "reads-expiry"
      status = "Enabled"

      filter {
        tag {
          key   = local.storage_class_tag
          value = "reads"
        }
      }

      expiration {
        days = rule.value
      }
    }
  }

  rule {
    id     = "noncurrent-versions-and-stale-uploads"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expire_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.runs]
}

# Ad-hoc manifests dropped under adhoc/ reach the adhoc service through its queue.
resource "aws_s3_bucket_notification" "runs" {
  bucket = aws_s3_bucket.runs.id

  queue {
    id            = "adhoc-manifests"
    queue_arn     = aws_sqs_queue.work["adhoc"].arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = local.adhoc_prefix
  }

  depends_on = [aws_sqs_queue_policy.work]
}

# -- Access logs ------------------------------------------------------------------------------------------------
# Server access log delivery supports SSE-S3 only, so this bucket uses it rather than the KMS key.

resource "aws_s3_bucket" "logs" {
  bucket = local.log_bucket
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "S3ServerAccessLogsDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.runs.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.access_log_retention_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }
}
