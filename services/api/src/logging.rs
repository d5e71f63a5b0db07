//! Log output: human-readable lines or one JSON object per line (`log_format`), filtered
//! by `RUST_LOG` (default: info for the platform, warnings for chatty libraries).
//!
//! Every line written while a request is handled carries the request's span: its
//! `request_id`, `host`, the `school` (once the host is resolved), the `route` template
//! and the signed-in `person` (account id, once known). In JSON these are the `span`
//! object of each line.

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
