//! `leadhub-admin leadsafe report`, `leadsafe send` and `leadsafe export`: consumer statuses reported back
//! to LeadSafe ([`leadhub::leadsafe_reports`]) from an operator's file, sent again, and written as
//! LeadSafe's SFTP upload.
//!
//! Each command reads the hub's configuration (`--config`, its `env:` references resolved from the
//! environment, as the functions do): `[screening.leadsafe]` (LeadSafe's URL, credentials, client code,
//! timeout, `report_retention_days`), `hub.ssn_key` (reports keep their SSN only sealed) and `hub.hash_key`
//! (the local suppression record's hash). The table is `--table` or `LEADHUB_TABLE`.
//!
//! Nothing printed holds an SSN, except the export's CSV itself, written to `--out` (created readable by
//! its owner only) or to stdout: bad rows are named by line and column, reports by id.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;
use leadhub::config::Env;
use leadhub::connectors::leadsafe::{self, LeadSafeRecord};
use leadhub::crypto::{KeyedHasher, SsnSealer};
use leadhub::leadsafe_reports::{
    self, send_reports, LeadSafeReport, ReportSource, SendOutcome, SendStop,
};
use leadhub::screening::policy::LeadSafeSettings;
use leadhub::settings::Config;
use leadhub::store::dynamodb::DynamoStore;
use leadhub::store::{LeadSafeReports, Suppressions};
use leadhub::suppression::{RowError, SuppressionCsv};
use leadhub::transport::{ReqwestTransport, Transport};

use crate::suppression::{Report, TerminalReport, PUT_BATCH};

#[derive(Subcommand)]
pub enum LeadSafeCommand {
    /// Report consumer statuses listed in a CSV file in LeadSafe's upload format
    /// (`ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason`): each good row is suppressed locally at
    /// once, kept as a report (its SSN sealed under hub.ssn_key, for report_retention_days) and sent with
    /// LeadSafe's add. Bad rows are printed as `line N, column C: problem` and refused. Exits 1 if a row was
    /// refused or a report was left unsent (`leadsafe send` sends it later).
    Report {
        file: PathBuf,
        /// The hub's configuration document (its env: references are read from the environment).
        #[arg(long)]
        config: PathBuf,
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
    },
    /// Send the reports not sent yet (oldest first). Exits 1 if some are still unsent.
    Send {
        /// The hub's configuration document (its env: references are read from the environment).
        #[arg(long)]
        config: PathBuf,
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
        /// The most reports sent in one run.
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
    },
    /// Write every report kept since DATE (00:00 UTC), sent or not, as LeadSafe's SFTP upload CSV with
    /// [screening.leadsafe] client_code. The CSV holds SSNs: --out FILE is created readable by its owner
    /// only; without --out it goes to stdout.
    Export {
        /// YYYY-MM-DD (UTC).
        #[arg(long, value_parser = parse_day)]
        since: NaiveDate,
        /// The hub's configuration document (its env: references are read from the environment).
        #[arg(long)]
        config: PathBuf,
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
        /// Where to write the CSV (created, or truncated, with mode 0600); default: stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `YYYY-MM-DD`, exactly.
fn parse_day(text: &str) -> Result<NaiveDate, String> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    shaped
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| "a date is YYYY-MM-DD, such as 2026-11-01".to_owned())
}

/// Run `command`; `Ok(false)` when rows were refused or reports left unsent (the rest was done).
pub async fn run(command: LeadSafeCommand, sdk: &aws_config::SdkConfig) -> anyhow::Result<bool> {
    let store = |table: &str| DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table);
    let transport = ReqwestTransport::new();
    match command {
        LeadSafeCommand::Report {
            file,
            config,
            table,
        } => {
            let config = load(&config)?;
            let hub = Hub::of(&config)?;
            let reader = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let size = reader.metadata().map(|m| m.len()).unwrap_or(0);
            let mut csv = SuppressionCsv::new(reader, &hub.hasher)
                .map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
            let mut report_out = TerminalReport::new(size);
            let store = store(&table);
            let outcome = report(
                &hub,
                &store,
                &store,
                &transport,
                &mut csv,
                &mut report_out,
                leadhub::lead::now(),
            )
            .await
            .with_context(|| {
                format!(
                    "reporting the statuses of {} (table {table})",
                    file.display()
                )
            })?;
            report_out.finish(&outcome.summary());
            Ok(outcome.refused == 0 && outcome.unsent == 0)
        }
        LeadSafeCommand::Send {
            config,
            table,
            limit,
        } => {
            let config = load(&config)?;
            let hub = Hub::of(&config)?;
            let outcome = send_unsent(
                &hub,
                &store(&table),
                &transport,
                limit,
                leadhub::lead::now(),
            )
            .await
            .with_context(|| format!("reading the unsent reports of table {table}"))?;
            print!("{}", outcome.lines());
            Ok(outcome.left == 0)
        }
        LeadSafeCommand::Export {
            since,
            config,
            table,
            out,
        } => {
            let config = load(&config)?;
            let hub = Hub::of(&config)?;
            let (csv, count) = export(&hub, &store(&table), since, leadhub::lead::now())
                .await
                .with_context(|| format!("exporting the reports of table {table}"))?;
            match &out {
                Some(path) => write_private(path, &csv)?,
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(csv.as_bytes())?;
                    stdout.flush()?;
                }
            }
            eprintln!(
                "exported {} since {since} (UTC){}",
                count_of(count as u64, "report", "reports"),
                out.as_ref()
                    .map(|p| format!(" to {}", p.display()))
                    .unwrap_or_default()
            );
            Ok(true)
        }
    }
}

/// The configuration document at `path`, checked, its `env:` references resolved from the environment.
fn load(path: &Path) -> anyhow::Result<Config> {
    let document =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Config::from_toml(&document, &Env).with_context(|| format!("{}", path.display()))
}

/// What the commands need of the configuration.
pub struct Hub {
    pub settings: LeadSafeSettings,
    pub sealer: SsnSealer,
    pub hasher: KeyedHasher,
}

impl Hub {
    /// `[screening.leadsafe]` and `hub.ssn_key`, both required.
    pub fn of(config: &Config) -> anyhow::Result<Hub> {
        let settings = config.screening.leadsafe.clone().context(
            "the configuration has no [screening.leadsafe] table: there is no LeadSafe to report to",
        )?;
        let sealer = config.ssn_sealer.clone().context(
            "the configuration sets no hub.ssn_key: reports keep their SSN only sealed under it",
        )?;
        Ok(Hub {
            settings,
            sealer,
            hasher: config.hasher.clone(),
        })
    }
}

fn count_of(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What `leadsafe report` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportOutcome {
    /// Good rows: suppressed locally and kept as reports.
    pub reported: u64,
    /// Of those, sent to LeadSafe.
    pub sent: u64,
    /// Of those, left unsent.
    pub unsent: u64,
    pub refused: u64,
    /// Why sending stopped, if it did.
    pub stopped: Option<SendStop>,
}

impl ReportOutcome {
    pub fn summary(&self) -> String {
        let mut summary = format!(
            "reported {} ({} sent to LeadSafe), {} refused",
            count_of(self.reported, "status", "statuses"),
            self.sent,
            count_of(self.refused, "row", "rows")
        );
        if self.unsent > 0 {
            summary.push_str(&format!(
                "\n{} left unsent{}: send {} with `leadhub-admin leadsafe send`",
                count_of(self.unsent, "report", "reports"),
                self.stopped
                    .as_ref()
                    .map(|stop| format!(" ({stop})"))
                    .unwrap_or_default(),
                if self.unsent == 1 { "it" } else { "them" }
            ));
        }
        summary
    }
}

/// Report every good row of `csv` (LeadSafe's upload format): in batches of [`PUT_BATCH`], the rows'
/// local suppression records are stored, then their reports (each reported at `start` plus its row's
/// index in milliseconds, so that they are listed, and exported, in the file's order), then the reports are
/// sent. Once sending has stopped (LeadSafe down, credentials refused) the later batches are only kept. A
/// row whose client code is not `[screening.leadsafe] client_code` (when that is set) is refused. A store
/// failure stops it, saying how many statuses were reported before.
pub async fn report<R: Read>(
    hub: &Hub,
    reports: &dyn LeadSafeReports,
    suppressions: &dyn Suppressions,
    transport: &dyn Transport,
    csv: &mut SuppressionCsv<R>,
    out: &mut dyn Report,
    start: DateTime<Utc>,
) -> anyhow::Result<ReportOutcome> {
    let mut outcome = ReportOutcome::default();
    let mut batch: Vec<(LeadSafeReport, LeadSafeRecord)> = Vec::with_capacity(PUT_BATCH);
    let mut index: i64 = 0;
    while let Some(row) = csv.next_leadsafe_row() {
        out.progress(csv.bytes_read());
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                outcome.refused += 1;
                out.refused(&error);
                continue;
            }
        };
        if let Some(code) = &hub.settings.client_code {
            if &row.client_code != code {
                outcome.refused += 1;
                out.refused(&RowError {
                    line: row.line,
                    column: "ClientCode".to_owned(),
                    problem: format!(
                        "is not this hub's client code `{code}` ([screening.leadsafe] client_code)"
                    ),
                });
                continue;
            }
        }
        let at = start + chrono::Duration::milliseconds(index);
        index += 1;
        let report = LeadSafeReport::new(
            &hub.sealer,
            &row.record,
            ReportSource::Operator,
            at,
            hub.settings.report_retention,
        )
        .map_err(|error| anyhow::anyhow!("line {}: {error}", row.line))?;
        batch.push((report, row.record));
        if batch.len() >= PUT_BATCH {
            flush(
                hub,
                reports,
                suppressions,
                transport,
                &mut batch,
                &mut outcome,
            )
            .await?;
        }
    }
    out.progress(csv.bytes_read());
    if !batch.is_empty() {
        flush(
            hub,
            reports,
            suppressions,
            transport,
            &mut batch,
            &mut outcome,
        )
        .await?;
    }
    Ok(outcome)
}

/// Keep and send one batch (see [`report`]).
async fn flush(
    hub: &Hub,
    reports: &dyn LeadSafeReports,
    suppressions: &dyn Suppressions,
    transport: &dyn Transport,
    batch: &mut Vec<(LeadSafeReport, LeadSafeRecord)>,
    outcome: &mut ReportOutcome,
) -> anyhow::Result<()> {
    let failed = |outcome: &ReportOutcome| {
        format!(
            "the store failed after {} were reported",
            count_of(outcome.reported, "status", "statuses")
        )
    };
    let records: Vec<_> = batch
        .iter()
        .map(|(_, record)| leadsafe_reports::suppression_record(&hub.hasher, record))
        .collect();
    suppressions
        .put_suppressions(&records)
        .await
        .with_context(|| failed(outcome))?;
    for (report, _) in batch.iter() {
        reports
            .put_report(report)
            .await
            .with_context(|| failed(outcome))?;
    }
    let kept: Vec<LeadSafeReport> = batch.drain(..).map(|(report, _)| report).collect();
    outcome.reported += kept.len() as u64;
    if outcome.stopped.is_some() {
        outcome.unsent += kept.len() as u64;
        return Ok(());
    }
    let sent = send_reports(
        transport,
        &hub.settings,
        &hub.sealer,
        reports,
        &kept,
        hub.settings.timeout,
        leadhub::lead::now(),
    )
    .await;
    outcome.sent += sent.sent.len() as u64;
    outcome.unsent += (kept.len() - sent.sent.len()) as u64;
    outcome.stopped = sent.stopped;
    Ok(())
}

/// What `leadsafe send` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendRun {
    /// Unsent reports found.
    pub found: usize,
    pub outcome: SendOutcome,
    /// Reports still unsent.
    pub left: usize,
}

impl SendRun {
    /// One line per report LeadSafe refused or that does not open, then the summary.
    pub fn lines(&self) -> String {
        let mut lines = String::new();
        for (id, problem) in &self.outcome.refused {
            lines.push_str(&format!("report {id}: {problem}\n"));
        }
        for id in &self.outcome.unopened {
            lines.push_str(&format!(
                "report {id}: its sealed SSN does not open under hub.ssn_key (sealed under another key)\n"
            ));
        }
        lines.push_str(&format!(
            "sent {} of {} unsent {}",
            self.outcome.sent.len(),
            self.found,
            if self.found == 1 { "report" } else { "reports" }
        ));
        if let Some(stop) = &self.outcome.stopped {
            lines.push_str(&format!("; stopped: {stop}"));
        }
        lines.push('\n');
        lines
    }
}

/// Send up to `limit` unsent reports, oldest first.
pub async fn send_unsent(
    hub: &Hub,
    reports: &dyn LeadSafeReports,
    transport: &dyn Transport,
    limit: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<SendRun> {
    let unsent = reports.unsent_reports(limit, now).await?;
    let outcome = send_reports(
        transport,
        &hub.settings,
        &hub.sealer,
        reports,
        &unsent,
        hub.settings.timeout,
        now,
    )
    .await;
    Ok(SendRun {
        found: unsent.len(),
        left: unsent.len() - outcome.sent.len(),
        outcome,
    })
}

/// LeadSafe's CSV of every report kept since `since` (00:00 UTC), in the order they were reported, and
/// how many. Refused, writing nothing, when `[screening.leadsafe] client_code` is not set or a report's
/// SSN does not open (an export must be whole).
pub async fn export(
    hub: &Hub,
    reports: &dyn LeadSafeReports,
    since: NaiveDate,
    now: DateTime<Utc>,
) -> anyhow::Result<(String, usize)> {
    let client_code = hub.settings.client_code.as_deref().context(
        "[screening.leadsafe] client_code is not set: LeadSafe's CSV upload needs the ClientCode LeadSafe gave you",
    )?;
    let from = since.and_time(chrono::NaiveTime::MIN).and_utc();
    let kept = reports.reports_since(from, now).await?;
    let mut records = Vec::with_capacity(kept.len());
    for report in &kept {
        records.push(
            report
                .to_record(&hub.sealer)
                .with_context(|| format!("report {} cannot be exported", report.id))?,
        );
    }
    let csv = leadsafe::csv(client_code, &records).map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok((csv, records.len()))
}

/// Write `text` to `path`, created (or truncated) readable and writable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use leadhub::store::memory::MemoryStore;
    use leadhub::suppression::SuppressionKind;
    use leadhub::transport::Scripted;
    use serde_json::Value;

    const HASH_KEY: &str = "admin-leadsafe-hash-key-0123456789";

    fn config(extra: &str) -> Config {
        let secrets: BTreeMap<String, String> = [
            ("HASH_KEY", HASH_KEY),
            ("CALLBACK_KEY", "admin-leadsafe-callback-key-012345"),
            ("SSN_KEY", "admin-leadsafe-ssn-key-0123456789ab"),
            ("LS_KEY", "ls-admin-key"),
            ("LS_SECRET", "ls-admin-secret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let document = format!(
            r#"
[hub]
public_base_url = "http://127.0.0.1:3000"
hash_key = "env:HASH_KEY"
callback_key = "env:CALLBACK_KEY"
ssn_key = "env:SSN_KEY"

[screening.leadsafe]
environment = "dev"
base_url = "http://127.0.0.1:9"
api_key = "env:LS_KEY"
client_secret = "env:LS_SECRET"
{extra}
"#
        );
        Config::from_toml(&document, &secrets).expect("a valid configuration")
    }

    fn hub() -> Hub {
        Hub::of(&config("client_code = \"acme\"")).expect("LeadSafe and an SSN key")
    }

    fn csv(text: &str) -> SuppressionCsv<&[u8]> {
        SuppressionCsv::new(text.as_bytes(), &hub().hasher).expect("a header")
    }

    #[derive(Default)]
    struct Recorded {
        lines: Vec<String>,
    }

    impl Report for Recorded {
        fn progress(&mut self, _bytes: u64) {}
        fn refused(&mut self, error: &RowError) {
            self.lines.push(error.to_string());
        }
    }

    fn added() -> Result<leadhub::transport::Response, leadhub::transport::TransportError> {
        Scripted::json(200, r#"{"code":100,"message":"Records added"}"#)
    }

    fn start() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_790_000_000_000).expect("a time")
    }

    const FILE: &str = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason
acme,123-45-6789,2026-11-01,,Default
acme,111222333,2026-11-02,2026-12-01,RevokePaymentAuth
acme,24012012,2026-11-03,,Lawsuit
other,411411411,2026-11-04,,RegulatoryComplaint
acme,910910910,2026-11-05,2026-11-01,DebtConsolidation
acme,412421341,2026-11-06,,Bankruptcy
";

    #[tokio::test]
    async fn a_report_file_round_trips_to_leadsafes_csv() {
        let hub = hub();
        let store = MemoryStore::new();
        let transport = Scripted::new([added()]);
        let mut out = Recorded::default();
        let outcome = report(
            &hub,
            &store,
            &store,
            &transport,
            &mut csv(FILE),
            &mut out,
            start(),
        )
        .await
        .expect("reports");
        assert_eq!(
            outcome,
            ReportOutcome {
                reported: 3,
                sent: 3,
                unsent: 0,
                refused: 3,
                stopped: None
            }
        );
        assert_eq!(
            outcome.summary(),
            "reported 3 statuses (3 sent to LeadSafe), 3 rows refused"
        );
        assert_eq!(
            out.lines,
            [
                "line 4, column SocialSecurityNumber: not an SSN: it needs 9 digits (dashes and spaces are ignored)",
                "line 5, column ClientCode: is not this hub's client code `acme` ([screening.leadsafe] client_code)",
                "line 6, column EndDate: is before the start date",
            ]
        );
        for line in &out.lines {
            for digits in ["24012012", "411411411", "910910910"] {
                assert!(!line.contains(digits), "{line}");
            }
        }
        // One add with the three good rows, as the seed's sample writes them.
        let sent = transport.sent();
        assert_eq!(sent.len(), 1);
        let body: Value = serde_json::from_slice(&sent[0].body).expect("JSON");
        assert_eq!(
            body["Records"][1],
            serde_json::json!({"EndDate": "2026-12-01", "Reason": "RevokePaymentAuth", "SocialSecurityNumber": "111222333", "StartDate": "2026-11-02"})
        );
        // Suppressed locally at once.
        let probe = leadhub::suppression::hash(&hub.hasher, SuppressionKind::Ssn, "412421341");
        let found = store
            .find_suppressions(SuppressionKind::Ssn, &probe)
            .await
            .expect("find");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].source, "leadsafe-report");

        // The export: every report since the day, in the file's order, as LeadSafe's CSV.
        let day = NaiveDate::from_ymd_opt(2026, 9, 21).expect("a day");
        let (text, count) = export(&hub, &store, day, start()).await.expect("exports");
        assert_eq!(count, 3);
        assert_eq!(
            text,
            "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason
acme,123456789,2026-11-01,,Default
acme,111222333,2026-11-02,2026-12-01,RevokePaymentAuth
acme,412421341,2026-11-06,,Bankruptcy
"
        );
        // A later day has none of them.
        let later = NaiveDate::from_ymd_opt(2026, 9, 22).expect("a day");
        let (text, count) = export(&hub, &store, later, start()).await.expect("exports");
        assert_eq!(
            (text.as_str(), count),
            (
                "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason\n",
                0
            )
        );
        // Past their retention (30 days) they are gone.
        let (_, count) = export(&hub, &store, day, start() + chrono::Duration::days(31))
            .await
            .expect("exports");
        assert_eq!(count, 0);
    }

    #[tokio::test]
    async fn reports_left_unsent_are_sent_by_send() {
        let hub = hub();
        let store = MemoryStore::new();
        let down = Scripted::new([Scripted::json(503, "")]);
        let outcome = report(
            &hub,
            &store,
            &store,
            &down,
            &mut csv(FILE),
            &mut Recorded::default(),
            start(),
        )
        .await
        .expect("reports");
        assert_eq!((outcome.reported, outcome.sent, outcome.unsent), (3, 0, 3));
        assert_eq!(
            outcome.summary(),
            "reported 3 statuses (0 sent to LeadSafe), 3 rows refused\n3 reports left unsent (LeadSafe asked to try again later): send them with `leadhub-admin leadsafe send`"
        );
        let refused = Scripted::new([Scripted::json(401, "")]);
        let run = send_unsent(&hub, &store, &refused, 100, start())
            .await
            .expect("sends");
        assert_eq!((run.found, run.left), (3, 3));
        assert_eq!(
            run.lines(),
            "sent 0 of 3 unsent reports; stopped: LeadSafe refused the API key and client secret: check [screening.leadsafe] api_key and client_secret\n"
        );
        let up = Scripted::new([added()]);
        let run = send_unsent(&hub, &store, &up, 100, start())
            .await
            .expect("sends");
        assert_eq!((run.found, run.left), (3, 0));
        assert_eq!(run.lines(), "sent 3 of 3 unsent reports\n");
        assert_eq!(up.sent().len(), 1);
        assert!(store
            .unsent_reports(100, start())
            .await
            .expect("read")
            .is_empty());
        let again = send_unsent(&hub, &store, &up, 100, start())
            .await
            .expect("sends");
        assert_eq!(again.lines(), "sent 0 of 0 unsent reports\n");
    }

    #[tokio::test]
    async fn export_needs_a_client_code_and_the_commands_need_leadsafe_and_an_ssn_key() {
        let store = MemoryStore::new();
        let without_code = Hub::of(&config("")).expect("LeadSafe and an SSN key");
        let day = NaiveDate::from_ymd_opt(2026, 9, 21).expect("a day");
        let error = export(&without_code, &store, day, start())
            .await
            .expect_err("no client code");
        assert!(
            error.to_string().contains("client_code is not set"),
            "{error}"
        );
        // Without a client code a report file's codes are not checked.
        let outcome = report(
            &without_code,
            &store,
            &store,
            &Scripted::new([added()]),
            &mut csv(FILE),
            &mut Recorded::default(),
            start(),
        )
        .await
        .expect("reports");
        assert_eq!((outcome.reported, outcome.refused), (4, 2));

        let secrets: BTreeMap<String, String> = [
            ("HASH_KEY", HASH_KEY),
            ("CALLBACK_KEY", "admin-leadsafe-callback-key-012345"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let bare = Config::from_toml(
            "[hub]\npublic_base_url = \"http://127.0.0.1:3000\"\nhash_key = \"env:HASH_KEY\"\ncallback_key = \"env:CALLBACK_KEY\"\n",
            &secrets,
        )
        .expect("valid");
        let error = Hub::of(&bare).err().expect("no LeadSafe");
        assert!(
            error.to_string().contains("[screening.leadsafe]"),
            "{error}"
        );
    }

    #[test]
    fn since_is_a_day_written_yyyy_mm_dd() {
        assert_eq!(
            parse_day("2026-11-01"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 1).expect("a day"))
        );
        for bad in [
            "2026-1-01",
            "2026/11/01",
            "11/01/2026",
            "2026-13-01",
            "",
            "2026-11-01T00:00",
        ] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_export_is_written_readable_by_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("leadhub-admin-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("export.csv");
        write_private(
            &path,
            "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason\n",
        )
        .expect("writes");
        assert_eq!(
            std::fs::read_to_string(&path).expect("reads"),
            "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
