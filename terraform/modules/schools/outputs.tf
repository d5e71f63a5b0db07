output "slugs" {
  description = "Slugs of the schools Terraform manages."
  value       = sort(keys(restapi_object.school))
}

output "first_admin_invitations" {
  description = "Slug → the first school-admin invitation link, present for schools this configuration created (the link is shown once by the API; `campus tenant invite SLUG` issues a new one)."
  value = {
    for slug, o in restapi_object.school :
    slug => try(jsondecode(o.create_response).invitation.url, null)
  }
  sensitive = true
}
