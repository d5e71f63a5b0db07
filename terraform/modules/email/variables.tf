variable "name" {
  description = "Name prefix of the SMTP user and group, e.g. `qingchuan-campus`."
  type        = string
}

variable "domain" {
  description = "Domain mail is sent from (usually the county's `base_domain`)."
  type        = string
}

variable "zone_id" {
  description = "Route 53 zone of `domain`, for the DKIM, MAIL FROM and DMARC records."
  type        = string
}

variable "from_local_part" {
  description = "Local part of the From address; with the domain it makes `smtp_from`."
  type        = string
  default     = "noreply"
}

variable "from_display_name" {
  description = "Display name of the From address."
  type        = string
  default     = "县域智慧校园云平台"
}

variable "dmarc_report_address" {
  description = "Mailbox that receives DMARC aggregate reports."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
