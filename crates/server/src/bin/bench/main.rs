//! `stillpoint-bench`: load benchmarks run on loopback with wrk (Debian package `wrk`).
//!
//! `stillpoint-bench healthz` serves `/healthz` twice, one after the other: through Stillpoint's
//! full application (router, middleware stack, SQLite database behind it, logging at the default
//! `info` level) and through a minimal axum hello-world route. Each gets the same wrk load, and
//! the report gives both throughputs, their latency percentiles and the ratio, as a Markdown
//! table for `docs/benchmarks.md`.
//!
//! `stillpoint-bench submit` posts PHQ-9 responses through the JSON API (scoring, safety rules,
//! and the response, scores, alert and audit events in one durable transaction) and compares the
//! rate with a bare loop of single-row durable SQLite commits on the same disk.
//!
//! `stillpoint-bench reminders` plans 1,000,000 reminders for 100,000 patients, then measures
//! the job worker's sustained e-mail throughput to a local SMTP sink and the lateness of
//! 10,000 reminders due within the same minute.

mod reminders;
mod submit;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use axum::Router;
use axum::routing::get;
use stillpoint_app::SystemClock;
use stillpoint_storage::{Database, DatabaseUrl};
use stillpoint_web::i18n::Catalogs;
use stillpoint_web::{AppState, WebConfig};

/// Throughput and latency percentiles of one wrk run.
#[derive(Debug, Clone)]
struct LoadResult {
    requests_per_second: f64,
    p50: String,
    p99: String,
}

#[derive(Debug)]
struct Options {
    duration_seconds: u64,
    connections: u32,
    threads: u32,
    /// The `tracing` filter both servers run with; `info` is the production default.
    log_level: String,
    /// For `submit`: a PostgreSQL URL to measure instead of a SQLite file.
    database_url: Option<String>,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        duration_seconds: 15,
        connections: 32,
        threads: 1,
        log_level: "info".to_owned(),
        database_url: None,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        let number = || -> anyhow::Result<u64> {
            value
                .parse()
                .map_err(|_| anyhow!("{flag}: '{value}' is not a whole number"))
        };
        match flag.as_str() {
            "--duration" => options.duration_seconds = number()?,
            "--connections" => options.connections = u32::try_from(number()?)?,
            "--threads" => options.threads = u32::try_from(number()?)?,
            "--log-level" => options.log_level.clone_from(value),
            "--database-url" => options.database_url = Some(value.clone()),
            other => bail!(
                "unknown option {other}; use --duration SECONDS, --connections N, --threads N, --log-level LEVEL, --database-url URL"
            ),
        }
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("reminders") {
        return reminders::run(&args[1..]);
    }
    let submit = match args.first().map(String::as_str) {
        Some("healthz") => false,
        Some("submit") => true,
        _ => bail!(
            "usage: stillpoint-bench healthz|submit [--duration SECONDS] [--connections N] [--threads N] [--log-level LEVEL] [--database-url URL]\n       stillpoint-bench reminders [--patients N] [--days N] [--throughput N] [--burst N] [--workers N] [--database-url URL]"
        ),
    };
    let options = parse_options(&args[1..])?;
    if submit {
        return submit::run(&options);
    }
    Command::new("wrk")
        .arg("--version")
        .output()
        .context("wrk is not installed; install the Debian package wrk")?;

    tracing_subscriber::fmt()
        .with_env_filter(options.log_level.as_str())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let data = tempfile::tempdir()?;

    let full = runtime.block_on(serve_full_stack(data.path()))?;
    let minimal = runtime.block_on(serve_minimal())?;

    // Warm both up, then measure one after the other so they never share the CPU.
    run_wrk(full, &options, 2)?;
    run_wrk(minimal, &options, 2)?;
    let full_result = run_wrk(full, &options, options.duration_seconds)?;
    let minimal_result = run_wrk(minimal, &options, options.duration_seconds)?;

    print_report(&options, &full_result, &minimal_result);
    Ok(())
}

async fn serve_full_stack(data_dir: &std::path::Path) -> anyhow::Result<SocketAddr> {
    let database = Database::connect(&DatabaseUrl::sqlite_in(data_dir)).await?;
    database.migrate().await?;
    let state = AppState::new(
        Arc::new(database),
        Arc::new(SystemClock),
        Catalogs::load(None)?,
        WebConfig::default(),
    );
    serve(stillpoint_web::router(state)).await
}

async fn serve_minimal() -> anyhow::Result<SocketAddr> {
    serve(Router::new().route("/healthz", get(|| async { "{\"status\":\"ok\"}" }))).await
}

async fn serve(app: Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(error = %error, "benchmark server failed");
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(address)
}

fn run_wrk(address: SocketAddr, options: &Options, seconds: u64) -> anyhow::Result<LoadResult> {
    run_wrk_script(&format!("http://{address}/healthz"), None, options, seconds)
}

/// Runs wrk against `url`, with a Lua script that builds each request when one is given.
fn run_wrk_script(
    url: &str,
    script: Option<&std::path::Path>,
    options: &Options,
    seconds: u64,
) -> anyhow::Result<LoadResult> {
    let mut command = Command::new("wrk");
    command.args([
        format!("-t{}", options.threads),
        format!("-c{}", options.connections),
        format!("-d{seconds}s"),
        "--latency".to_owned(),
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output().context("wrk failed to start")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!("wrk saw errors:\n{text}");
    }

    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(|rest| rest.trim().to_owned())
    };
    Ok(LoadResult {
        requests_per_second: field("Requests/sec:")
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| anyhow!("wrk printed no throughput:\n{text}"))?,
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
    })
}

fn print_report(options: &Options, full: &LoadResult, minimal: &LoadResult) {
    println!(
        "wrk -t{} -c{} -d{}s --latency, GET /healthz on 127.0.0.1, log filter {}",
        options.threads, options.connections, options.duration_seconds, options.log_level
    );
    println!();
    println!("| server | requests/s | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    println!(
        "| Stillpoint, full middleware stack | {:.0} | {} | {} |",
        full.requests_per_second, full.p50, full.p99
    );
    println!(
        "| minimal axum hello-world | {:.0} | {} | {} |",
        minimal.requests_per_second, minimal.p50, minimal.p99
    );
    println!();
    println!(
        "Ratio (Stillpoint / minimal): {:.2}",
        full.requests_per_second / minimal.requests_per_second
    );
}
