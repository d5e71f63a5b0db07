variable "name" {
  description = "Name of the cluster and prefix of its resources, e.g. `qingchuan-campus`."
  type        = string
}

variable "image_tag" {
  description = "Version of the `campus` image in this module's repository (the Dockerfile's `runtime` target), e.g. `1.4.0`; the preview worker runs `<image_tag>-preview` (the `preview` target)."
  type        = string

  validation {
    condition     = var.image_tag != "latest" && can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$", var.image_tag))
    error_message = "image_tag must be a version tag such as 1.4.0 (not latest): tags are immutable in the repository."
  }
}

variable "cpu_architecture" {
  description = "`ARM64` (Graviton, about 20% cheaper; build the image with `--platform linux/arm64`) or `X86_64`."
  type        = string
  default     = "ARM64"

  validation {
    condition     = contains(["ARM64", "X86_64"], var.cpu_architecture)
    error_message = "cpu_architecture must be ARM64 or X86_64."
  }
}

variable "base_domain" {
  description = "The county's domain (`base_domain`)."
  type        = string
}

variable "bucket_name" {
  description = "The platform's bucket (`s3_bucket`)."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of that bucket (the task role may read and write it)."
  type        = string
}

variable "smtp_from" {
  description = "From address of notification mail (`smtp_from`), e.g. `县域智慧校园云平台 <noreply@edu.example.cn>`; relays and SES refuse mail from the compiled-in `noreply@localhost`."
  type        = string
}

variable "delete_grace_days" {
  description = "Days a deleted school can be resumed before it is purged (`delete_grace_days`)."
  type        = number
  default     = 30
}

variable "database_max_connections" {
  description = "Connections per task (`database_max_connections`). Tasks × this must stay well below the database's max_connections."
  type        = number
  default     = 20
}

variable "rust_log" {
  description = "Log filter (`RUST_LOG`); the default is the platform's own (plain `info` would let the S3 client and HTTP libraries log every connection)."
  type        = string
  default     = "info,sqlx=warn,aws=warn,hyper=warn"
}

variable "extra_environment" {
  description = "Further non-secret settings as environment variables, e.g. `{ CAMPUS_SESSION_HOURS = \"8\" }` (see the README's configuration table)."
  type        = map(string)
  default     = {}
}

variable "secret_arns" {
  description = "Environment variable → Secrets Manager ARN (from the secrets module): `DATABASE_URL`, `CAMPUS_ADMIN_TOKEN`, …"
  type        = map(string)
}

variable "kms_key_arn" {
  description = "KMS key of the secrets, the bucket and ECS Exec sessions."
  type        = string
}

variable "log_group_names" {
  description = "Log group per role (`web`, `worker`, `preview`, `cli`) and for ECS Exec sessions (`exec`), from the observability module."
  type        = map(string)
}

variable "vpc_id" {
  description = "VPC of the tasks."
  type        = string
}

variable "vpc_cidr_block" {
  description = "IPv4 range of the VPC (Postgres is reachable inside it)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets the tasks run in."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the load balancer (the only source of HTTP traffic)."
  type        = string
}

variable "metrics_scraper_security_group_ids" {
  description = "Security groups (e.g. the Prometheus server's) allowed to reach the web tasks on 8080 to scrape `http://<task address>:8080/metrics`. Empty: only the load balancer reaches the tasks."
  type        = list(string)
  default     = []
}

variable "target_group_arn" {
  description = "Target group the web tasks register in."
  type        = string
}

variable "alb_arn_suffix" {
  description = "Load balancer's ARN suffix (for request-count scaling)."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "Target group's ARN suffix (for request-count scaling)."
  type        = string
}

variable "web_cpu" {
  description = "CPU units of a web task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "web_memory" {
  description = "Memory of a web task in MiB."
  type        = number
  default     = 2048
}

variable "web_min" {
  description = "Fewest web tasks (two, in two zones, so one can fail or be replaced)."
  type        = number
  default     = 2
}

variable "web_max" {
  description = "Most web tasks autoscaling may run."
  type        = number
  default     = 6
}

variable "web_requests_per_task_per_minute" {
  description = "Requests per web task per minute that autoscaling aims for."
  type        = number
  default     = 6000
}

variable "worker_cpu" {
  description = "CPU units of a worker task (maintenance and notification delivery)."
  type        = number
  default     = 512
}

variable "worker_memory" {
  description = "Memory of a worker task in MiB."
  type        = number
  default     = 1024
}

variable "worker_min" {
  description = "Fewest worker tasks."
  type        = number
  default     = 1
}

variable "worker_max" {
  description = "Most worker tasks (deliveries are claimed with leases, so several workers never send twice)."
  type        = number
  default     = 3
}

variable "preview_enabled" {
  description = "Run the preview worker (`campus serve --roles preview`) for document and image previews."
  type        = bool
  default     = true
}

variable "preview_cpu" {
  description = "CPU units of a preview task; the task runs one conversion per whole vCPU (`preview_workers`), at least one."
  type        = number
  default     = 1024
}

variable "preview_memory" {
  description = "Memory of a preview task in MiB (LibreOffice needs room)."
  type        = number
  default     = 3072
}

variable "preview_min" {
  description = "Fewest preview tasks."
  type        = number
  default     = 1
}

variable "preview_max" {
  description = "Most preview tasks."
  type        = number
  default     = 4
}

variable "cpu_target_percent" {
  description = "Average CPU every service's autoscaling aims for."
  type        = number
  default     = 60
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
