# Where the platform's logs go and who is woken when something is wrong: one encrypted log
# group per role, an SNS topic for alarms, and CloudWatch alarms on the signals that matter
# to schools (errors, slowness, unhealthy tasks, a stopped worker, the database filling up,
# off-site copies falling behind). Prometheus rules and the Grafana dashboard for the
# platform's own `/metrics` live in infra/prometheus/ and infra/grafana/.

locals {
  log_groups = toset(["web", "worker", "preview", "cli", "exec"])
  alarm      = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_log_group" "this" {
  for_each          = local.log_groups
  name              = "/campus/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

# ---------------------------------------------------------------- errors in the logs

# `log_format = "json"` writes one object per line with `level`; every ERROR line counts.
resource "aws_cloudwatch_log_metric_filter" "errors" {
  for_each       = toset(["web", "worker", "preview"])
  name           = "${var.name}-${each.key}-errors"
  log_group_name = aws_cloudwatch_log_group.this[each.key].name
  pattern        = "{ $.level = \"ERROR\" }"

  metric_transformation {
    name          = "ErrorLogLines"
    namespace     = "Campus/${var.name}"
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "error_logs" {
  alarm_name          = "${var.name}-error-logs"
  alarm_description   = "More than ${var.error_log_lines_per_5min} ERROR log lines in 5 minutes. Runbook: infra/RUNBOOK.md#error-logs"
  namespace           = "Campus/${var.name}"
  metric_name         = "ErrorLogLines"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.error_log_lines_per_5min
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

# A notification that gave up after `notify_max_attempts` (the worker logs "delivery dead"
# with the school, channel and error). Only the web role serves /metrics, so the worker's
# own counters never reach Prometheus; its log does reach CloudWatch.
resource "aws_cloudwatch_log_metric_filter" "dead_deliveries" {
  name           = "${var.name}-notify-dead-deliveries"
  log_group_name = aws_cloudwatch_log_group.this["worker"].name
  pattern        = "{ $.message = \"delivery dead\" }"

  metric_transformation {
    name          = "DeadDeliveries"
    namespace     = "Campus/${var.name}"
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "dead_deliveries" {
  alarm_name          = "${var.name}-notify-dead-deliveries"
  alarm_description   = "More than ${var.dead_deliveries_per_15min} notifications gave up in 15 minutes (parents not reached). Runbook: infra/RUNBOOK.md#notify-dead-deliveries"
  namespace           = "Campus/${var.name}"
  metric_name         = "DeadDeliveries"
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = 1
  threshold           = var.dead_deliveries_per_15min
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

# ---------------------------------------------------------------- load balancer

resource "aws_cloudwatch_metric_alarm" "http_5xx" {
  alarm_name          = "${var.name}-http-5xx"
  alarm_description   = "More than ${var.http_5xx_per_5min} server errors in 5 minutes. Runbook: infra/RUNBOOK.md#http-5xx"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.http_5xx_per_5min
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "slow_responses" {
  alarm_name          = "${var.name}-slow-responses"
  alarm_description   = "p95 response time above ${var.p95_seconds} s for 10 minutes. Runbook: infra/RUNBOOK.md#slow-responses"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  extended_statistic  = "p95"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.p95_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_targets" {
  alarm_name          = "${var.name}-unhealthy-web-tasks"
  alarm_description   = "A web task fails /readyz (cannot reach Postgres or S3). Runbook: infra/RUNBOOK.md#unhealthy-web-tasks"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

# ---------------------------------------------------------------- tasks

resource "aws_cloudwatch_metric_alarm" "service_cpu" {
  for_each            = var.service_names
  alarm_name          = "${var.name}-${each.key}-cpu"
  alarm_description   = "${each.key} tasks above ${var.cpu_alarm_percent}% CPU for 15 minutes although autoscaling should have added tasks (at its maximum?). Runbook: infra/RUNBOOK.md#service-hot"
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = var.cluster_name, ServiceName = each.value }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.cpu_alarm_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "service_memory" {
  for_each            = var.service_names
  alarm_name          = "${var.name}-${each.key}-memory"
  alarm_description   = "${each.key} tasks above ${var.memory_alarm_percent}% memory. Runbook: infra/RUNBOOK.md#service-hot"
  namespace           = "AWS/ECS"
  metric_name         = "MemoryUtilization"
  dimensions          = { ClusterName = var.cluster_name, ServiceName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.memory_alarm_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

# No running worker means no notifications and no scheduled jobs: parents are not told
# their child arrived.
resource "aws_cloudwatch_metric_alarm" "no_tasks" {
  for_each            = var.service_names
  alarm_name          = "${var.name}-${each.key}-not-running"
  alarm_description   = "No ${each.key} task has been running for 5 minutes. Runbook: infra/RUNBOOK.md#service-not-running"
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  dimensions          = { ClusterName = var.cluster_name, ServiceName = each.value }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

# ---------------------------------------------------------------- database

resource "aws_cloudwatch_metric_alarm" "db_cpu" {
  alarm_name          = "${var.name}-db-cpu"
  alarm_description   = "Postgres above ${var.db_cpu_percent}% CPU for 15 minutes. Runbook: infra/RUNBOOK.md#database-busy"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = var.db_instance_id }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.db_cpu_percent
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "db_storage" {
  alarm_name          = "${var.name}-db-storage"
  alarm_description   = "Less than ${var.db_free_storage_gb} GB free on Postgres (autoscaling storage may be at its ceiling). Runbook: infra/RUNBOOK.md#database-storage"
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = var.db_instance_id }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.db_free_storage_gb * 1073741824
  comparison_operator = "LessThanThreshold"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "db_connections" {
  alarm_name          = "${var.name}-db-connections"
  alarm_description   = "More than ${var.db_connections} Postgres connections. Runbook: infra/RUNBOOK.md#database-busy"
  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = { DBInstanceIdentifier = var.db_instance_id }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.db_connections
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

# ---------------------------------------------------------------- off-site copies

resource "aws_cloudwatch_metric_alarm" "replication_failed" {
  alarm_name          = "${var.name}-replication-failed"
  alarm_description   = "Files failed to copy to the off-site bucket. Runbook: infra/RUNBOOK.md#replication"
  namespace           = "AWS/S3"
  metric_name         = "OperationsFailedReplication"
  dimensions          = { SourceBucket = var.bucket_name, DestinationBucket = var.replica_bucket_name, RuleId = "offsite" }
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "replication_latency" {
  alarm_name          = "${var.name}-replication-latency"
  alarm_description   = "Off-site copies more than an hour behind. Runbook: infra/RUNBOOK.md#replication"
  namespace           = "AWS/S3"
  metric_name         = "ReplicationLatency"
  dimensions          = { SourceBucket = var.bucket_name, DestinationBucket = var.replica_bucket_name, RuleId = "offsite" }
  statistic           = "Maximum"
  period              = 900
  evaluation_periods  = 2
  threshold           = 3600
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  tags                = var.tags
}
