//! Submitted forms with repeated fields (role and permission checkboxes), and the CSRF
//! check every state-changing request of the admin pages goes through.

use axum::body::Bytes;

use crate::CurrentUser;

/// A parsed `application/x-www-form-urlencoded` body.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &Bytes) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// Every value of `name` (checkboxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// Whether the form carries the session's CSRF token.
    pub fn csrf_ok(&self, user: &CurrentUser) -> bool {
        let sent = self.get("csrf");
        !sent.is_empty() && sent == user.csrf_token
    }
}

/// An optional `yyyy-mm-dd` date field; `Err` names the field when it does not parse.
pub fn date(value: &str) -> Result<Option<chrono::NaiveDate>, ()> {
    if value.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| ())
}
