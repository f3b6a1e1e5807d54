//! Logging. Lines carry lead ids, partner ids and destination ids — never names, emails, phones,
//! addresses, SSNs, lead bodies or credentials.

/// JSON lines for Lambda (CloudWatch), filtered by `RUST_LOG` (default `info`).
pub fn init_json() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .try_init();
}

/// Readable lines for a terminal (the local stack).
pub fn init_text() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
