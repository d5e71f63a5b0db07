variable "schools" {
  description = "The county's schools by slug (3–30 of a–z, 0–9 and single hyphens, starting with a letter): `name` (full name, 1–100 characters), `plan` (`small`, `standard` or `large`, see `campus tenant plans`) and extra `hostnames` besides `<slug>.<base_domain>`."
  type = map(object({
    name      = string
    plan      = optional(string, "standard")
    hostnames = optional(list(string), [])
  }))

  validation {
    condition = alltrue([
      for slug in keys(var.schools) :
      length(slug) >= 3 && length(slug) <= 30 && can(regex("^[a-z][a-z0-9-]*[a-z0-9]$", slug)) && !strcontains(slug, "--")
    ])
    error_message = "Every slug must be 3–30 characters of a–z, 0–9 and single hyphens, start with a letter and not end with a hyphen."
  }

  validation {
    # Words the platform keeps for itself (tenant/src/slug.rs).
    condition = length(setintersection(keys(var.schools), [
      "admin", "api", "assets", "auth", "cdn", "county", "dashboard", "ftp", "help", "imap",
      "login", "mail", "metrics", "ns1", "ns2", "pop", "public", "root", "smtp", "sso",
      "static", "status", "support", "www",
    ])) == 0
    error_message = "Slugs such as admin, api, county, login, www are reserved for the platform; choose another."
  }

  validation {
    condition     = alltrue([for s in values(var.schools) : length(trimspace(s.name)) >= 1 && length(s.name) <= 100])
    error_message = "Every school needs a name of 1–100 characters."
  }

  validation {
    condition     = alltrue([for s in values(var.schools) : contains(["small", "standard", "large"], s.plan)])
    error_message = "plan must be small, standard or large (the plans `campus tenant plans` lists)."
  }

  validation {
    condition     = alltrue([for s in values(var.schools) : length(s.hostnames) <= 20 && alltrue([for h in s.hostnames : !strcontains(h, ":") && !strcontains(h, "/")])])
    error_message = "At most 20 extra hostnames per school, each a bare host name without scheme, port or path."
  }

  validation {
    condition     = length(flatten([for s in values(var.schools) : [for h in s.hostnames : lower(h)]])) == length(distinct(flatten([for s in values(var.schools) : [for h in s.hostnames : lower(h)]])))
    error_message = "A hostname can belong to one school only."
  }
}
