//! Logging setup. Logs carry ids and routes, never names, answers, notes or tokens.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// Installs the global subscriber, writing to standard error so standard output stays free for
/// the demo's banner and command output.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    install_panic_hook();
    // A second call (tests that run several commands in one process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// Replaces the default panic hook, which prints the panic message to standard error. A message
/// can contain whatever value the panicking code was handling, patient data included, so only
/// the location is logged.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map_or_else(
            || "unknown".to_owned(),
            |place| format!("{}:{}", place.file(), place.line()),
        );
        tracing::error!(
            location,
            "panic; the message is not logged because it may contain patient data"
        );
    }));
}
