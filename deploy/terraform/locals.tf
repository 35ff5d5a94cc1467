# Names mirror shared/src/seqferry_shared/resources.py (ResourceNames.for_prefix): change both together.
locals {
  bucket     = coalesce(var.bucket_name, "${var.prefix}-runs")
  log_bucket = "${local.bucket}-logs"
  bus        = var.prefix
  table      = "${var.prefix}-state"
  topic      = "${var.prefix}-notifications"

  queues = {
    executor = "${var.prefix}-executor"
    adhoc    = "${var.prefix}-adhoc"
    notifier = "${var.prefix}-notifier"
  }

  rules = {
    to_executor          = "${var.prefix}-to-executor"
    to_notifier          = "${var.prefix}-to-notifier"
    datasync_to_notifier = "${var.prefix}-datasync-to-notifier"
  }

  # Event detail-types and sources (shared/src/seqferry_shared/events/models.py).
  transfer_window_opened           = "Transfer Window Opened"
  transfer_requested               = "Transfer Requested"
  transfer_execution_state_changed = "Transfer Execution State Changed"
  scheduler_source                 = "seqferry.scheduler"
  executor_source                  = "seqferry.executor"
  aws_source_prefix                = "aws."
  datasync_source                  = "aws.datasync"
  datasync_detail_type             = "DataSync Task Execution State Change"

  # What each service may put on the bus: its own source, and only the detail-types it produces (the models'
  # SOURCE and DETAIL_TYPE). IAM enforces it (iam.tf), the rules match it (events.tf).
  event_producers = {
    scheduler = { source = local.scheduler_source, detail_types = [local.transfer_window_opened] }
    executor  = { source = local.executor_source, detail_types = [local.transfer_execution_state_changed] }
    adhoc     = { source = "seqferry.adhoc", detail_types = [local.transfer_requested, "Adhoc Manifest Processed"] }
    notifier  = { source = "seqferry.notifier", detail_types = ["Run Transfer Completed", "Run Transfer Failed"] }
    simulator = { source = "seqferry.simulator", detail_types = ["Sequencing Run Started", "Sequencing Run Completed"] }
  }

  adhoc_prefix         = "adhoc/"
  adhoc_results_prefix = "adhoc/results/"
  storage_class_tag    = "seqferry-class"

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = var.aws_region

  # Known at plan time (agents created here have no ARN yet): DataSync is used when an agent is given at all.
  datasync_enabled = var.datasync_agent != null || length(var.datasync_agent_arns) > 0
  datasync_agents  = concat(aws_datasync_agent.nas[*].arn, var.datasync_agent_arns)
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
