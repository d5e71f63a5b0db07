# Defaults fit a county of 30–100 schools (15,000–150,000 pupils); the README's cost table
# is computed from them.

variable "name" {
  description = "Name of this environment, prefix of every resource, e.g. `qingchuan-campus` (lower case, digits, hyphens)."
  type        = string
  default     = "county-campus"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,28}[a-z0-9]$", var.name))
    error_message = "name must be 4–30 characters of a–z, 0–9 and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region the platform runs in. Pupils' data of a mainland county belongs in a mainland region (cn-northwest-1 Ningxia, cn-north-1 Beijing)."
  type        = string
  default     = "cn-northwest-1"
}

variable "replica_region" {
  description = "A second region for the off-site copies of files and database backups (seed 003: 异地容灾)."
  type        = string
  default     = "cn-north-1"
}

variable "domain" {
  description = "The county's domain (`base_domain`), e.g. `edu.example.cn`: schools on `<slug>.<domain>`, the bureau's dashboard on `county.<domain>`, the admin API on `admin.<domain>`."
  type        = string
}

variable "create_dns_zone" {
  description = "Create the Route 53 zone for `domain` (then delegate it at the registrar); false to use an existing zone."
  type        = bool
  default     = false
}

variable "certificate_arn" {
  description = "An existing certificate for `domain` and `*.domain` in ACM (imported from a domestic CA, as the China regions require); null to have ACM issue one."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Version of the `campus` image to run (pushed to the repository this configuration creates; see infra/RUNBOOK.md, \"Deploy\")."
  type        = string
}

variable "bucket_name" {
  description = "Name of the files bucket; null for `<name>-files-<account id>`."
  type        = string
  default     = null
}

variable "vpc_cidr_block" {
  description = "IPv4 range of the VPC; pick one that does not clash with the county network if it is ever connected by VPN."
  type        = string
  default     = "10.40.0.0/16"
}

variable "db_instance_class" {
  description = "Postgres size: db.t4g.large for up to ~60 schools, db.m7g.large up to ~150, then db.m7g.xlarge or Citus (terraform/README.md)."
  type        = string
  default     = "db.t4g.large"
}

variable "db_apply_immediately" {
  description = "Apply a change of `db_instance_class` (a failover of under a minute with Multi-AZ) in this apply rather than in the Saturday-night maintenance window."
  type        = bool
  default     = false
}

variable "db_multi_az" {
  description = "Keep a standby in a second zone with automatic failover. Turning it off halves the database bill; recovery is then a point-in-time restore (about 30 minutes)."
  type        = bool
  default     = true
}

variable "db_storage_gb" {
  description = "Initial database storage in GiB (grows automatically up to 500)."
  type        = number
  default     = 50
}

variable "citus_coordinator" {
  description = "Only when one Postgres server is outgrown: the Citus coordinator (`{ host, port, database_name }`) the platform moves to; null keeps it on RDS. See modules/database/README.md and infra/RUNBOOK.md, \"Scale out\"."
  type = object({
    host          = string
    port          = optional(number, 5432)
    database_name = optional(string, "campus")
  })
  default = null
}

variable "offsite_database_backups" {
  description = "Copy the database's automated backups to the replica region as well (needs RDS cross-region backup replication in that region pair)."
  type        = bool
  default     = true
}

variable "web_min_tasks" {
  description = "Fewest web tasks (two zones)."
  type        = number
  default     = 2
}

variable "web_max_tasks" {
  description = "Most web tasks at the morning peak."
  type        = number
  default     = 6
}

variable "worker_max_tasks" {
  description = "Most worker tasks (maintenance and notification delivery; one runs normally, more while a county-wide notice goes out)."
  type        = number
  default     = 3
}

variable "preview_max_tasks" {
  description = "Most preview tasks (document conversions after a burst of attachments)."
  type        = number
  default     = 4
}

variable "school_certificate_arns" {
  description = "ACM certificates for schools' own domains (`hostnames` in schools.auto.tfvars) that `*.domain` does not cover; the load balancer presents them by SNI."
  type        = list(string)
  default     = []
}

variable "prometheus_security_group_ids" {
  description = "Security groups of a Prometheus inside the VPC allowed to scrape `/metrics` on the web tasks (port 8080); empty when only the CloudWatch alarms are used."
  type        = list(string)
  default     = []
}

variable "preview_enabled" {
  description = "Run the document preview worker (LibreOffice; about a third of the compute bill)."
  type        = bool
  default     = true
}

variable "enable_ses" {
  description = "Send mail through Amazon SES (domain identity, DKIM, SMTP credentials). SES is not offered in the China regions: there leave it off and set `smtp_relay_url`."
  type        = bool
  default     = false
}

variable "smtp_relay_url" {
  description = "The county's own mail relay as `smtp_url` (e.g. `smtp://user:pass@mail.example.cn:587?tls=required`) when SES is off; null for no email channel."
  type        = string
  default     = null
  sensitive   = true
}

variable "smtp_from" {
  description = "From address of notification mail when SES is off, e.g. `县域智慧校园云平台 <noreply@edu.example.cn>`; null for `县域智慧校园云平台 <noreply@<domain>>` (the relay must accept that sender)."
  type        = string
  default     = null
}

variable "dmarc_report_address" {
  description = "Mailbox for DMARC reports (with SES)."
  type        = string
  default     = "postmaster@example.cn"
}

variable "notify_webhook_url" {
  description = "The county's SMS/WeChat provider endpoint (`notify_webhook_url`); null if schools configure their own."
  type        = string
  default     = null
  sensitive   = true
}

variable "notify_webhook_secret" {
  description = "HMAC key for that endpoint (at least 16 characters; required with the URL)."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.notify_webhook_secret == null || length(coalesce(var.notify_webhook_secret, "")) >= 16
    error_message = "notify_webhook_secret must be at least 16 characters."
  }
}

variable "alarm_emails" {
  description = "Who receives alarms (the county IT centre's on-call mailbox)."
  type        = list(string)
  default     = []
}

variable "schools" {
  description = "The county's schools by slug: `{ name, plan, hostnames }` (see schools.auto.tfvars and modules/schools)."
  type = map(object({
    name      = string
    plan      = optional(string, "standard")
    hostnames = optional(list(string), [])
  }))
  default = {}
}

variable "tags" {
  description = "Extra tags on every resource (cost centre, owner)."
  type        = map(string)
  default     = {}
}
