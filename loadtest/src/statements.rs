//! Records the SQL statements the platform sends while a switch is on, through the
//! `sqlx::query` tracing events sqlx emits for every statement. The home–school benchmark
//! uses it to give pgbench exactly the statements a page ran, in order, instead of a copy
//! of them that could drift from the code.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};

const TARGET: &str = "sqlx::query";

/// The recorder; [`Statements::install`] makes it the process's tracing subscriber.
#[derive(Default)]
pub struct Statements {
    on: AtomicBool,
    seen: Mutex<Vec<String>>,
}

impl Statements {
    /// Installs the recorder as the global subscriber (it records nothing but statements,
    /// and only between [`Statements::start`] and [`Statements::stop`]).
    pub fn install() -> Result<Arc<Self>> {
        let me = Arc::new(Self::default());
        let subscriber = tracing_subscriber::registry().with(Recorder(Arc::clone(&me)));
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| anyhow::anyhow!("installing the statement recorder: {e}"))?;
        Ok(me)
    }

    pub fn start(&self) {
        self.seen.lock().expect("not poisoned").clear();
        self.on.store(true, Ordering::SeqCst);
    }

    /// Stops recording; the statements sent since [`Statements::start`], in order.
    pub fn stop(&self) -> Vec<String> {
        self.on.store(false, Ordering::SeqCst);
        std::mem::take(&mut *self.seen.lock().expect("not poisoned"))
    }
}

struct Recorder(Arc<Statements>);

#[derive(Default)]
struct Fields {
    summary: String,
    statement: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.target() == TARGET {
            // Asked again for every event: the switch decides.
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        meta.target() == TARGET && self.0.on.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        // sqlx puts the whole statement in `db.statement` unless it is as short as its
        // summary (BEGIN, COMMIT), in which case the summary is the statement.
        let sql = if f.statement.trim().is_empty() {
            f.summary
        } else {
            f.statement.trim().to_owned()
        };
        self.0.seen.lock().expect("not poisoned").push(sql);
    }
}
