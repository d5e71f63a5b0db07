# Schools as code. The list itself is in schools.auto.tfvars: adding a school is one line
# there, and `terraform plan` shows it as one `restapi_object` to create.
#
# The provider talks to the platform's admin API on `admin.<domain>` with the admin token
# the secrets module generated (`campus serve` makes sure that token exists at start), so
# the platform must be running before schools can be applied: on the very first
# deployment apply everything else first (infra/RUNBOOK.md, "First deployment").

provider "restapi" {
  uri                  = "https://admin.${var.domain}"
  bearer_token         = module.secrets.admin_token
  write_returns_object = false
  # PUT answers `{tenant, created, invitation}`; keeping that first answer gives the
  # first-admin invitation link (output `first_admin_invitations`).
  create_returns_object = true
  timeout               = 60
  headers = {
    "Content-Type" = "application/json"
  }
}

module "schools" {
  source  = "../../modules/schools"
  schools = var.schools
}
