//! Pages of the hosts that are not schools: the platform landing page (base domain,
//! `admin.`, IPs) and, until the dashboard service exists, the county overview.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use campus_tenant::{registry, Slug, TenantStatus};

use crate::runtime::Services;

struct SchoolLink {
    name: String,
    slug: String,
    url: String,
    suspended: bool,
}

#[derive(Template)]
#[template(path = "schools.html")]
struct Schools<'a> {
    heading_zh: &'a str,
    heading_en: &'a str,
    schools: Vec<SchoolLink>,
}

async fn school_links(s: &Services) -> Result<Vec<SchoolLink>, campus_tenant::TenantError> {
    Ok(registry::list(&s.pool)
        .await?
        .into_iter()
        .filter(|t| matches!(t.status, TenantStatus::Active | TenantStatus::Suspended))
        .map(|t| SchoolLink {
            url: s.platform.urls.school(&t.slug),
            slug: Slug::to_string(&t.slug),
            name: t.name,
            suspended: t.status == TenantStatus::Suspended,
        })
        .collect())
}

async fn render(s: &Services, title: &str, zh: &str, en: &str) -> Response {
    match school_links(s).await {
        Ok(schools) => {
            let body = Schools {
                heading_zh: zh,
                heading_en: en,
                schools,
            }
            .render()
            .unwrap_or_default();
            campus_web::Shell {
                title,
                site_name: campus_web::PLATFORM_NAME,
                badge_url: None,
                theme_color: None,
                body: &body,
                who: campus_web::Who::Nobody,
                lang: campus_web::Lang::Zh,
            }
            .into_page(StatusCode::OK)
        }
        Err(e) => {
            tracing::error!(error = %e, "listing schools failed");
            campus_web::message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                campus_web::PLATFORM_NAME,
                ("服务暂时不可用", "请稍后刷新重试。"),
                ("Temporarily unavailable", "Please try again in a moment."),
            )
        }
    }
}

pub async fn platform_home(State(s): State<Services>) -> Response {
    render(
        &s,
        "首页",
        "县域智慧校园云平台",
        "County Campus Cloud — every school of the county, one platform",
    )
    .await
}

pub async fn county_home(State(s): State<Services>) -> Response {
    render(
        &s,
        "教育局总览",
        "教育局 · 全县学校总览",
        "Education bureau — all schools of the county",
    )
    .await
}
