//! The audit trail's anchor outside the database: a signed checkpoint of the chain head, kept
//! in the data folder with its key, and the `stillpoint audit verify` command.
//!
//! The chain alone shows edits, deletions and reorderings, but a trail cut short at the end is
//! still a valid chain. The checkpoint records the head at a moment; a trail that ends before
//! it, or differs from it, has lost events.
// NOTE: each server keeps its own checkpoint in its own data folder unless the folders are shared.
// With several servers on one PostgreSQL database, every server's checkpoint must still match the
// chain, so each one detects a cut tail up to its last checkpoint.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use stillpoint_app::Store;
use stillpoint_app::audit::{VerifyError, verify_trail};
use stillpoint_app::ports::AuditStore as _;
use stillpoint_app::random::new_token;
use stillpoint_domain::audit::{ChainVerifier, Checkpoint};
use stillpoint_storage::{Database, DatabaseUrl};

use crate::settings::Settings;

/// How often a running server moves the checkpoint to the current head.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// The checkpoint and key files of one data folder.
#[derive(Debug, Clone)]
pub struct CheckpointFiles {
    key_path: PathBuf,
    checkpoint_path: PathBuf,
}

impl CheckpointFiles {
    /// The checkpoint in `data_dir`, signed with the key at `key_path` (default: also in
    /// `data_dir`, which protects only against someone who can change the database but not read
    /// the data folder).
    #[must_use]
    pub fn new(data_dir: &Path, key_path: Option<&Path>) -> Self {
        Self {
            key_path: key_path
                .map_or_else(|| data_dir.join("audit-checkpoint.key"), Path::to_path_buf),
            checkpoint_path: data_dir.join("audit-checkpoint"),
        }
    }

    /// Reads the signing key if it exists. Verification never makes a new one, because a new key
    /// would bless whatever the table contains now.
    pub fn existing_key(&self) -> anyhow::Result<Option<Vec<u8>>> {
        match std::fs::read_to_string(&self.key_path) {
            Ok(text) => Ok(Some(text.trim().as_bytes().to_vec())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error)
                .with_context(|| format!("cannot read the audit key {}", self.key_path.display())),
        }
    }

    /// The signing key, created (readable by the owner only) when missing.
    pub fn key(&self) -> anyhow::Result<Vec<u8>> {
        if !self.key_path.exists() {
            write_private(&self.key_path, &new_token()).with_context(|| {
                format!("cannot create the audit key {}", self.key_path.display())
            })?;
        }
        let text = std::fs::read_to_string(&self.key_path)
            .with_context(|| format!("cannot read the audit key {}", self.key_path.display()))?;
        Ok(text.trim().as_bytes().to_vec())
    }

    /// The last checkpoint written, if any.
    pub fn read(&self) -> anyhow::Result<Option<Checkpoint>> {
        let text = match std::fs::read_to_string(&self.checkpoint_path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot read {}", self.checkpoint_path.display()));
            }
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [sequence, hash, signature] = fields.as_slice() else {
            bail!(
                "{} is not an audit checkpoint (expected: sequence hash signature)",
                self.checkpoint_path.display()
            );
        };
        Ok(Some(Checkpoint {
            sequence: sequence.parse().with_context(|| {
                format!("{} has an invalid sequence", self.checkpoint_path.display())
            })?,
            hash: (*hash).to_owned(),
            signature: (*signature).to_owned(),
        }))
    }

    /// Replaces the checkpoint atomically (a new file renamed over the old one).
    fn write(&self, checkpoint: &Checkpoint) -> anyhow::Result<()> {
        let temporary = self
            .checkpoint_path
            .with_extension(format!("new-{}", new_token()));
        let text = format!(
            "{} {} {}\n",
            checkpoint.sequence, checkpoint.hash, checkpoint.signature
        );
        let _ = std::fs::remove_file(&temporary);
        write_private(&temporary, &text)?;
        std::fs::rename(&temporary, &self.checkpoint_path)
            .with_context(|| format!("cannot replace {}", self.checkpoint_path.display()))
    }

    /// Signs the current head and stores it, after checking that the stored checkpoint is
    /// genuine and that the chain still runs unbroken from it to the head. Never signs over a
    /// broken chain: that is reported as an error and the checkpoint stays where it was.
    pub async fn advance(
        &self,
        store: &dyn Store,
        key: &[u8],
    ) -> anyhow::Result<Option<Checkpoint>> {
        let current = self.read()?;
        let Some((sequence, hash)) = store.audit_head().await? else {
            return Ok(current);
        };
        let mut verifier = match &current {
            Some(checkpoint) if checkpoint.sequence == sequence && checkpoint.hash == hash => {
                return Ok(current);
            }
            Some(checkpoint) => {
                if !checkpoint.is_signed_by(key) {
                    bail!(
                        "the stored audit checkpoint's signature is invalid; run `stillpoint audit verify`"
                    );
                }
                if checkpoint.sequence > sequence {
                    bail!(
                        "the audit trail ends at event {sequence} but the checkpoint recorded event {}; \
                         run `stillpoint audit verify`",
                        checkpoint.sequence
                    );
                }
                let anchor = store.list_audit_events(checkpoint.sequence - 1, 1).await?;
                if anchor.first().is_none_or(|event| {
                    event.sequence != checkpoint.sequence || event.hash != checkpoint.hash
                }) {
                    bail!(
                        "event {} differs from the checkpoint; run `stillpoint audit verify`",
                        checkpoint.sequence
                    );
                }
                ChainVerifier::resume_after(checkpoint.sequence, &checkpoint.hash)
            }
            None => ChainVerifier::new(None, key)?,
        };

        let mut after = current.as_ref().map_or(0, |checkpoint| checkpoint.sequence);
        loop {
            let page = store.list_audit_events(after, 1000).await?;
            for event in &page {
                verifier
                    .check(event)
                    .map_err(|broken| anyhow::anyhow!("{broken}; run `stillpoint audit verify`"))?;
            }
            let Some(last) = page.last() else { break };
            after = last.sequence;
        }
        let checked_to = verifier.finish()?;

        let head = store.list_audit_events(checked_to - 1, 1).await?;
        let Some(head) = head.first() else {
            return Ok(current);
        };
        let checkpoint = Checkpoint::sign(key, head.sequence, &head.hash);
        self.write(&checkpoint)?;
        Ok(Some(checkpoint))
    }
}

pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Moves the checkpoint forward every [`CHECKPOINT_INTERVAL`] while the server runs.
pub fn spawn_checkpointer(store: Arc<dyn Store>, files: CheckpointFiles, key: Vec<u8>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(CHECKPOINT_INTERVAL);
        loop {
            ticker.tick().await;
            if let Err(error) = files.advance(store.as_ref(), &key).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "audit checkpoint could not be written; retrying later"
                );
            }
        }
    });
}

/// `stillpoint audit verify`: walks the whole trail and checks it against the checkpoint. It
/// reads only: it creates no database, runs no migration and makes no key.
pub async fn verify(mut settings: Settings) -> anyhow::Result<()> {
    let default_database = DatabaseUrl::sqlite_in(&settings.data_dir);
    settings.data_dir = settings.data_dir.canonicalize().with_context(|| {
        format!(
            "data folder {} not found; give the server's --data-dir",
            settings.data_dir.display()
        )
    })?;
    if settings.database == default_database {
        settings.database = DatabaseUrl::sqlite_in(&settings.data_dir);
    }
    if let DatabaseUrl::Sqlite(path) = &settings.database
        && !path.exists()
    {
        bail!(
            "no database at {}; give the server's --data-dir or --database-url",
            path.display()
        );
    }
    let database = Database::connect(&settings.database).await?;
    let status = database.read_schema_status().await?;
    if !status.is_current() {
        database.close().await;
        bail!(
            "the database schema is not current; verify with the Stillpoint release that wrote it"
        );
    }

    let files = CheckpointFiles::new(&settings.data_dir, settings.audit_key_path.as_deref());
    let checkpoint = files.read()?;
    let key = files.existing_key()?;
    let head = database.audit_head().await?;
    if head.is_some() && (checkpoint.is_none() || key.is_none()) {
        database.close().await;
        bail!(
            "the audit trail has events but no checkpoint or key in {}, so removed events cannot be ruled out; \
             restore audit-checkpoint and its key from the server's data folder",
            settings.data_dir.display()
        );
    }
    let checkpoint_sequence = checkpoint.as_ref().map(|checkpoint| checkpoint.sequence);

    let outcome = verify_trail(&database, checkpoint, &key.unwrap_or_default()).await;
    database.close().await;
    match outcome {
        Ok(report) => {
            let head = report.head.map_or(0, |(sequence, _)| sequence);
            println!(
                "The audit trail is intact: {} events, the last is event {head}.",
                report.events
            );
            if let Some(sequence) = checkpoint_sequence {
                println!("It matches the signed checkpoint at event {sequence}.");
            }
            Ok(())
        }
        Err(VerifyError::Broken(broken)) => {
            let place = broken
                .sequence()
                .map_or_else(String::new, |sequence| format!(" at event {sequence}"));
            bail!(
                "the audit trail is broken{place}: {broken}; keep this database for investigation and restore a backup"
            )
        }
        Err(VerifyError::Storage(error)) => Err(error.into()),
    }
}
