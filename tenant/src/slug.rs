//! Names that become SQL identifiers, S3 prefixes and DNS labels: parsed once at the edge,
//! so nothing downstream ever formats an unchecked string into SQL or a key.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Words that name platform hosts or are too easily confused with them.
const RESERVED: &[&str] = &[
    "admin",
    "api",
    "assets",
    "auth",
    "cdn",
    "county",
    "dashboard",
    "ftp",
    "help",
    "imap",
    "login",
    "mail",
    "metrics",
    "ns1",
    "ns2",
    "pop",
    "public",
    "root",
    "smtp",
    "sso",
    "static",
    "status",
    "support",
    "www",
];

/// The short name of a school, e.g. `xinyi-primary`: a DNS label that is also safe inside
/// a Postgres identifier once `-` becomes `_`.
///
/// Rules: 3–30 characters, lowercase ASCII letters, digits and single hyphens, starting with
/// a letter, not ending with a hyphen, not a reserved platform word.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("slug must be 3 to 30 characters long (got {0})")]
    Length(usize),
    #[error("slug must start with a lowercase letter a–z")]
    Start,
    #[error("slug may contain only lowercase letters a–z, digits and single hyphens; found {0:?}")]
    Character(char),
    #[error("slug must not end with a hyphen or contain two hyphens in a row")]
    Hyphen,
    #[error("{0:?} is reserved for the platform; choose another slug")]
    Reserved(String),
}

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        let len = raw.chars().count();
        if !(3..=30).contains(&len) {
            return Err(SlugError::Length(len));
        }
        if !raw.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(SlugError::Start);
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(SlugError::Character(bad));
        }
        if raw.ends_with('-') || raw.contains("--") {
            return Err(SlugError::Hyphen);
        }
        if RESERVED.contains(&raw) {
            return Err(SlugError::Reserved(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The school's Postgres schema: `school_<slug with _ for ->`.
    pub fn schema(&self) -> Ident {
        Ident(format!("school_{}", self.0.replace('-', "_")))
    }

    /// The school's Postgres role: the configured prefix followed by the schema name.
    pub fn role(&self, prefix: &RolePrefix) -> Ident {
        Ident(format!("{}{}", prefix.0, self.schema().0))
    }

    /// The school's key prefix in the bucket, with a trailing slash.
    pub fn s3_prefix(&self) -> String {
        format!("schools/{}/", self.0)
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Slug::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A Postgres identifier built only from a validated [`Slug`] or [`RolePrefix`]: lowercase
/// ASCII letters, digits and underscores, at most 63 bytes. Always emitted double-quoted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident(String);

impl Ident {
    /// Accepts an identifier read back from the registry, re-checking its shape so that a
    /// tampered row can never smuggle SQL into a statement.
    pub fn from_registry(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 63
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier double-quoted for SQL text.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Prefix of every per-school Postgres role. Roles are global to a Postgres cluster, so two
/// platforms (or two test databases) sharing one cluster need different prefixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolePrefix(String);

impl RolePrefix {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (1..=24).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "role prefix {raw:?} must be 1–24 characters of a–z, 0–9 and _, starting with a letter"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RolePrefix {
    fn default() -> Self {
        Self("campus_".to_owned())
    }
}

/// A host name as a browser sends it, normalised: lowercase, no port, no trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    #[error("host name is empty")]
    Empty,
    #[error("host name is longer than 253 characters")]
    TooLong,
    #[error(
        "host name label {0:?} is not valid: use letters, digits and hyphens, at most 63 per label"
    )]
    Label(String),
    #[error("port {0:?} is not a number")]
    Port(String),
}

impl Hostname {
    /// Parses the value of a `Host` header or URI authority (`name[:port]`).
    pub fn parse(raw: &str) -> Result<Self, HostnameError> {
        if raw.len() > 260 {
            return Err(HostnameError::TooLong);
        }
        let name = match raw.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => {
                if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
                    return Err(HostnameError::Port(port.to_owned()));
                }
                name
            }
            _ => raw,
        };
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if name.is_empty() {
            return Err(HostnameError::Empty);
        }
        if name.len() > 253 {
            return Err(HostnameError::TooLong);
        }
        for label in name.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(HostnameError::Label(label.to_owned()));
            }
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for dotted-quad IPv4 literals: load balancers and health checkers use them.
    pub fn is_ip(&self) -> bool {
        self.0.parse::<std::net::Ipv4Addr>().is_ok()
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_slugs_parse_and_map_to_identifiers() {
        let slug = Slug::parse("xinyi-primary2").unwrap();
        assert_eq!(slug.schema().as_str(), "school_xinyi_primary2");
        assert_eq!(
            slug.role(&RolePrefix::default()).as_str(),
            "campus_school_xinyi_primary2"
        );
        assert_eq!(slug.s3_prefix(), "schools/xinyi-primary2/");
    }

    #[test]
    fn slugs_that_are_not_identifiers_are_rejected() {
        for bad in [
            "",
            "ab",
            "Xinyi",
            "1school",
            "a_b_c",
            "drop table",
            "x\";--",
            "abc-",
            "a--b",
            "école",
            "admin",
            "county",
            "a.b.c",
            "abcdefghijabcdefghijabcdefghijk",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn registry_identifiers_are_rechecked() {
        assert!(Ident::from_registry("school_abc").is_some());
        assert!(Ident::from_registry("school\"; drop").is_none());
        assert!(Ident::from_registry("School").is_none());
        assert!(Ident::from_registry(&"a".repeat(64)).is_none());
    }

    #[test]
    fn hostnames_are_normalised() {
        assert_eq!(
            Hostname::parse("XinYi.Localhost:8080").unwrap().as_str(),
            "xinyi.localhost"
        );
        assert_eq!(
            Hostname::parse("county.example.").unwrap().as_str(),
            "county.example"
        );
        assert!(Hostname::parse("127.0.0.1:80").unwrap().is_ip());
    }

    #[test]
    fn malformed_hostnames_are_rejected() {
        let long = format!("{}.example", "a".repeat(250));
        for bad in [
            "",
            ":80",
            "a..b",
            "-a.b",
            "a b",
            "a/b",
            "a.b:port",
            "a.b:123456",
            long.as_str(),
            "[::1]:80",
        ] {
            assert!(Hostname::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn role_prefixes_are_checked() {
        assert!(RolePrefix::parse("t1a2_").is_ok());
        assert!(RolePrefix::parse("bad-prefix").is_err());
        assert!(RolePrefix::parse("").is_err());
    }
}
