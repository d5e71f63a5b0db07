//! Apache ECharts (Apache-2.0, `assets/ECHARTS-LICENSE`), served from the binary under a
//! versioned path so browsers may cache it for a year; no CDN is involved. Beside it the
//! dashboard's own chart script (pages carry no inline script).

use axum::http::header;
use axum::routing::get;
use axum::Router;

/// The path pages load the chart library from (the version is in the name).
pub const ECHARTS_PATH: &str = "/static/echarts-6.1.0.common.min.js";

const ECHARTS: &[u8] = include_bytes!("../assets/echarts.common.min.js");

/// The path of the script that draws a dashboard page's trend chart from its JSON island.
pub const CHART_PATH: &str = "/static/dashboard-chart.js";

const CHART_JS: &str = include_str!("../assets/dashboard-chart.js");

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            CHART_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    CHART_JS,
                )
            }),
        )
        .route(
            ECHARTS_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                    ],
                    ECHARTS,
                )
            }),
        )
}
