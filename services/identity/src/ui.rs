//! One plain page layout shared by the account pages (password, email, second factor):
//! a title, messages, an optional QR code or list of codes, forms and links.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

/// One input of a form.
pub(crate) struct Field {
    pub label: String,
    pub name: &'static str,
    pub kind: &'static str,
    pub value: String,
    pub autocomplete: &'static str,
}

impl Field {
    pub fn new(
        label: &str,
        name: &'static str,
        kind: &'static str,
        autocomplete: &'static str,
    ) -> Self {
        Self {
            label: label.to_owned(),
            name,
            kind,
            value: String::new(),
            autocomplete,
        }
    }
}

/// A form posting to `action`.
pub(crate) struct FormSpec {
    pub action: String,
    pub hidden: Vec<(&'static str, String)>,
    pub fields: Vec<Field>,
    pub submit: String,
}

#[derive(Template, Default)]
#[template(path = "account_page.html")]
pub(crate) struct AccountPage {
    pub lang: campus_web::Lang,
    pub title: String,
    pub error: Option<String>,
    pub notes: Vec<String>,
    pub qr: Option<String>,
    pub secret: Option<String>,
    pub codes: Vec<String>,
    pub forms: Vec<FormSpec>,
    pub links: Vec<(String, String)>,
}

impl AccountPage {
    pub fn new(lang: campus_web::Lang, title: &str) -> Self {
        Self {
            lang,
            title: title.to_owned(),
            ..Self::default()
        }
    }

    /// The page in the platform's shell.
    pub fn into_response(
        self,
        status: StatusCode,
        site_name: &str,
        who: campus_web::Who,
    ) -> Response {
        let lang = self.lang;
        let title = self.title.clone();
        let body = self.render().unwrap_or_default();
        campus_web::Shell {
            title: &title,
            site_name,
            badge_url: None,
            theme_color: None,
            body: &body,
            who,
            lang,
        }
        .into_page(status)
    }
}

/// An SVG QR code of `text`, ready to put inside a page.
pub(crate) fn qr_svg(text: &str) -> String {
    use qrcode::render::svg;
    let Ok(code) = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
    else {
        return String::new();
    };
    let image = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = image.find("<svg").unwrap_or(0);
    image[start..].replacen(
        "<svg ",
        "<svg class=\"qr\" role=\"img\" aria-label=\"QR\" ",
        1,
    )
}
