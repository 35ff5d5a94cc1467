output "bucket" {
  description = "Destination bucket (SEQFERRY_BUCKET)."
  value       = aws_s3_bucket.runs.id
}

output "log_bucket" {
  description = "Bucket receiving the destination bucket's access logs."
  value       = aws_s3_bucket.logs.id
}

output "kms_key_arn" {
  description = "KMS key of the bucket and the topic."
  value       = aws_kms_key.main.arn
}

output "event_bus_name" {
  description = "Custom event bus (named after the prefix)."
  value       = aws_cloudwatch_event_bus.main.name
}

output "event_bus_arn" {
  description = "ARN of the event bus; other systems (a LIMS) send Transfer Requested events here."
  value       = aws_cloudwatch_event_bus.main.arn
}

output "queue_urls" {
  description = "Work queue URL of each consuming service."
  value       = { for role, queue in aws_sqs_queue.work : role => queue.url }
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queue URL of each consuming service."
  value       = { for role, queue in aws_sqs_queue.dlq : role => queue.url }
}

output "table_name" {
  description = "State table."
  value       = aws_dynamodb_table.state.name
}

output "topic_arn" {
  description = "Notification topic (the notifier's SEQFERRY_SNS_TOPIC_ARN)."
  value       = aws_sns_topic.notifications.arn
}

output "datasync_task_arn" {
  description = "DataSync task for the executor's datasync backend (null without agents)."
  value       = local.datasync_task_arn
}

output "role_arns" {
  description = "IAM role of each service, for the chart's <service>.serviceAccount.roleArn."
  value       = { for service, role in aws_iam_role.service : service => role.arn }
}

output "lims_role_arn" {
  description = "Role a LIMS assumes to put Transfer Requested on the bus (null unless lims_principal_arns is set)."
  value       = length(aws_iam_role.lims) > 0 ? aws_iam_role.lims[0].arn : null
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.main.dashboard_name
}

output "helm_values" {
  description = "Values for deploy/helm/seqferry matching these resources: terraform output -raw helm_values > aws-values.yaml"
  value = yamlencode(merge(
    {
      config = merge(
        {
          prefix       = var.prefix
          awsRegion    = local.region
          awsAccountId = local.account_id
        },
        # jsondecode(...): the two branches are objects of different shapes.
        jsondecode(var.bucket_name == null ? "{}" : jsonencode({ bucket = aws_s3_bucket.runs.id })),
      )
      notifier = {
        snsTopicArn    = aws_sns_topic.notifications.arn
        serviceAccount = { roleArn = aws_iam_role.service["notifier"].arn }
      }
      executor = merge(
        { serviceAccount = { roleArn = aws_iam_role.service["executor"].arn } },
        jsondecode(local.datasync_enabled ? jsonencode({ backend = "datasync", datasyncTaskArns = { sequencers = local.datasync_task_arn } }) : "{}"),
      )
    },
    { for service in ["scheduler", "adhoc", "simulator"] : service => { serviceAccount = { roleArn = aws_iam_role.service[service].arn } } if contains(local.services, service) },
  ))
}
