variable "name" {
  description = "Name prefix of every network resource, e.g. `qingchuan-campus`."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 range of the VPC; /16 leaves room for twelve /20 subnets."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block))
    error_message = "cidr_block must be an IPv4 CIDR such as 10.40.0.0/16."
  }
}

variable "az_count" {
  description = "Availability zones to spread subnets over (2 is enough for Multi-AZ Postgres and the load balancer)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4: the load balancer and Multi-AZ Postgres need two zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper; outbound traffic depends on one zone) instead of one per zone."
  type        = bool
  default     = true
}

variable "flow_log_retention_days" {
  description = "Days VPC flow logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow log group."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
