//! The files API's part of the OpenAPI document (merged into `/api/openapi.json`).

use utoipa::OpenApi;

use crate::{admin, download, model, quota, resumable, upload};

#[derive(OpenApi)]
#[openapi(
    paths(
        upload::upload_api,
        download::metadata,
        download::delete,
        resumable::create,
        resumable::append,
        admin::usage_json,
    ),
    components(schemas(model::FileRow, quota::Usage, quota::SchoolUsage, resumable::NewUpload)),
    tags((name = "files", description = "Uploads, downloads and previews on a school's host (session cookie, `X-CSRF-Token` on changes)"))
)]
pub struct FilesApi;
