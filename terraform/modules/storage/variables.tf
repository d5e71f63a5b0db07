variable "name" {
  description = "Name prefix of the log bucket, keys and roles, e.g. `qingchuan-campus`."
  type        = string
}

variable "bucket_name" {
  description = "Name of the platform's bucket (`s3_bucket`); globally unique. The replica is named `<bucket_name>-replica`."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key (primary region) that encrypts the bucket."
  type        = string
}

variable "intelligent_tiering_after_days" {
  description = "Days after which school files move to Intelligent-Tiering."
  type        = number
  default     = 30
}

variable "noncurrent_version_days" {
  description = "Days a deleted or overwritten file stays recoverable in the primary bucket."
  type        = number
  default     = 90
}

variable "replica_storage_class" {
  description = "Storage class of the off-site copies (GLACIER_IR: cheap, restores in milliseconds; STANDARD_IA in regions without it)."
  type        = string
  default     = "GLACIER_IR"

  validation {
    condition     = contains(["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], var.replica_storage_class)
    error_message = "replica_storage_class must be an S3 storage class such as GLACIER_IR or STANDARD_IA."
  }
}

variable "replica_noncurrent_days" {
  description = "Days old versions are kept in the replica (default ten years, the records-retention guideline)."
  type        = number
  default     = 3650
}

variable "access_log_days" {
  description = "Days S3 and load-balancer access logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
