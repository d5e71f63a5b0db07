//! Log output: human-readable lines or one JSON object per line (`log_format`), filtered
//! by `RUST_LOG` (default: info for the platform, warnings for chatty libraries).

use tracing_subscriber::EnvFilter;

use crate::config::Config;

pub fn init(cfg: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,aws=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init`: tests may call this more than once in one process.
    let _ = if cfg.log_format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
