//! Log output: human-readable lines or one JSON object per line (`log_format`), filtered
//! by `RUST_LOG` (default: info for the platform, warnings for chatty libraries).
//!
//! Every line written while a request is handled carries the request's span: its
//! `request_id`, `host`, the `school` (once the host is resolved), the `route` template
//! and the signed-in `person` (account id, once known). In JSON these are the `span`
//! object of each line.
//!
//! Paths are logged without their query string and with secret segments replaced
//! ([`loggable_path`]): join, invitation, visitor-pass and password-reset links carry their
//! token in the path, and a log line must not be a way in.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::Config;

const DEFAULT_FILTER: &str = "info,sqlx=warn,aws=warn,hyper=warn";

/// The subscriber `campus` logs through, writing to `writer` (stderr in the binary; tests
/// give it a buffer).
pub fn subscriber<W>(
    json: bool,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if json {
        Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        )
    } else {
        Box::new(builder.finish())
    }
}

pub fn init(cfg: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    use tracing_subscriber::util::SubscriberInitExt;
    // `try_init` (which also forwards the `log` crate's records): tests may call this more
    // than once in one process.
    let _ = subscriber(cfg.log_format == "json", filter, std::io::stderr).try_init();
}

/// Path prefixes whose next segment is a secret token.
pub(crate) const TOKEN_PREFIXES: [&str; 6] = [
    "/join/status/",
    "/join/",
    "/invite/",
    "/visit/",
    "/password/reset/email/",
    "/password/reset/",
];

/// `path` as it may be written to a log: the segment after a token-bearing prefix becomes
/// `{token}`, and any other long random-looking segment (24 or more letters, digits, `-`
/// and `_`, with both letters and digits) becomes `…`. Never the query string: callers
/// pass only the path.
pub fn loggable_path(path: &str) -> String {
    for prefix in TOKEN_PREFIXES {
        if let Some(rest) = path.strip_prefix(prefix) {
            if rest.is_empty() {
                break;
            }
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            return format!("{prefix}{{token}}{}", loggable_path_segments(tail));
        }
    }
    loggable_path_segments(path)
}

fn loggable_path_segments(path: &str) -> String {
    path.split('/')
        .map(|seg| if looks_secret(seg) { "…" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

fn looks_secret(seg: &str) -> bool {
    seg.len() >= 24
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'%')
        && seg.bytes().any(|b| b.is_ascii_digit())
        && seg.bytes().any(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn tokens_in_paths_are_not_logged() {
        let t = "Zx8k2LqP0vW3nR7sT1yU4aB6cD9eF5gH";
        for (path, logged) in [
            (format!("/join/{t}"), "/join/{token}".to_owned()),
            (
                format!("/join/status/{t}"),
                "/join/status/{token}".to_owned(),
            ),
            (format!("/invite/{t}"), "/invite/{token}".to_owned()),
            (format!("/visit/{t}"), "/visit/{token}".to_owned()),
            (
                format!("/password/reset/email/{t}"),
                "/password/reset/email/{token}".to_owned(),
            ),
            (format!("/join/{t}/extra"), "/join/{token}/extra".to_owned()),
            (format!("/something/{t}/x"), "/something/…/x".to_owned()),
            ("/join/".to_owned(), "/join/".to_owned()),
            ("/messages/17".to_owned(), "/messages/17".to_owned()),
            ("/visit".to_owned(), "/visit".to_owned()),
            (
                "/visits/3/approve".to_owned(),
                "/visits/3/approve".to_owned(),
            ),
            (
                "/static/echarts-6.1.0.common.min.js".to_owned(),
                "/static/echarts-6.1.0.common.min.js".to_owned(),
            ),
            (
                "/admin/join/links/parent/rotate".to_owned(),
                "/admin/join/links/parent/rotate".to_owned(),
            ),
        ] {
            assert_eq!(loggable_path(&path), logged, "{path}");
        }
    }
}
