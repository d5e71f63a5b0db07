variable "name" {
  description = "Name prefix of log groups, topic and alarms, e.g. `qingchuan-campus`."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the log groups and the alarm topic."
  type        = string
}

variable "log_retention_days" {
  description = "Days application logs are kept (等保 level 2 asks for at least six months)."
  type        = number
  default     = 365
}

variable "alarm_emails" {
  description = "Addresses that receive alarms (each must confirm the subscription mail)."
  type        = list(string)
  default     = []
}

variable "cluster_name" {
  description = "ECS cluster of the platform."
  type        = string
}

variable "service_names" {
  description = "Role → ECS service name, as output by the compute module."
  type        = map(string)
}

variable "alb_arn_suffix" {
  description = "Load balancer's ARN suffix."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "Web target group's ARN suffix."
  type        = string
}

variable "db_instance_id" {
  description = "RDS instance identifier."
  type        = string
}

variable "bucket_name" {
  description = "The platform's bucket (replication metrics)."
  type        = string
}

variable "replica_bucket_name" {
  description = "The off-site replica bucket (replication metrics)."
  type        = string
}

variable "error_log_lines_per_5min" {
  description = "ERROR log lines in five minutes that raise an alarm."
  type        = number
  default     = 20
}

variable "dead_deliveries_per_15min" {
  description = "Notifications that gave up (dead deliveries, from the worker's log) in fifteen minutes that raise an alarm."
  type        = number
  default     = 10
}

variable "http_5xx_per_5min" {
  description = "Server errors (5xx from the tasks) in five minutes that raise an alarm."
  type        = number
  default     = 25
}

variable "p95_seconds" {
  description = "p95 response time that raises an alarm (seed 003 asks for every response within 5 s)."
  type        = number
  default     = 1
}

variable "cpu_alarm_percent" {
  description = "Task CPU that raises an alarm when sustained (autoscaling aims lower)."
  type        = number
  default     = 85
}

variable "memory_alarm_percent" {
  description = "Task memory that raises an alarm."
  type        = number
  default     = 85
}

variable "db_cpu_percent" {
  description = "Postgres CPU that raises an alarm when sustained."
  type        = number
  default     = 80
}

variable "db_free_storage_gb" {
  description = "Free Postgres storage below which an alarm is raised."
  type        = number
  default     = 10
}

variable "db_connections" {
  description = "Postgres connections above which an alarm is raised (set near 80% of max_connections)."
  type        = number
  default     = 400
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
