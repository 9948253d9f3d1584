//! Logs: `RUST_LOG` filters (default `info`); `LANDLORD_LOG_FORMAT=json` gives one JSON object per line.
//! Spans carry the resource (`tenant`, `installation`), so every line names what it is about.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LANDLORD_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Colours only for a person at a terminal, never into files or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
}
