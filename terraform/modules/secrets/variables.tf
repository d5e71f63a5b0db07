variable "name" {
  description = "Name prefix of the key alias and the secrets, e.g. `qingchuan-campus`."
  type        = string
}

variable "database_address" {
  description = "Host name of the Postgres endpoint, written into DATABASE_URL."
  type        = string
}

variable "database_port" {
  description = "Port of the Postgres endpoint."
  type        = number
  default     = 5432
}

variable "database_name" {
  description = "Database the platform uses."
  type        = string
  default     = "campus"
}

variable "database_username" {
  description = "Postgres user of the platform (needs CREATEROLE and CREATE on the database)."
  type        = string
  default     = "campus"
}

variable "database_tls" {
  description = "Query string of DATABASE_URL that sets TLS: by default verify the server against the RDS CA bundle the `campus` image carries. For a Postgres with another CA, mount its certificate and point `sslrootcert` at it."
  type        = string
  default     = "sslmode=verify-full&sslrootcert=/etc/campus/rds-ca.pem"
}

variable "settings" {
  description = "Further secret settings by name without the `CAMPUS_` prefix, e.g. `smtp_url`, `notify_webhook_url`, `notify_webhook_secret`. Include a key only when it has a value: an empty setting stops `campus` at start."
  type        = map(string)
  default     = {}
  sensitive   = true

  validation {
    condition     = alltrue([for k in keys(var.settings) : can(regex("^[a-z][a-z0-9_]*$", k))])
    error_message = "settings keys are setting names in lower case, such as smtp_url."
  }
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
