//! A real SMTP server for tests: Python's aiosmtpd on 127.0.0.1, storing every message it
//! accepts in a Maildir, and Python's `email` package to read them back, both implementations
//! independent of Stillpoint's.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::{PYTHON_VARIABLE, skip_or_fail};

/// A running aiosmtpd, stopped when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    folder: tempfile::TempDir,
    python: String,
}

/// One accepted message, decoded by Python's `email` package.
#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedMail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub list_unsubscribe: Option<String>,
    pub list_unsubscribe_post: Option<String>,
    /// The MIME type of the whole message, such as `multipart/alternative`.
    pub content_type: String,
    pub text: String,
    pub html: String,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// Starts aiosmtpd on a free loopback port; `None` (skipping outside CI, failing under
    /// `CI=true`) when Python with aiosmtpd is missing.
    #[must_use]
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, &[])
    }

    /// Starts aiosmtpd with TLS: STARTTLS required (`implicit` false) or TLS from the first
    /// byte (`implicit` true), with the PEM certificate chain and key at the given paths.
    #[must_use]
    pub fn start_tls(
        test: &str,
        certificate: &std::path::Path,
        key: &std::path::Path,
        implicit: bool,
    ) -> Option<Self> {
        let (cert_flag, key_flag) = if implicit {
            ("--smtpscert", "--smtpskey")
        } else {
            ("--tlscert", "--tlskey")
        };
        Self::start_with(
            test,
            &[
                cert_flag.to_owned(),
                certificate.display().to_string(),
                key_flag.to_owned(),
                key.display().to_string(),
            ],
        )
    }

    fn start_with(test: &str, extra: &[String]) -> Option<Self> {
        let python = std::env::var(PYTHON_VARIABLE).unwrap_or_else(|_| "python3".to_owned());
        let available = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|output| output.status.success());
        if !available {
            skip_or_fail(
                test,
                "Python with the aiosmtpd package (set STILLPOINT_TEST_PYTHON)",
            );
            return None;
        }
        let folder = tempfile::tempdir().expect("temporary folder");
        let port = free_port();
        let maildir = folder.path().join("maildir");
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let sink = Self {
            child,
            port,
            folder,
            python,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not start listening on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(sink)
    }

    fn maildir(&self) -> PathBuf {
        self.folder.path().join("maildir")
    }

    /// Returns every message received so far, oldest first.
    #[must_use]
    pub fn messages(&self) -> Vec<ReceivedMail> {
        const SCRIPT: &str = r#"
import email, email.policy, json, os, sys

def text_of(message, kind):
    part = message.get_body((kind,))
    return part.get_content() if part is not None else ""

def header(message, name):
    value = message[name]
    return None if value is None else str(value)

folder = sys.argv[1]
paths = [os.path.join(folder, sub, name) for sub in ("new", "cur") for name in os.listdir(os.path.join(folder, sub))]
paths.sort(key=os.path.getmtime)
found = []
for path in paths:
    with open(path, "rb") as raw:
        message = email.message_from_binary_file(raw, policy=email.policy.default)
    found.append({
        "from": header(message, "From") or "",
        "to": header(message, "To") or "",
        "subject": header(message, "Subject") or "",
        "message_id": header(message, "Message-ID") or "",
        "list_unsubscribe": header(message, "List-Unsubscribe"),
        "list_unsubscribe_post": header(message, "List-Unsubscribe-Post"),
        "content_type": message.get_content_type(),
        "text": text_of(message, "plain"),
        "html": text_of(message, "html"),
    })
json.dump(found, sys.stdout)
"#;
        if !self.maildir().join("new").exists() {
            return Vec::new();
        }
        let output = Command::new(&self.python)
            .args(["-c", SCRIPT])
            .arg(self.maildir())
            .output()
            .expect("python runs");
        assert!(
            output.status.success(),
            "reading the Maildir failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the messages as JSON")
    }

    /// Counts the messages received so far, without decoding them.
    #[must_use]
    pub fn count(&self) -> usize {
        ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.maildir().join(sub)).ok())
            .map(Iterator::count)
            .sum()
    }

    /// Waits until at least `count` messages arrived, or `limit` passed; returns the count.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> usize {
        let started = Instant::now();
        loop {
            let arrived = self.count();
            if arrived >= count || started.elapsed() > limit {
                return arrived;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Returns a loopback port that is free at the moment.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port()
}
