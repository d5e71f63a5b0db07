variable "name" {
  description = "Name prefix of the edge resources, e.g. `qingchuan-campus`."
  type        = string
}

variable "domain" {
  description = "The county's domain (`base_domain`): schools answer on `<slug>.<domain>`, the dashboard on `county.<domain>`."
  type        = string
}

variable "create_zone" {
  description = "Create the Route 53 hosted zone for `domain` (then point the registrar's NS records at it); false to use an existing zone."
  type        = bool
  default     = false
}

variable "certificate_arn" {
  description = "ARN of an existing wildcard certificate for `domain` and `*.domain` (e.g. bought from a domestic CA and imported into ACM); null to request one from ACM with DNS validation."
  type        = string
  default     = null
}

variable "additional_certificate_arns" {
  description = "Further certificates (ACM ARNs) the HTTPS listener presents by SNI, for schools' own domains in the schools map (`hostnames`, e.g. `www.xinyi-school.cn`) that the wildcard certificate does not cover. Empty: only `domain` and `*.domain`."
  type        = list(string)
  default     = []
}

variable "vpc_id" {
  description = "VPC of the load balancer."
  type        = string
}

variable "vpc_cidr_block" {
  description = "IPv4 range of the VPC (the load balancer may only talk to addresses inside it)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets for the load balancer (at least two zones)."
  type        = list(string)
}

variable "target_port" {
  description = "Port the web tasks listen on (`bind`)."
  type        = number
  default     = 8080
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener (TLS 1.2 and 1.3 only)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "access_log_bucket" {
  description = "Bucket for the load balancer's access logs (written under `alb/`)."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the load balancer."
  type        = bool
  default     = true
}

variable "waf_enabled" {
  description = "Put a web application firewall (AWS managed rules and a per-address rate limit) in front of the load balancer."
  type        = bool
  default     = true
}

variable "waf_requests_per_5min_per_ip" {
  description = "Requests one address may send in five minutes before the firewall blocks it. A school's NAT can put hundreds of pupils behind one address, so keep it generous."
  type        = number
  default     = 20000
}

variable "log_retention_days" {
  description = "Days firewall logs are kept."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key for the firewall's log group."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
