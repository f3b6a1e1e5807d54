//! `leadhub-admin suppression import`, `suppression list` and `suppression remove`: the operator's
//! suppression list on the table (`--table`, default `LEADHUB_TABLE`). The file formats, the checks and
//! the hashing are [`leadhub::suppression`]'s; the loops here take any [`Suppressions`] and any
//! [`Report`], so the tests run them on the memory store.
//!
//! Values are hashed under `LEADHUB_HASH_KEY`, which must hold the functions' `[hub] hash_key` secret
//! itself (its bytes, as the configuration loader uses them), or nothing imported would ever match a lead.
//! Nothing printed holds a value: bad rows are named by line and column, the listing gives counts.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::Subcommand;
use futures::stream::{self, StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leadhub::config::MIN_KEY_BYTES;
use leadhub::crypto::KeyedHasher;
use leadhub::store::dynamodb::DynamoStore;
use leadhub::store::{SuppressionCounts, Suppressions};
use leadhub::suppression::{RowError, SuppressedValue, SuppressionCsv, SuppressionKind};

/// The environment variable holding the hash key.
pub const HASH_KEY_VARIABLE: &str = "LEADHUB_HASH_KEY";

/// Records written per call of [`Suppressions::put_suppressions`] (the DynamoDB adapter splits them into
/// `BatchWriteItem`s of 25).
pub const PUT_BATCH: usize = 500;

/// Values removed at once.
const REMOVALS_IN_FLIGHT: usize = 8;

/// Values gathered before they are removed.
const REMOVE_BATCH: usize = 100;

#[derive(Subcommand)]
pub enum SuppressionCommand {
    /// Import a CSV file: LeadSafe's upload (`ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason`)
    /// or `kind,value,start_date,end_date,reason`. Values are hashed under LEADHUB_HASH_KEY. Bad rows are
    /// printed by line and column and refused; the good ones are imported; exits 1 if any was refused.
    Import {
        file: PathBuf,
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
    },
    /// Count the records of each kind, and those active today (UTC). Never shows a value.
    List {
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
    },
    /// Remove every record of each value listed in a CSV file of either import format (only the value
    /// columns are read; the others may be empty). Exits 1 if any row was refused.
    Remove {
        file: PathBuf,
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
    },
}

/// Run `command`; `Ok(false)` when rows were refused (the rest was done).
pub async fn run(command: SuppressionCommand, sdk: &aws_config::SdkConfig) -> anyhow::Result<bool> {
    let store = |table: &str| DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table);
    match command {
        SuppressionCommand::Import { file, table } => {
            let hasher = hasher_from(std::env::var(HASH_KEY_VARIABLE).ok())?;
            let (mut csv, mut report) = open(&file, &hasher)?;
            let outcome = import(&store(&table), &mut csv, &mut report)
                .await
                .with_context(|| format!("importing {} into table {table}", file.display()))?;
            report.finish(&outcome.summary());
            Ok(outcome.refused == 0)
        }
        SuppressionCommand::List { table } => {
            let today = Utc::now().date_naive();
            let counts = store(&table)
                .suppression_counts(today)
                .await
                .with_context(|| format!("counting the suppression records of table {table}"))?;
            print!("{}", listing(&counts, &table, today));
            Ok(true)
        }
        SuppressionCommand::Remove { file, table } => {
            let hasher = hasher_from(std::env::var(HASH_KEY_VARIABLE).ok())?;
            let (mut csv, mut report) = open(&file, &hasher)?;
            let outcome = remove(&store(&table), &mut csv, &mut report)
                .await
                .with_context(|| {
                    format!(
                        "removing the values of {} from table {table}",
                        file.display()
                    )
                })?;
            report.finish(&outcome.summary());
            Ok(outcome.refused == 0)
        }
    }
}

/// The hasher of `LEADHUB_HASH_KEY`'s value: its bytes, as the configuration turns `[hub] hash_key` into
/// the functions' hasher. Refused when unset or shorter than the configuration allows; the error never
/// shows the value.
pub fn hasher_from(value: Option<String>) -> anyhow::Result<KeyedHasher> {
    let key = value.filter(|key| !key.is_empty()).with_context(|| {
        format!(
            "{HASH_KEY_VARIABLE} is not set: it must hold the secret the functions' [hub] hash_key names, \
             so that listed values match leads"
        )
    })?;
    anyhow::ensure!(
        key.len() >= MIN_KEY_BYTES,
        "{HASH_KEY_VARIABLE} must be at least {MIN_KEY_BYTES} characters, as [hub] hash_key is"
    );
    Ok(KeyedHasher::new(key.as_bytes()))
}

/// The file's reader (header read) and a report on the terminal sized to it.
fn open(
    path: &PathBuf,
    hasher: &KeyedHasher,
) -> anyhow::Result<(SuppressionCsv<std::fs::File>, TerminalReport)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let csv = SuppressionCsv::new(file, hasher)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    Ok((csv, TerminalReport::new(size)))
}

/// Where the loops say how far they got and which rows they refused.
pub trait Report {
    /// `bytes` of the file have been read.
    fn progress(&mut self, bytes: u64);
    /// A row was refused.
    fn refused(&mut self, error: &RowError);
}

/// Bad rows on stdout as `line N, column C: problem`; a progress bar on stderr when it is a terminal.
pub(crate) struct TerminalReport {
    bar: ProgressBar,
}

impl TerminalReport {
    pub(crate) fn new(size: u64) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(size), target);
        if let Ok(style) = ProgressStyle::with_template(
            "{wide_bar} {bytes}/{total_bytes} {elapsed_precise} (eta {eta})",
        ) {
            bar.set_style(style);
        }
        TerminalReport { bar }
    }

    pub(crate) fn finish(&mut self, summary: &str) {
        self.bar.finish_and_clear();
        println!("{summary}");
    }
}

impl Report for TerminalReport {
    fn progress(&mut self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    fn refused(&mut self, error: &RowError) {
        self.bar.suspend(|| println!("{error}"));
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportOutcome {
    /// Good rows written (a row repeating a record overwrites it: it is counted, not stored twice).
    pub imported: u64,
    pub refused: u64,
}

impl ImportOutcome {
    pub fn summary(&self) -> String {
        format!(
            "imported {}, {} refused",
            count(self.imported, "record", "records"),
            count(self.refused, "row", "rows")
        )
    }
}

/// What a removal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemoveOutcome {
    /// Records removed.
    pub removed: u64,
    /// Rows whose value was read (a value listed twice counts twice).
    pub values: u64,
    pub refused: u64,
}

impl RemoveOutcome {
    pub fn summary(&self) -> String {
        format!(
            "removed {} of {}, {} refused",
            count(self.removed, "record", "records"),
            count(self.values, "value", "values"),
            count(self.refused, "row", "rows")
        )
    }
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Import every good row of `csv` in batches of [`PUT_BATCH`], reporting each bad row. A store failure
/// stops it, saying how many records were written before.
pub async fn import<R: Read>(
    store: &dyn Suppressions,
    csv: &mut SuppressionCsv<R>,
    report: &mut dyn Report,
) -> anyhow::Result<ImportOutcome> {
    let mut outcome = ImportOutcome::default();
    let mut batch = Vec::with_capacity(PUT_BATCH);
    while let Some(row) = csv.next_record() {
        report.progress(csv.bytes_read());
        match row {
            Ok(record) => batch.push(record),
            Err(error) => {
                outcome.refused += 1;
                report.refused(&error);
            }
        }
        if batch.len() >= PUT_BATCH {
            put_batch(store, &mut batch, &mut outcome).await?;
        }
    }
    report.progress(csv.bytes_read());
    if !batch.is_empty() {
        put_batch(store, &mut batch, &mut outcome).await?;
    }
    Ok(outcome)
}

async fn put_batch(
    store: &dyn Suppressions,
    batch: &mut Vec<leadhub::suppression::SuppressionRecord>,
    outcome: &mut ImportOutcome,
) -> anyhow::Result<()> {
    store.put_suppressions(batch).await.with_context(|| {
        format!(
            "the store failed after {} were imported",
            count(outcome.imported, "record", "records")
        )
    })?;
    outcome.imported += batch.len() as u64;
    batch.clear();
    Ok(())
}

/// Remove every record of each value of `csv`'s good rows, reporting each bad row. A store failure stops
/// it, saying how many records were removed before.
pub async fn remove<R: Read>(
    store: &dyn Suppressions,
    csv: &mut SuppressionCsv<R>,
    report: &mut dyn Report,
) -> anyhow::Result<RemoveOutcome> {
    let mut outcome = RemoveOutcome::default();
    let mut batch: HashSet<SuppressedValue> = HashSet::new();
    while let Some(row) = csv.next_value() {
        report.progress(csv.bytes_read());
        match row {
            Ok(value) => {
                outcome.values += 1;
                batch.insert(value);
            }
            Err(error) => {
                outcome.refused += 1;
                report.refused(&error);
            }
        }
        if batch.len() >= REMOVE_BATCH {
            remove_batch(store, &mut batch, &mut outcome).await?;
        }
    }
    report.progress(csv.bytes_read());
    if !batch.is_empty() {
        remove_batch(store, &mut batch, &mut outcome).await?;
    }
    Ok(outcome)
}

/// Remove the values of `batch` (a set: a value listed twice in it is asked once), a few at once.
async fn remove_batch(
    store: &dyn Suppressions,
    batch: &mut HashSet<SuppressedValue>,
    outcome: &mut RemoveOutcome,
) -> anyhow::Result<()> {
    let removed: Vec<usize> = stream::iter(batch.drain())
        .map(|value| async move { store.remove_suppressions(value.kind, &value.hash).await })
        .buffer_unordered(REMOVALS_IN_FLIGHT)
        .try_collect()
        .await
        .with_context(|| {
            format!(
                "the store failed after {} were removed",
                count(outcome.removed, "record", "records")
            )
        })?;
    outcome.removed += removed.iter().map(|n| *n as u64).sum::<u64>();
    Ok(())
}

/// `suppression list`'s table: records and active ones per kind, and all together.
fn listing(counts: &SuppressionCounts, table: &str, today: NaiveDate) -> String {
    let mut rows: Vec<[String; 3]> = SuppressionKind::ALL
        .into_iter()
        .map(|kind| {
            let of = counts.of(kind);
            [
                kind.as_str().to_owned(),
                of.records.to_string(),
                of.active.to_string(),
            ]
        })
        .collect();
    let total = counts.total();
    rows.push([
        "all".to_owned(),
        total.records.to_string(),
        total.active.to_string(),
    ]);
    let header = ["KIND", "RECORDS", "ACTIVE"];
    let width = |column: usize| {
        rows.iter()
            .map(|row| row[column].len())
            .chain([header[column].len()])
            .max()
            .unwrap_or(0)
    };
    let (kind_width, records_width) = (width(0), width(1));
    let mut out = format!("suppression records of table {table}, active on {today} (UTC):\n");
    let _ = writeln!(
        out,
        "{:<kind_width$}  {:>records_width$}  {}",
        header[0], header[1], header[2]
    );
    for row in &rows {
        let _ = writeln!(
            out,
            "{:<kind_width$}  {:>records_width$}  {:>6}",
            row[0], row[1], row[2]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadhub::store::memory::MemoryStore;
    use leadhub::store::{KindCounts, StoreError};
    use leadhub::suppression::{hash, normalize, SuppressionRecord};

    const KEY: &str = "admin-test-hash-key-of-32-bytes!";

    fn hasher() -> KeyedHasher {
        hasher_from(Some(KEY.to_owned())).expect("a key")
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    fn hash_of(kind: SuppressionKind, raw: &str) -> String {
        hash(&hasher(), kind, &normalize(kind, raw).expect("valid"))
    }

    /// What the loops reported.
    #[derive(Default)]
    struct Recorded {
        lines: Vec<String>,
        progress: Vec<u64>,
    }

    impl Report for Recorded {
        fn progress(&mut self, bytes: u64) {
            self.progress.push(bytes);
        }
        fn refused(&mut self, error: &RowError) {
            self.lines.push(error.to_string());
        }
    }

    fn csv(text: &str) -> SuppressionCsv<&[u8]> {
        SuppressionCsv::new(text.as_bytes(), &hasher()).expect("a header")
    }

    const MIXED: &str = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason
exampleco,123456789,2024-01-05,,Default
exampleco,111222333,2024-01-06,2024-02-12,RevokePaymentAuth
exampleco,240120120,2024-01-07,,Fraud
exampleco,41141141,2024-01-08,,RegulatoryComplaint
exampleco,910910910,2024-03-09,2024-02-01,DebtConsolidation
exampleco,761789231,2024-01-10,Default
exampleco,123123123,2024-13-11,,SuspectedIdTheft
exampleco,412421341,2024-01-12,,Bankruptcy
";

    #[tokio::test]
    async fn import_keeps_the_good_rows_and_reports_the_bad_ones() {
        let store = MemoryStore::new();
        let mut report = Recorded::default();
        let outcome = import(&store, &mut csv(MIXED), &mut report)
            .await
            .expect("imports");
        assert_eq!(
            outcome,
            ImportOutcome {
                imported: 3,
                refused: 5
            }
        );
        assert_eq!(outcome.summary(), "imported 3 records, 5 rows refused");
        assert_eq!(
            report.lines,
            [
                "line 4, column Reason: not one of LeadSafe's nine reasons (Default, RevokePaymentAuth, \
                 Lawsuit, RegulatoryComplaint, DebtConsolidation, SuspectedIdTheft, Bankruptcy, Abusive, \
                 Deceased)",
                "line 5, column SocialSecurityNumber: not an SSN: it needs 9 digits (dashes and spaces are \
                 ignored)",
                "line 6, column EndDate: is before the start date",
                "line 7, column Reason: is missing: the row has 4 of the header's 5 columns",
                "line 8, column StartDate: not a date: dates are YYYY-MM-DD, such as 2024-01-05",
            ]
        );
        for line in &report.lines {
            for value in [
                "240120120",
                "41141141",
                "910910910",
                "761789231",
                "123123123",
            ] {
                assert!(!line.contains(value), "{line}");
            }
        }
        assert_eq!(report.progress.last(), Some(&(MIXED.len() as u64)));
        let found = store
            .find_suppressions(
                SuppressionKind::Ssn,
                &hash_of(SuppressionKind::Ssn, "111222333"),
            )
            .await
            .expect("find");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].end_date, Some(day("2024-02-12")));
        assert_eq!(found[0].source, "exampleco");
        assert_eq!(
            store
                .suppression_counts(day("2024-03-01"))
                .await
                .expect("counts")
                .ssn,
            KindCounts {
                records: 3,
                active: 2
            }
        );
        // Importing again changes nothing.
        let again = import(&store, &mut csv(MIXED), &mut Recorded::default())
            .await
            .expect("imports");
        assert_eq!(again, outcome);
        assert_eq!(
            store
                .suppression_counts(day("2024-03-01"))
                .await
                .expect("counts")
                .ssn
                .records,
            3
        );
    }

    /// A store that counts its calls and fails from the `fail_at`th put on.
    struct Counting {
        inner: MemoryStore,
        puts: std::sync::Mutex<Vec<usize>>,
        fail_at: usize,
    }

    #[async_trait::async_trait]
    impl Suppressions for Counting {
        async fn put_suppressions(&self, records: &[SuppressionRecord]) -> Result<(), StoreError> {
            let calls = {
                let mut puts = self.puts.lock().expect("lock");
                puts.push(records.len());
                puts.len()
            };
            if calls >= self.fail_at {
                return Err(StoreError::Unavailable("throttled".to_owned()));
            }
            self.inner.put_suppressions(records).await
        }
        async fn find_suppressions(
            &self,
            kind: SuppressionKind,
            hash: &str,
        ) -> Result<Vec<SuppressionRecord>, StoreError> {
            self.inner.find_suppressions(kind, hash).await
        }
        async fn remove_suppressions(
            &self,
            kind: SuppressionKind,
            hash: &str,
        ) -> Result<usize, StoreError> {
            self.inner.remove_suppressions(kind, hash).await
        }
        async fn suppression_counts(
            &self,
            today: NaiveDate,
        ) -> Result<SuppressionCounts, StoreError> {
            self.inner.suppression_counts(today).await
        }
    }

    fn phones(n: usize) -> String {
        let mut file = "kind,value,start_date,end_date,reason\n".to_owned();
        for i in 0..n {
            let _ = writeln!(file, "phone,555{i:07},2024-01-05,,DoNotContact");
        }
        file
    }

    #[tokio::test]
    async fn import_writes_in_batches_and_says_how_far_it_got() {
        let store = Counting {
            inner: MemoryStore::new(),
            puts: Default::default(),
            fail_at: usize::MAX,
        };
        let file = phones(PUT_BATCH * 2 + 7);
        let outcome = import(&store, &mut csv(&file), &mut Recorded::default())
            .await
            .expect("imports");
        assert_eq!(outcome.imported, (PUT_BATCH * 2 + 7) as u64);
        assert_eq!(*store.puts.lock().expect("lock"), [PUT_BATCH, PUT_BATCH, 7]);
        // Exactly a batch: no empty put after it.
        let store = Counting {
            inner: MemoryStore::new(),
            puts: Default::default(),
            fail_at: usize::MAX,
        };
        import(
            &store,
            &mut csv(&phones(PUT_BATCH)),
            &mut Recorded::default(),
        )
        .await
        .expect("imports");
        assert_eq!(*store.puts.lock().expect("lock"), [PUT_BATCH]);
        // No good row: no put.
        let store = Counting {
            inner: MemoryStore::new(),
            puts: Default::default(),
            fail_at: usize::MAX,
        };
        let outcome = import(
            &store,
            &mut csv("kind,value,start_date,end_date,reason\nfax,1,2024-01-05,,OptOut\n"),
            &mut Recorded::default(),
        )
        .await
        .expect("imports");
        assert_eq!(outcome.summary(), "imported 0 records, 1 row refused");
        assert!(store.puts.lock().expect("lock").is_empty());

        // The second put fails: the first batch stays, and the error says so.
        let store = Counting {
            inner: MemoryStore::new(),
            puts: Default::default(),
            fail_at: 2,
        };
        let error = import(&store, &mut csv(&file), &mut Recorded::default())
            .await
            .expect_err("fails");
        let message = format!("{error:#}");
        assert!(
            message.contains(&format!("after {PUT_BATCH} records")),
            "{message}"
        );
        assert!(message.contains("throttled"), "{message}");
        assert_eq!(
            store
                .suppression_counts(day("2024-03-01"))
                .await
                .expect("counts")
                .phone
                .records,
            PUT_BATCH as u64
        );
    }

    #[tokio::test]
    async fn remove_takes_every_record_of_each_listed_value() {
        let store = MemoryStore::new();
        let listed = "kind,value,start_date,end_date,reason
ssn,123-45-6789,2024-01-05,,Default
ssn,123456789,2024-02-05,,Lawsuit
email,x@y.co,2024-01-05,,OptOut
email,keep@y.co,2024-01-05,,OptOut
phone,5552010000,2024-01-05,,DoNotContact
";
        import(&store, &mut csv(listed), &mut Recorded::default())
            .await
            .expect("imports");
        let removal = "kind,value,start_date,end_date,reason
ssn,123456789,,,
email,X@Y.CO,,,
email,x@y.co,,,
phone,555,,,
phone,(555) 201-0000,,,
email,never@y.co,,,
";
        let mut report = Recorded::default();
        let outcome = remove(&store, &mut csv(removal), &mut report)
            .await
            .expect("removes");
        assert_eq!(
            outcome,
            RemoveOutcome {
                removed: 4,
                values: 5,
                refused: 1
            }
        );
        assert_eq!(
            outcome.summary(),
            "removed 4 records of 5 values, 1 row refused"
        );
        assert_eq!(
            report.lines,
            ["line 5, column value: not a US phone number: it needs 10 digits, or 11 starting with 1 \
              (other characters are ignored)"]
        );
        let counts = store
            .suppression_counts(day("2024-03-01"))
            .await
            .expect("counts");
        assert_eq!(counts.total().records, 1);
        assert_eq!(counts.email.records, 1);
        // LeadSafe's format works for removal too.
        let leadsafe = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason\n,111222333,,,\n";
        let outcome = remove(&store, &mut csv(leadsafe), &mut Recorded::default())
            .await
            .expect("removes");
        assert_eq!(
            outcome.summary(),
            "removed 0 records of 1 value, 0 rows refused"
        );
    }

    #[test]
    fn the_hash_key_is_the_configured_secrets_bytes() {
        let hasher = hasher_from(Some(KEY.to_owned())).expect("a key");
        // As `Config` builds its hasher from `[hub] hash_key`: the secret's bytes.
        let configured = KeyedHasher::new(KEY.as_bytes());
        assert_eq!(
            hash(&hasher, SuppressionKind::Ssn, "123456789"),
            configured.hex(&["ssn", "123456789"])
        );
        for missing in [None, Some(String::new())] {
            let message = hasher_from(missing).expect_err("unset").to_string();
            assert!(message.contains("LEADHUB_HASH_KEY is not set"), "{message}");
        }
        let short = "short-secret-value";
        let message = hasher_from(Some(short.to_owned()))
            .expect_err("short")
            .to_string();
        assert!(message.contains("at least 32"), "{message}");
        assert!(!message.contains(short), "{message}");
    }

    #[test]
    fn the_listing_gives_counts_per_kind() {
        let counts = SuppressionCounts {
            ssn: KindCounts {
                records: 1200,
                active: 980,
            },
            email: KindCounts {
                records: 3,
                active: 3,
            },
            phone: KindCounts::default(),
        };
        assert_eq!(
            listing(&counts, "lh-leads", day("2026-12-02")),
            "suppression records of table lh-leads, active on 2026-12-02 (UTC):
KIND   RECORDS  ACTIVE
ssn       1200     980
email        3       3
phone        0       0
all       1203     983
"
        );
    }
}
