output "log_group_names" {
  description = "Log group per role (`web`, `worker`, `preview`, `cli`) and for ECS Exec (`exec`)."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}

output "alarm_topic_arn" {
  description = "SNS topic alarms publish to (subscribe a pager or chat bridge here)."
  value       = aws_sns_topic.alarms.arn
}
