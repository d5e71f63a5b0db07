# Schools as code: each entry of `var.schools` is one school on the platform, created and
# kept in line through the admin API (`PUT /admin/v1/tenants/{slug}`, idempotent: 201 when
# it created the school, 200 after). Removing an entry sends `DELETE`, the platform's soft
# delete: the school disappears at once and is purged after `delete_grace_days` unless an
# operator resumes it (`campus tenant resume SLUG`).
#
# The provider block (base URL and admin token) belongs to the caller, see
# terraform/envs/example/schools.tf.

locals {
  # The platform stores host names in lower case and returns them sorted; sending them the
  # same way keeps `terraform plan` quiet when nothing changed.
  bodies = {
    for slug, s in var.schools : slug => {
      name      = s.name
      plan      = s.plan
      hostnames = sort(distinct([for h in s.hostnames : lower(h)]))
    }
  }
}

resource "restapi_object" "school" {
  for_each = local.bodies

  path          = "/admin/v1/tenants"
  object_id     = each.key
  create_method = "PUT"
  create_path   = "/admin/v1/tenants/{id}"
  read_path     = "/admin/v1/tenants/{id}"
  update_method = "PUT"
  update_path   = "/admin/v1/tenants/{id}"
  # DELETE answers 202 with the date the school will be purged; a second DELETE of a
  # deleted school is also 202, so retries are harmless.
  destroy_method = "DELETE"
  destroy_path   = "/admin/v1/tenants/{id}"

  # Exactly the fields of the PUT body (`name`, `plan`, `hostnames`; unknown fields are
  # refused with 422). The server adds `id`, `status`, `schema_version`, timestamps…,
  # which are not drift.
  data                    = jsonencode(each.value)
  ignore_server_additions = true
}
