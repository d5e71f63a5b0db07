//! Prometheus instruments of the fan-out, per school and channel.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

#[derive(Clone, Debug)]
pub struct Metrics {
    /// Deliveries created by expanding jobs.
    pub queued: IntCounterVec,
    pub sent: IntCounterVec,
    /// Failed attempts, `outcome` = retry or dead.
    pub failed: IntCounterVec,
    /// Seconds from the send to the delivery.
    pub latency: HistogramVec,
}

impl Metrics {
    /// Creates the instruments and registers them with `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let queued = IntCounterVec::new(
            Opts::new(
                "campus_notify_queued_total",
                "Deliveries queued, by school and channel",
            ),
            &["school", "channel"],
        )?;
        let sent = IntCounterVec::new(
            Opts::new(
                "campus_notify_sent_total",
                "Deliveries sent, by school and channel",
            ),
            &["school", "channel"],
        )?;
        let failed = IntCounterVec::new(
            Opts::new(
                "campus_notify_failed_total",
                "Failed delivery attempts, by school, channel and outcome (retry or dead)",
            ),
            &["school", "channel", "outcome"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "campus_notify_delivery_seconds",
                "Seconds from the send to the delivery, by school and channel",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 3600.0,
            ]),
            &["school", "channel"],
        )?;
        registry.register(Box::new(queued.clone()))?;
        registry.register(Box::new(sent.clone()))?;
        registry.register(Box::new(failed.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self {
            queued,
            sent,
            failed,
            latency,
        })
    }
}
