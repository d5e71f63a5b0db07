variable "name" {
  description = "Name prefix of the database resources, e.g. `qingchuan-campus`."
  type        = string
}

variable "vpc_id" {
  description = "VPC the database lives in."
  type        = string
}

variable "subnet_ids" {
  description = "Database subnets (at least two zones; no route to the internet)."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to reach Postgres on 5432 (the platform's tasks)."
  type        = list(string)
}

variable "engine_major_version" {
  description = "Postgres major version; selects the parameter group family. The platform needs 14 or later."
  type        = number
  default     = 16

  validation {
    condition     = var.engine_major_version >= 14
    error_message = "The platform needs PostgreSQL 14 or later."
  }
}

variable "engine_version" {
  description = "Exact engine version, or just the major version to take the newest minor one."
  type        = string
  default     = "16"
}

variable "instance_class" {
  description = "Instance size. db.t4g.large (2 vCPU, 8 GiB) serves 30–100 schools; move to db.m7g.large when CPU credits run low."
  type        = string
  default     = "db.t4g.large"
}

variable "multi_az" {
  description = "A synchronous standby in a second zone with automatic failover (doubles the instance price)."
  type        = bool
  default     = true
}

variable "database_name" {
  description = "Database created for the platform."
  type        = string
  default     = "campus"
}

variable "username" {
  description = "Master user, used by the platform (it creates a role and a schema per school, so it needs CREATEROLE)."
  type        = string
  default     = "campus"
}

variable "password" {
  description = "Master user's password (from the secrets module)."
  type        = string
  sensitive   = true
}

variable "allocated_storage_gb" {
  description = "Initial storage. Rows only: files live in S3. About 0.5 GiB per school per year of use."
  type        = number
  default     = 50
}

variable "max_allocated_storage_gb" {
  description = "Ceiling for storage autoscaling."
  type        = number
  default     = 500
}

variable "backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery (1–35)."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "Keep between 7 and 35 days of backups: restoring a school relies on point-in-time recovery."
  }
}

variable "backup_window" {
  description = "Daily backup window in UTC (default 18:00–19:00 UTC = 02:00–03:00 China time, when schools are closed)."
  type        = string
  default     = "18:00-19:00"
}

variable "maintenance_window" {
  description = "Weekly maintenance window in UTC (default Saturday night China time)."
  type        = string
  default     = "sat:19:30-sat:20:30"
}

variable "apply_immediately" {
  description = "Apply changes that need a restart or failover (instance class, storage type, engine version) at once instead of in `maintenance_window`. Turn on for the apply of a planned resize, then off again."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (turn off only to tear an environment down on purpose)."
  type        = bool
  default     = true
}

variable "log_min_duration_ms" {
  description = "Statements slower than this are logged (milliseconds)."
  type        = number
  default     = 500
}

variable "force_ssl" {
  description = "Require TLS from clients (`rds.force_ssl`). `campus` connects with `sslmode=verify-full` against the RDS CA bundle in its image (see the secrets module's `database_tls`)."
  type        = bool
  default     = true
}

variable "citus_coordinator" {
  description = "When one Postgres server is outgrown: the coordinator of a Citus 12+ cluster (schema-based sharding; see this module's README) that the platform should use instead of the RDS instance, as `{ host, port, database_name }`. null (the default) means RDS. Setting it moves the `address`, `port` and `database_name` outputs, so `DATABASE_URL` follows on the next apply; the RDS instance stays (and keeps its backups and alarms) until it is removed on purpose. The coordinator must be reachable on its port and accept the platform user with the generated password; give the secrets module's `database_tls` the coordinator's CA (or `sslmode=require`)."
  type = object({
    host          = string
    port          = optional(number, 5432)
    database_name = optional(string, "campus")
  })
  default = null

  validation {
    condition     = var.citus_coordinator == null || try(length(var.citus_coordinator.host) > 0 && !strcontains(var.citus_coordinator.host, "/") && !strcontains(var.citus_coordinator.host, ":"), false)
    error_message = "citus_coordinator.host must be a bare host name or address (no scheme, port or path)."
  }
}

variable "kms_key_arn" {
  description = "KMS key for storage, snapshots and Performance Insights."
  type        = string
}

variable "offsite_backups" {
  description = "Replicate automated backups to the replica region (off-site recovery); needs `offsite_backup_kms_key_arn`."
  type        = bool
  default     = true
}

variable "offsite_backup_kms_key_arn" {
  description = "KMS key in the replica region that encrypts the replicated backups."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
