//! The audit trail's anchor outside the database: a signed checkpoint of the chain head, kept
//! in the data folder with its key, and the `stillpoint audit verify` command.
//!
//! The chain alone shows edits, deletions and reorderings, but a trail cut short at the end is
//! still a valid chain. The checkpoint records the head at a moment; a trail that ends before
//! it, or differs from it, has lost events.
// NOTE: with several servers sharing PostgreSQL, the data folder (and so the checkpoint) must be
// shared too, as the deployment guide asks; each server then moves the same checkpoint forward.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use stillpoint_app::Store;
use stillpoint_app::audit::{VerifyError, verify_trail};
use stillpoint_app::random::new_token;
use stillpoint_domain::audit::Checkpoint;

use crate::commands::prepare_storage;
use crate::server;
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
    #[must_use]
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            key_path: data_dir.join("audit-checkpoint.key"),
            checkpoint_path: data_dir.join("audit-checkpoint"),
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
        let temporary = self.checkpoint_path.with_extension("new");
        let text = format!(
            "{} {} {}\n",
            checkpoint.sequence, checkpoint.hash, checkpoint.signature
        );
        let _ = std::fs::remove_file(&temporary);
        write_private(&temporary, &text)?;
        std::fs::rename(&temporary, &self.checkpoint_path)
            .with_context(|| format!("cannot replace {}", self.checkpoint_path.display()))
    }

    /// Signs the current head and stores it, unless the stored checkpoint is already at or past
    /// it. Returns the checkpoint now stored.
    pub async fn advance(
        &self,
        store: &dyn Store,
        key: &[u8],
    ) -> anyhow::Result<Option<Checkpoint>> {
        let current = self.read()?;
        let Some((sequence, hash)) = store.audit_head().await? else {
            return Ok(current);
        };
        if current
            .as_ref()
            .is_some_and(|checkpoint| checkpoint.sequence >= sequence)
        {
            return Ok(current);
        }
        let checkpoint = Checkpoint::sign(key, sequence, &hash);
        self.write(&checkpoint)?;
        Ok(Some(checkpoint))
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
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

/// `stillpoint audit verify`: walks the whole trail and checks it against the checkpoint.
pub async fn verify(mut settings: Settings) -> anyhow::Result<()> {
    prepare_storage(&mut settings)?;
    let database = server::open_database(&settings).await?;
    let files = CheckpointFiles::in_data_dir(&settings.data_dir);
    let key = files.key()?;
    let checkpoint = files.read()?;
    let checkpoint_sequence = checkpoint.as_ref().map(|checkpoint| checkpoint.sequence);

    let outcome = verify_trail(&database, checkpoint, &key).await;
    database.close().await;
    match outcome {
        Ok(report) => {
            let head = report.head.map_or(0, |(sequence, _)| sequence);
            println!(
                "The audit trail is intact: {} events, the last is event {head}.",
                report.events
            );
            match checkpoint_sequence {
                Some(sequence) => println!("It matches the signed checkpoint at event {sequence}."),
                None => println!(
                    "No checkpoint exists yet, so events removed from the end could not be detected; \
                     a running server writes one every {} seconds.",
                    CHECKPOINT_INTERVAL.as_secs()
                ),
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
