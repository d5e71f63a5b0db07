//! `campus-bench`: the platform's benchmarks. Each subcommand prints a markdown fragment
//! (a sentence on the setup, a table of figures, and a table of targets ending in PASS or
//! FAIL) on stdout, and its progress on stderr; `loadtest/run-benchmarks.sh` runs them all
//! and assembles `loadtest/README.md`.

mod auth;
mod dashboard;
mod driver;
mod fanout;
mod files;
mod home_school;
mod load;
mod machine;
mod migrations;
mod onboarding;
mod open_loop;
mod pgbench;
mod routing;
mod statements;
mod stats;
mod world;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "campus-bench",
    about = "Benchmarks of the County Campus Cloud platform"
)]
struct Cli {
    /// Postgres server to create the throwaway benchmark databases on (needs a superuser:
    /// benchmarks create databases and one role per school).
    #[arg(
        long,
        global = true,
        env = "CAMPUS_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Throughput of a trivial endpoint with and without the tenant routing layer.
    Routing(routing::Args),
    /// Signed-in against anonymous requests to one page, and a cheap request's throughput
    /// and latency during a burst of sign-ins (Argon2id).
    Auth(auth::Args),
    /// Home–school core: a school-wide notice to 6,000 guardians, the roll-call and
    /// today pages against pgbench running the same SQL, and gate ingest.
    HomeSchool(home_school::Args),
    /// Notification fan-out: in-app sends, a county-wide notice, email throughput and a
    /// gate alert behind another school's bulk notice.
    Fanout(fanout::Args),
    /// Files: a 100 MB upload against the plain SDK (throughput, peak memory), and preview
    /// times of a photo and a 10-page Word document.
    Files(files::Args),
    /// Time to onboard schools one after another.
    Onboarding(onboarding::Args),
    /// County dashboard: full rebuild, the overview for 32 and 1,000 schools, and the
    /// rollups' lag behind the morning arrival.
    Dashboard(dashboard::Args),
    /// Time to migrate 1,000 school schemas.
    Migrate(migrations::Args),
    /// Realistic scenarios across every school against a running `campus` (started by
    /// run-load.sh): the county's morning at 10×, roll call, the county dashboard, and the
    /// noisy-neighbour test.
    Load(load::Args),
    /// Describe this machine (CPU, memory, Postgres) as a markdown list.
    Machine,
    /// Print a free TCP port on 127.0.0.1 (for run-benchmarks.sh).
    FreePort,
    /// Serve the embedded S3 server until stdin closes, its endpoint on the first line of
    /// stdout (the files benchmark runs its S3 server in a process of its own).
    #[command(hide = true)]
    S3Server(world::S3ServerArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Built by hand rather than with #[tokio::main] so that the routing benchmark can give
    // its servers a chosen number of worker threads (the load client has its own thread).
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Command::Routing(args) = &cli.command {
        if args.server_threads > 0 {
            runtime.worker_threads(args.server_threads);
        }
    }
    let runtime = runtime.enable_all().build()?;
    let url = cli.database_url.as_str();
    let out = runtime.block_on(async {
        anyhow::Ok(match cli.command {
            Command::Routing(args) => routing::run(url, args).await?,
            Command::Auth(args) => auth::run(url, args).await?,
            Command::HomeSchool(args) => home_school::run(url, args).await?,
            Command::Fanout(args) => fanout::run(url, args).await?,
            Command::Files(args) => files::run(url, args).await?,
            Command::Dashboard(args) => dashboard::run(url, args).await?,
            Command::Onboarding(args) => onboarding::run(url, args).await?,
            Command::Migrate(args) => migrations::run(url, args).await?,
            Command::Load(args) => load::run(url, args).await?,
            Command::Machine => machine::run(url).await?,
            Command::FreePort => format!("{}\n", campus_devstack::free_port()?),
            Command::S3Server(args) => {
                world::serve_s3(args).await?;
                String::new()
            }
        })
    })?;
    print!("{out}");
    Ok(())
}
