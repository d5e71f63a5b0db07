//! Migrating many schools: 1,000 school schemas exist (set up untimed), then
//! `migrate_all_with` is timed three times — applying one new migration everywhere, again
//! with nothing left to do, and once more with `verify: true`, which visits every schema
//! and re-checks its checksums (informational; there is no target for it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use campus_tenant::migrate::{
    migrate_all_with, MigrateOptions, MigrationSet, OutcomeKind, TenantOutcome, TENANT,
};
use futures::StreamExt;

use crate::stats::{secs, thousands, verdict};
use crate::world::{with_world, World};

/// Targets from the issue.
const TARGET_NEW: Duration = Duration::from_secs(60);
const TARGET_NOTHING: Duration = Duration::from_secs(5);

/// The "new release" migration: a table and an index, typical of a small schema change.
const NEW_NAME: &str = "9001_bench_new_table.sql";
const NEW_SQL: &str =
    "create table bench_marker (id bigint primary key, note text); create index on bench_marker (note);";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many school schemas to create before timing.
    #[arg(long, default_value_t = 1000)]
    pub schools: usize,
    /// Schools onboarded at once during the (untimed) setup.
    #[arg(long, default_value_t = 4)]
    pub setup_concurrency: usize,
    /// Schools migrated at once (`MigrateOptions::concurrency`).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

pub async fn run(server_url: &str, args: Args) -> Result<String> {
    anyhow::ensure!(args.schools > 0 && args.concurrency > 0 && args.setup_concurrency > 0);
    // Each school being migrated holds one connection; two spare ones keep the registry
    // queries `migrate_all_with` makes between schools from waiting for a free slot.
    let pool_size = u32::try_from(args.concurrency.max(args.setup_concurrency) + 2)?;
    with_world(server_url, 'm', pool_size, |world| bench(world, args)).await
}

/// Counts of one `migrate_all_with` run, checked against what it should have done.
struct Run {
    label: &'static str,
    took: Duration,
    migrated: usize,
    up_to_date: usize,
    failed: usize,
}

impl Run {
    fn of(label: &'static str, took: Duration, outcomes: &[TenantOutcome]) -> Self {
        let mut run = Run {
            label,
            took,
            migrated: 0,
            up_to_date: 0,
            failed: 0,
        };
        for o in outcomes {
            match &o.result {
                OutcomeKind::Migrated { .. } => run.migrated += 1,
                OutcomeKind::UpToDate => run.up_to_date += 1,
                OutcomeKind::Failed { error } => {
                    if run.failed == 0 {
                        eprintln!("{label}: {} failed: {error}", o.slug);
                    }
                    run.failed += 1;
                }
            }
        }
        run
    }

    fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} |\n",
            self.label,
            thousands(self.migrated as u64),
            thousands(self.up_to_date as u64),
            thousands(self.failed as u64),
            secs(self.took)
        )
    }
}

async fn setup(world: &Arc<World>, args: &Args) -> Result<Duration> {
    let started = Instant::now();
    let mut done = 0usize;
    let mut stream = futures::stream::iter(0..args.schools)
        .map(|i| {
            let world = Arc::clone(world);
            async move { world.onboard(&format!("school-{i:04}")).await }
        })
        .buffer_unordered(args.setup_concurrency);
    while let Some(result) = stream.next().await {
        result?;
        done += 1;
        if done.is_multiple_of(100) || done == args.schools {
            eprintln!(
                "setup: {done}/{} schools onboarded ({:.0} s)",
                args.schools,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(started.elapsed())
}

async fn bench(world: Arc<World>, args: Args) -> Result<String> {
    let setup_took = setup(&world, &args).await?;

    // This build's tenant migrations plus one that no school has yet, as a new release
    // would ship it. The embedded names and SQL are already 'static.
    let files: Vec<(&'static str, &'static str)> = TENANT
        .migrations
        .iter()
        .map(|m| (m.name, m.sql))
        .chain(std::iter::once((NEW_NAME, NEW_SQL)))
        .collect();
    let set = MigrationSet::from_files(&files);

    let timed = |label, verify| {
        let (pool, set) = (&world.pool, &set);
        let concurrency = args.concurrency;
        async move {
            eprintln!("timing: {label}…");
            let started = Instant::now();
            let outcomes = migrate_all_with(
                pool,
                set,
                MigrateOptions {
                    concurrency,
                    verify,
                },
                |_| {},
            )
            .await?;
            let run = Run::of(label, started.elapsed(), &outcomes);
            eprintln!("{label}: {}", secs(run.took));
            anyhow::Ok(run)
        }
    };
    let new = timed("one new migration", false).await?;
    let nothing = timed("nothing to migrate", false).await?;
    let verify = timed("nothing to migrate, `verify: true` (informational)", true).await?;

    // The runs must have done what their labels say, or their times mean nothing.
    let new_ok = new.migrated == args.schools && new.failed == 0;
    let nothing_ok = nothing.up_to_date == args.schools && nothing.failed == 0;
    let applied: i64 = sqlx::query_scalar(
        "select count(*) from public.tenants where schema_version = $1 and schema_digest = $2",
    )
    .bind(set.latest_version())
    .bind(set.digest())
    .fetch_one(&world.pool)
    .await?;

    let mut out = String::new();
    out.push_str(&format!(
        "{} school schemas created by onboarding {} at a time (setup, untimed against any \
         target: {}), then `migrate_all_with` with `concurrency: {}` over a set of this \
         build's {} tenant migration(s) plus `{NEW_NAME}` (a table and an index). The \
         registry afterwards records the new version for {} of {} schools.\n\n",
        thousands(args.schools as u64),
        args.setup_concurrency,
        secs(setup_took),
        args.concurrency,
        TENANT.migrations.len(),
        thousands(u64::try_from(applied)?),
        thousands(args.schools as u64),
    ));
    out.push_str("| Run | Migrated | Up to date | Failed | Time |\n");
    out.push_str("|---|---:|---:|---:|---:|\n");
    for run in [&new, &nothing, &verify] {
        out.push_str(&run.row());
    }
    out.push_str("\n| Target | Measured | Result |\n|---|---|---|\n");
    out.push_str(&format!(
        "| Migrate: one new migration over {} schools < {} s | {} | {} |\n",
        thousands(args.schools as u64),
        TARGET_NEW.as_secs(),
        secs(new.took),
        verdict(new_ok && new.took < TARGET_NEW)
    ));
    out.push_str(&format!(
        "| Migrate: nothing to migrate over {} schools < {} s | {} | {} |\n",
        thousands(args.schools as u64),
        TARGET_NOTHING.as_secs(),
        secs(nothing.took),
        verdict(nothing_ok && nothing.took < TARGET_NOTHING)
    ));
    Ok(out)
}
