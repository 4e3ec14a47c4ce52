//! Headless Chromium driven through ChromeDriver (WebDriver), with axe-core accessibility checks.
//!
//! Uses Debian's `chromium` and `chromium-driver` packages and the axe-core copy that `npm ci`
//! installs into `node_modules/` at the repository root. Chromium only ever loads pages from the
//! app under test on 127.0.0.1, and its background networking is switched off.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::skip_or_fail;

/// Widths the pages must work at: a small phone and a desktop window.
pub const PHONE_WIDTH: u32 = 360;
pub const DESKTOP_WIDTH: u32 = 1280;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One accessibility rule violation reported by axe-core.
#[derive(Debug, Clone)]
pub struct AxeViolation {
    pub rule: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    pub help: String,
    /// CSS selectors of the offending elements.
    pub targets: Vec<String>,
}

/// A headless browser session; call [`Browser::close`] at the end of the test.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn axe_script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/axe-core/axe.min.js")
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium, or returns `None` (skipping outside CI,
    /// failing under `CI=true`) when either is not installed.
    pub async fn start(test: &str) -> Option<Self> {
        Self::start_with_cameras(test, 1).await
    }

    /// Starts a browser as [`Browser::start`] does, whose synthetic devices are a microphone
    /// and no camera, like a computer without a webcam.
    pub async fn start_without_camera(test: &str) -> Option<Self> {
        Self::start_with_cameras(test, 0).await
    }

    async fn start_with_cameras(test: &str, cameras: u32) -> Option<Self> {
        for (path, package) in [
            (CHROMIUM, "Debian package chromium"),
            (CHROMEDRIVER, "Debian package chromium-driver"),
        ] {
            if !Path::new(path).exists() {
                skip_or_fail(test, package);
                return None;
            }
        }
        if !axe_script_path().exists() {
            skip_or_fail(test, "axe-core (run `npm ci` at the repository root)");
            return None;
        }

        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("a profile folder can be created");
        let client = connect_with_retry(port, &capabilities(profile.path(), cameras)).await;

        Some(Self {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Resizes the window so the page's layout viewport is `width` CSS pixels wide.
    pub async fn set_width(&self, width: u32) {
        self.client
            .set_window_size(width, 900)
            .await
            .expect("window resizes");
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|error| panic!("cannot open {url}: {error}"));
    }

    /// Runs axe-core's WCAG 2.0/2.1 A and AA rules on the current page and returns every
    /// violation.
    pub async fn axe(&self) -> Vec<AxeViolation> {
        let script = std::fs::read_to_string(axe_script_path()).expect("axe-core is installed");
        self.client
            .execute(&script, vec![])
            .await
            .expect("axe-core loads into the page");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})\
                   .then(r => done(r.violations.map(v => ({rule: v.id, impact: v.impact || '', help: v.help,\
                      targets: v.nodes.map(n => n.target.join(' '))}))))\
                   .catch(e => done([{rule: 'axe-error', impact: 'critical', help: String(e), targets: []}]));",
                vec![],
            )
            .await
            .expect("axe-core runs");

        result
            .as_array()
            .map(|violations| violations.iter().map(violation_from_json).collect())
            .unwrap_or_default()
    }

    /// The violations of impact `serious` or `critical`, which the pages must not have.
    pub async fn serious_axe_violations(&self) -> Vec<AxeViolation> {
        self.axe()
            .await
            .into_iter()
            .filter(|violation| matches!(violation.impact.as_str(), "serious" | "critical"))
            .collect()
    }

    /// Evaluates a JavaScript expression in the page.
    pub async fn eval(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), vec![])
            .await
            .unwrap_or_else(|error| panic!("cannot evaluate {expression}: {error}"))
    }

    /// Cuts the page off the network, or connects it again, with Chromium's network emulation
    /// (ChromeDriver's `chromium/network_conditions` command). The app keeps running.
    pub async fn set_offline(&self, offline: bool) {
        self.client
            .issue_cmd(NetworkConditions { offline })
            .await
            .unwrap_or_else(|error| panic!("cannot set the network to offline={offline}: {error}"));
    }

    pub async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

/// ChromeDriver's extension command for network emulation.
#[derive(Debug)]
struct NetworkConditions {
    offline: bool,
}

impl fantoccini::wd::WebDriverCompatibleCommand for NetworkConditions {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/chromium/network_conditions",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (axum::http::Method, Option<String>) {
        let conditions = json!({
            "network_conditions": {
                "offline": self.offline,
                "latency": 0,
                "download_throughput": -1,
                "upload_throughput": -1,
            }
        });
        (axum::http::Method::POST, Some(conditions.to_string()))
    }
}

fn violation_from_json(value: &Value) -> AxeViolation {
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    AxeViolation {
        rule: text("rule"),
        impact: text("impact"),
        help: text("help"),
        targets: value
            .get("targets")
            .and_then(Value::as_array)
            .map(|targets| {
                targets
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn capabilities(profile: &Path, cameras: u32) -> Capabilities {
    let options = json!({
        "binary": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            // The player test starts a recording from a script, as a click would.
            "--autoplay-policy=no-user-gesture-required",
            // The live session tests use Chromium's synthetic camera and microphone, and connect
            // to the embedded SFU on 127.0.0.1.
            "--use-fake-ui-for-media-stream",
            // Chromium's `device-count` option sets how many synthetic cameras there are.
            format!("--use-fake-device-for-media-stream=device-count={cameras}"),
            "--allow-loopback-in-peer-connection",
            format!("--user-data-dir={}", profile.display()),
        ]
    });
    let mut capabilities = Capabilities::new();
    capabilities.insert("goog:chromeOptions".to_owned(), options);
    capabilities
}

async fn connect_with_retry(port: u16, capabilities: &Capabilities) -> Client {
    let url = format!("http://127.0.0.1:{port}");
    let mut last_error = String::new();
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(error) => last_error = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("chromedriver on port {port} did not accept a session: {last_error}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port exists on 127.0.0.1")
}
