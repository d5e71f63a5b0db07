//! School administration of people (seed 000 系统设置): the school's members with their
//! roles, status and validity period; inviting a member (nobody sets another person's
//! password: the person accepts the invitation with their own); and the school's custom roles, each
//! a set of module permissions. Served on school hosts only, to holders of `ManageUsers`.

mod form;
mod pages;
pub mod store;

use axum::routing::{get, post};
use axum::Router;

use crate::IdentityState;

/// Routes of user and role management on a school's host.
pub fn router() -> Router<IdentityState> {
    Router::new()
        .route("/admin/users", get(pages::users).post(pages::add_user))
        .route(
            "/admin/users/{account_id}",
            get(pages::edit_user).post(pages::save_user),
        )
        .route("/admin/roles", get(pages::roles).post(pages::create_role))
        .route("/admin/roles/{code}", post(pages::update_role))
        .route("/admin/roles/{code}/delete", post(pages::delete_role))
        .route(
            "/admin/invitations/{id}/cancel",
            post(pages::cancel_invitation),
        )
        .route(
            "/api/v1/users",
            get(pages::users_json).post(pages::invite_json),
        )
        .route("/api/v1/invitations", get(pages::invitations_json))
        .route("/api/v1/roles", get(pages::roles_json))
}
