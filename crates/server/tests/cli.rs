//! The `stillpoint` binary as an operator uses it: flags, settings, errors, serving, shutdown,
//! TLS and the demo.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use stillpoint_test_support::{TestDatabase, postgres_admin_url, skip_or_fail};

const BINARY: &str = env!("CARGO_BIN_EXE_stillpoint");

/// A browser-like client of a running server: it keeps cookies and posts forms with their token.
struct FormClient {
    client: reqwest::Client,
    base: String,
}

impl FormClient {
    fn new(listen: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                // No kept-alive connections, so a client outlives a server restart.
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
            base: format!("http://{listen}"),
        }
    }

    async fn page(&self, path: &str) -> (reqwest::StatusCode, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        (response.status(), response.text().await.expect("body"))
    }

    /// Posts a form with the token of the page at `path`; returns the status and `Location`.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (reqwest::StatusCode, String) {
        let (_, page) = self.page(path).await;
        let token = stillpoint_test_support::hidden_field(&page, "csrf_token").expect("token");
        let mut body = fields.to_vec();
        body.push(("csrf_token", &token));
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .form(&body)
            .send()
            .await
            .expect("request");
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().expect("ascii").to_owned())
            .unwrap_or_default();
        (response.status(), location)
    }
}

fn stillpoint(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .env_remove("STILLPOINT_LISTEN")
        .env_remove("STILLPOINT_DATA_DIR")
        .env_remove("STILLPOINT_DATABASE_URL")
        .output()
        .expect("the binary runs")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Asserts a failed run printed exactly one line to standard error, containing every fragment.
fn assert_one_line_error(output: &Output, code: i32, fragments: &[&str]) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{stderr}");
    for fragment in fragments {
        assert!(
            lines[0].contains(fragment),
            "'{fragment}' missing from: {}",
            lines[0]
        );
    }
}

/// A running `stillpoint` process that is killed when dropped.
struct Running {
    child: Child,
    stdout_lines: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Starts the binary and reads standard output until `ready_line` appears.
    fn start(args: &[&str], ready_line: &str) -> Self {
        let mut child = Command::new(BINARY)
            .args(args)
            .env("STILLPOINT_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut stdout_lines = Vec::new();
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            let mut line = String::new();
            let read = reader.read_line(&mut line).expect("stdout is readable");
            assert!(
                read > 0 && Instant::now() < deadline,
                "stillpoint exited before printing '{ready_line}': {stdout_lines:?}"
            );
            stdout_lines.push(line.trim_end().to_owned());
            if line.contains(ready_line) {
                break;
            }
        }
        Self {
            child,
            stdout_lines,
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    fn wait_for_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("status") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// Sends one HTTP/1.1 request on a new connection and returns the whole response.
fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    response
}

#[test]
fn print_config_prints_a_valid_commented_file() {
    let output = stillpoint(&["print-config"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert!(text.starts_with("# Stillpoint settings."));
    for key in [
        "listen =",
        "data_dir =",
        "[tls]",
        "staff_idle_minutes = 15",
        "patient_idle_minutes = 60",
    ] {
        assert!(text.contains(key), "{key}");
    }

    let folder = tempfile::tempdir().expect("temp");
    let file = folder.path().join("stillpoint.toml");
    std::fs::write(&file, &text).expect("write");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = folder.path().join("data");
    let mut running = Running::start(
        &[
            "serve",
            "--config",
            file.to_str().expect("utf-8"),
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().expect("utf-8"),
        ],
        "listening on",
    );
    assert!(http_get(port, "/readyz").contains("\"ready\""));
    running.signal("TERM");
    assert_eq!(running.wait_for_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn unknown_flag_is_one_line_error() {
    let output = stillpoint(&["serve", "--bogus-flag"]);
    assert_one_line_error(&output, 2, &["--bogus-flag", "stillpoint --help"]);
}

#[test]
fn malformed_database_url_names_value_and_fix() {
    let output = stillpoint(&["serve", "--database-url", "postgres//nohost"]);
    assert_one_line_error(
        &output,
        2,
        &["database_url", "postgres//nohost", "postgres://USER"],
    );

    let output = stillpoint(&["migrate", "--database-url", "mysql://user:hunter22@db/x"]);
    assert_one_line_error(&output, 2, &["mysql"]);
    assert!(
        !stderr_of(&output).contains("hunter22"),
        "the password is never printed"
    );
}

#[test]
fn unwritable_data_folder_names_path_and_fix() {
    let folder = tempfile::tempdir().expect("temp");
    let file = folder.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let inside_file = file.join("data");
    let output = stillpoint(&[
        "serve",
        "--data-dir",
        inside_file.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_one_line_error(
        &output,
        1,
        &[inside_file.to_str().expect("utf-8"), "--data-dir"],
    );
}

#[test]
fn port_in_use_names_address_and_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let folder = tempfile::tempdir().expect("temp");
    let output = stillpoint(&[
        "serve",
        "--listen",
        &address,
        "--data-dir",
        folder.path().to_str().expect("utf-8"),
    ]);
    assert_one_line_error(&output, 1, &[&address, "in use", "--listen"]);
}

#[test]
fn bad_listen_value_and_settings_file_are_rejected() {
    let output = stillpoint(&["serve", "--listen", "localhost"]);
    assert_one_line_error(&output, 2, &["listen", "'localhost'", "127.0.0.1:8080"]);

    let folder = tempfile::tempdir().expect("temp");
    let file = folder.path().join("bad.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").expect("write");
    let output = stillpoint(&["serve", "--config", file.to_str().expect("utf-8")]);
    assert_one_line_error(&output, 2, &["bad.toml", "line 2", "listen_port"]);
}

#[test]
fn environment_sets_the_listen_address() {
    let port = free_port();
    let folder = tempfile::tempdir().expect("temp");
    let mut child = Command::new(BINARY)
        .args([
            "serve",
            "--data-dir",
            folder.path().to_str().expect("utf-8"),
        ])
        .env("STILLPOINT_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reads");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(http_get(port, "/healthz").starts_with("HTTP/1.1 200"));
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn newer_database_is_refused_and_left_unchanged() {
    let database = TestDatabase::sqlite().await;
    database
        .execute_raw(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99991231000000, 'from the future', TRUE, X'00', 0)",
        )
        .await;
    let before = database
        .database
        .read_schema_status()
        .await
        .expect("status");
    let data_dir = database
        .sqlite_path()
        .expect("sqlite")
        .parent()
        .expect("folder")
        .to_path_buf();

    let output = stillpoint(&["migrate", "--data-dir", data_dir.to_str().expect("utf-8")]);
    assert_one_line_error(&output, 1, &["newer Stillpoint", "99991231000000"]);
    let output = stillpoint(&[
        "serve",
        "--data-dir",
        data_dir.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_one_line_error(&output, 1, &["newer Stillpoint"]);

    assert_eq!(
        database
            .database
            .read_schema_status()
            .await
            .expect("status"),
        before
    );
}

/// The number of migrations the binary carries, read from the migrations folder.
fn migration_count() -> usize {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../storage/migrations/sqlite");
    std::fs::read_dir(folder)
        .expect("migrations folder")
        .count()
}

#[test]
fn migrate_applies_then_reports_up_to_date() {
    let folder = tempfile::tempdir().expect("temp");
    let data = folder.path().to_str().expect("utf-8");
    let first = stillpoint(&["migrate", "--data-dir", data]);
    assert!(first.status.success(), "{}", stderr_of(&first));
    assert!(
        String::from_utf8_lossy(&first.stdout)
            .contains(&format!("Applied {} migration(s)", migration_count()))
    );
    assert!(folder.path().join("stillpoint.db").exists());

    let second = stillpoint(&["migrate", "--data-dir", data]);
    assert!(String::from_utf8_lossy(&second.stdout).contains("is up to date"));
}

#[test]
fn postgres_mode_migrates_and_serves() {
    let Some(admin_url) = postgres_admin_url() else {
        skip_or_fail(
            "postgres_mode_migrates_and_serves",
            "STILLPOINT_TEST_POSTGRES_URL",
        );
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let database = runtime
        .block_on(TestDatabase::postgres("postgres_mode_migrates_and_serves"))
        .expect("postgres");
    let url = database.url.connect_string();
    assert!(
        url.starts_with(
            admin_url
                .split('/')
                .take(3)
                .collect::<Vec<_>>()
                .join("/")
                .as_str()
        )
    );

    let migrated = stillpoint(&["migrate", "--database-url", &url]);
    assert!(
        String::from_utf8_lossy(&migrated.stdout).contains("is up to date"),
        "{}",
        stderr_of(&migrated)
    );

    let port = free_port();
    let folder = tempfile::tempdir().expect("temp");
    let listen = format!("127.0.0.1:{port}");
    let mut running = Running::start(
        &[
            "serve",
            "--database-url",
            &url,
            "--listen",
            &listen,
            "--data-dir",
            folder.path().to_str().expect("utf-8"),
        ],
        "listening on",
    );
    assert!(http_get(port, "/readyz").contains("\"ready\""));
    running.signal("TERM");
    assert_eq!(running.wait_for_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn sigterm_finishes_requests_in_flight() {
    let port = free_port();
    let folder = tempfile::tempdir().expect("temp");
    let listen = format!("127.0.0.1:{port}");
    let mut running = Running::start(
        &[
            "serve",
            "--listen",
            &listen,
            "--data-dir",
            folder.path().to_str().expect("utf-8"),
        ],
        "listening on",
    );

    // A form post whose body is still arriving when the signal comes.
    let body = "email=someone%40clinic.example&password=not-the-right-one";
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    write!(
        stream,
        "POST /sign-in HTTP/1.1\r\nHost: {listen}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .expect("writes the first part");
    std::thread::sleep(Duration::from_millis(300));

    running.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "new connections are refused while the request in flight finishes"
    );
    stream
        .write_all(&body.as_bytes()[10..])
        .expect("writes the rest");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    // The form carries no token, so the completed request is rejected with 403, but it gets a
    // response rather than being cut off.
    assert!(
        response.starts_with("HTTP/1.1 403"),
        "the request in flight was answered: {response}"
    );

    assert_eq!(running.wait_for_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn tls_serves_https_with_hsts() {
    let folder = tempfile::tempdir().expect("temp");
    let certificate =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert_path = folder.path().join("cert.pem");
    let key_path = folder.path().join("key.pem");
    std::fs::write(&cert_path, certificate.cert.pem()).expect("write");
    std::fs::write(&key_path, certificate.signing_key.serialize_pem()).expect("write");
    let config = folder.path().join("tls.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert_path = {:?}\nkey_path = {:?}\n",
            cert_path.display().to_string(),
            key_path.display().to_string()
        ),
    )
    .expect("write");

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = folder.path().join("data");
    let mut running = Running::start(
        &[
            "serve",
            "--config",
            config.to_str().expect("utf-8"),
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().expect("utf-8"),
        ],
        "listening on",
    );
    assert!(
        running
            .stdout_lines
            .iter()
            .any(|line| line.contains(&format!("https://127.0.0.1:{port}/")))
    );

    let response = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(https_get(port, certificate.cert.der().clone(), "/healthz"));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=63072000"),
        "{response}"
    );

    running.signal("TERM");
    assert_eq!(running.wait_for_exit(Duration::from_secs(20)), Some(0));
}

async fn https_get(
    port: u16,
    certificate: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    path: &str,
) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, pki_types::ServerName};

    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(certificate).expect("root added");
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let mut tls = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("writes");
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn demo_prints_working_logins_and_cleans_up() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut running = Running::start(&["demo", "--listen", &listen], "Press Ctrl+C");
    let output = running.stdout_lines.join("\n");
    assert!(
        output.contains(&format!("http://127.0.0.1:{port}/")),
        "{output}"
    );

    let password = output
        .split("The password of every account is: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("the password is printed")
        .trim()
        .to_owned();
    let logins: Vec<(String, String)> = running
        .stdout_lines
        .iter()
        .filter_map(|line| {
            line.trim()
                .rsplit_once(' ')
                .filter(|(_, email)| email.contains('@'))
        })
        .map(|(role, email)| (role.trim().to_owned(), email.to_owned()))
        .collect();
    let roles: Vec<&str> = logins.iter().map(|(role, _)| role.as_str()).collect();
    assert_eq!(
        roles,
        [
            "patient",
            "caregiver",
            "facilitator",
            "clinician",
            "program administrator",
            "system administrator"
        ]
    );

    // Staff sign in with the code the demo's verification page shows.
    for (role, email) in &logins {
        let client = FormClient::new(&listen);
        let (status, next) = client
            .post("/sign-in", &[("email", email), ("password", &password)])
            .await;
        assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{role} {email}");
        if next == "/sign-in/verify" {
            let (_, page) = client.page("/sign-in/verify").await;
            let code = page
                .split("the current code is ")
                .nth(1)
                .or_else(|| page.split("el código actual es ").nth(1))
                .map(|rest| rest[..6].to_owned())
                .expect("the demo shows the current code");
            let (status, next) = client.post("/sign-in/verify", &[("code", &code)]).await;
            assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{role} code");
            assert_eq!(next, "/home", "{role} code");
        } else {
            assert_eq!(next, "/home", "{role}");
        }
        assert_eq!(
            client.page("/home").await.0,
            reqwest::StatusCode::OK,
            "{role}"
        );
    }

    let data_folder = output
        .lines()
        .find_map(|line| line.strip_prefix("Data folder: "))
        .and_then(|rest| rest.split(" (").next())
        .expect("the data folder is printed")
        .to_owned();
    assert!(Path::new(&data_folder).join("stillpoint.db").exists());
    running.signal("INT");
    assert_eq!(running.wait_for_exit(Duration::from_secs(20)), Some(0));
    assert!(
        !Path::new(&data_folder).exists(),
        "the temporary demo folder is deleted"
    );
}

#[test]
fn request_logs_name_route_template_not_path() {
    let port = free_port();
    let folder = tempfile::tempdir().expect("temp");
    let log_path = folder.path().join("stderr.log");
    let log_file = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(BINARY)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            folder.path().join("data").to_str().expect("utf-8"),
            "--log-format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reads");

    let site_id = "0191e0a0-1111-7000-8000-000000000000";
    assert!(http_get(port, &format!("/api/v1/sites/{site_id}")).starts_with("HTTP/1.1 401"));
    std::thread::sleep(Duration::from_millis(200));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    let logs = std::fs::read_to_string(&log_path).expect("logs");
    let response_line = logs
        .lines()
        .find(|line| line.contains("\"message\":\"response\""))
        .unwrap_or_else(|| panic!("no response log line in:\n{logs}"));
    let entry: serde_json::Value = serde_json::from_str(response_line).expect("a JSON log line");
    assert_eq!(entry["status"], 401, "{response_line}");
    assert!(entry["latency_ms"].is_number(), "{response_line}");
    assert_eq!(
        entry["span"]["route"], "/api/v1/sites/{site_id}",
        "{response_line}"
    );
    assert_eq!(entry["span"]["method"], "GET", "{response_line}");
    assert!(
        entry["span"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{response_line}"
    );
    assert!(
        !logs.contains(site_id),
        "the raw path with its id is not logged"
    );
}

/// Runs `stillpoint admin create-user` with `password` on standard input.
fn create_admin(data: &str, email: &str, password: &str) -> Output {
    let mut child = Command::new(BINARY)
        .args([
            "admin",
            "create-user",
            "--data-dir",
            data,
            "--email",
            email,
            "--name",
            "Ada Admin",
        ])
        .env_remove("STILLPOINT_ADMIN_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("writes");
    child.wait_with_output().expect("finishes")
}

// The test walks one operator journey in order: create, enrol, lose the phone, reset.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn first_administrator_can_sign_in() {
    let folder = tempfile::tempdir().expect("temp");
    let data = folder.path().join("data");
    let data = data.to_str().expect("utf-8");

    let created = create_admin(data, "ada@clinic.example", "a long enough passphrase");
    assert!(created.status.success(), "{}", stderr_of(&created));
    assert!(
        String::from_utf8_lossy(&created.stdout).contains("Created system administrator Ada Admin")
    );

    let duplicate = create_admin(data, "ada@clinic.example", "another long passphrase");
    assert_one_line_error(&duplicate, 1, &["ada@clinic.example", "already exists"]);
    let short = create_admin(data, "bob@clinic.example", "short");
    assert_one_line_error(&short, 1, &["password", "at least 8"]);
    let common = create_admin(data, "bob@clinic.example", "iloveyou123");
    assert_one_line_error(&common, 1, &["password", "commonly used"]);
    let bad_email = create_admin(data, "not-an-address", "a long enough passphrase");
    assert_one_line_error(&bad_email, 1, &["--email"]);

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut running = Running::start(
        &["serve", "--listen", &listen, "--data-dir", data],
        "listening on",
    );
    // The first sign-in sets up the authenticator app, as every staff account's does.
    let client = FormClient::new(&listen);
    let (_, next) = client
        .post(
            "/sign-in",
            &[
                ("email", "ada@clinic.example"),
                ("password", "a long enough passphrase"),
            ],
        )
        .await;
    assert_eq!(next, "/sign-in/verify");
    let (_, page) = client.page("/sign-in/authenticator").await;
    let key: String = page
        .split("class=\"secret-key\"")
        .nth(1)
        .and_then(|rest| rest.split('>').nth(1))
        .and_then(|rest| rest.split('<').next())
        .expect("the key is shown")
        .replace(' ', "");
    let code = stillpoint_app::mfa::code_at(&key, jiff::Timestamp::now()).expect("code");
    let (status, _) = client
        .post("/sign-in/authenticator", &[("code", &code)])
        .await;
    assert_eq!(
        status,
        reqwest::StatusCode::OK,
        "the recovery codes are shown"
    );
    let me = client
        .client
        .get(format!("http://{listen}/api/v1/me"))
        .send()
        .await
        .expect("request");
    assert_eq!(me.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = me.json().await.expect("json");
    assert_eq!(body["roles"][0]["role"], "system_administrator");
    running.signal("TERM");
    assert_eq!(running.wait_for_exit(Duration::from_secs(20)), Some(0));

    // A lost phone: the reset ends the session and the next sign-in sets up a new authenticator.
    let unknown = stillpoint(&[
        "admin",
        "reset-two-step",
        "--data-dir",
        data,
        "--email",
        "nobody@clinic.example",
    ]);
    assert_one_line_error(&unknown, 1, &["no account", "nobody@clinic.example"]);
    let reset = stillpoint(&[
        "admin",
        "reset-two-step",
        "--data-dir",
        data,
        "--email",
        "ada@clinic.example",
    ]);
    assert!(reset.status.success(), "{}", stderr_of(&reset));
    let mut running = Running::start(
        &["serve", "--listen", &listen, "--data-dir", data],
        "listening on",
    );
    let old_session = client
        .client
        .get(format!("http://{listen}/api/v1/me"))
        .send()
        .await
        .expect("request");
    assert_eq!(old_session.status(), reqwest::StatusCode::UNAUTHORIZED);
    let again = FormClient::new(&listen);
    again
        .post(
            "/sign-in",
            &[
                ("email", "ada@clinic.example"),
                ("password", "a long enough passphrase"),
            ],
        )
        .await;
    let (status, page) = again.page("/sign-in/authenticator").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(page.contains("class=\"secret-key\""), "set-up starts again");
    running.signal("TERM");
    assert_eq!(running.wait_for_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn data_folder_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt as _;

    let folder = tempfile::tempdir().expect("temp");
    let data = folder.path().join("data");
    let output = stillpoint(&["migrate", "--data-dir", data.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", stderr_of(&output));

    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&data), 0o700, "data folder");
    assert_eq!(mode(&data.join("stillpoint.db")), 0o600, "database file");
}

#[test]
fn unreadable_database_names_the_cause_at_once() {
    let folder = tempfile::tempdir().expect("temp");
    std::fs::write(
        folder.path().join("stillpoint.db"),
        "this is not a database",
    )
    .expect("write");

    let started = Instant::now();
    let output = stillpoint(&[
        "migrate",
        "--data-dir",
        folder.path().to_str().expect("utf-8"),
    ]);
    assert_one_line_error(&output, 1, &["stillpoint.db", "not a database"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed after {:?}",
        started.elapsed()
    );
}

#[test]
fn demo_refuses_a_clinic_data_folder() {
    let folder = tempfile::tempdir().expect("temp");
    let data = folder.path().to_str().expect("utf-8");
    let created = create_admin(data, "ada@clinic.example", "a long enough passphrase");
    assert!(created.status.success(), "{}", stderr_of(&created));

    let output = stillpoint(&[
        "demo",
        "--data-dir",
        data,
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    assert_one_line_error(&output, 1, &["not a complete demo clinic", "--data-dir"]);
    assert!(!folder.path().join("demo-seeded").exists());
}

#[tokio::test]
async fn audit_verify_reports_intact_and_broken_trails() {
    let folder = tempfile::tempdir().expect("temp");
    let data = folder.path().join("data");
    let data = data.to_str().expect("utf-8");
    let created = create_admin(data, "ada@clinic.example", "a long enough passphrase");
    assert!(created.status.success(), "{}", stderr_of(&created));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut running = Running::start(
        &["serve", "--listen", &listen, "--data-dir", data],
        "listening on",
    );
    let client = reqwest::Client::new();
    for password in ["wrong password!", "a long enough passphrase"] {
        client
            .post(format!("http://{listen}/api/v1/sessions"))
            .json(&serde_json::json!({"email": "ada@clinic.example", "password": password}))
            .send()
            .await
            .expect("request");
    }
    running.signal("TERM");
    assert_eq!(running.wait_for_exit(Duration::from_secs(20)), Some(0));
    assert!(
        Path::new(data).join("audit-checkpoint").exists(),
        "the server wrote a checkpoint at shutdown"
    );

    let intact = stillpoint(&["audit", "verify", "--data-dir", data]);
    let report = String::from_utf8_lossy(&intact.stdout).into_owned();
    assert!(intact.status.success(), "{}", stderr_of(&intact));
    assert!(
        report.contains("The audit trail is intact: 3 events"),
        "{report}"
    );
    assert!(
        report.contains("matches the signed checkpoint at event 3"),
        "{report}"
    );

    let raw = TestDatabase::from_url(stillpoint_storage::DatabaseUrl::sqlite_in(Path::new(data)));
    raw.execute_raw("DROP TRIGGER audit_events_no_delete").await;
    raw.execute_raw("DELETE FROM audit_events WHERE sequence = 3")
        .await;
    let broken = stillpoint(&["audit", "verify", "--data-dir", data]);
    assert_one_line_error(
        &broken,
        1,
        &["audit trail is broken at event 3", "removed from the end"],
    );
}

#[tokio::test]
async fn server_does_not_sign_over_a_broken_trail() {
    let folder = tempfile::tempdir().expect("temp");
    let data = folder.path().join("data");
    let data = data.to_str().expect("utf-8");
    let created = create_admin(data, "ada@clinic.example", "a long enough passphrase");
    assert!(created.status.success(), "{}", stderr_of(&created));

    let sign_in_once = || async {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut running = Running::start(
            &["serve", "--listen", &listen, "--data-dir", data],
            "listening on",
        );
        reqwest::Client::new()
            .post(format!("http://{listen}/api/v1/sessions"))
            .json(&serde_json::json!({"email": "ada@clinic.example", "password": "a long enough passphrase"}))
            .send()
            .await
            .expect("request");
        running.signal("TERM");
        assert_eq!(running.wait_for_exit(Duration::from_secs(20)), Some(0));
    };
    sign_in_once().await;
    let checkpoint =
        std::fs::read_to_string(Path::new(data).join("audit-checkpoint")).expect("checkpoint");
    // The password was right but no one-time code was sent, so the sign-in and the ending of its
    // half-open session are recorded.
    assert!(checkpoint.starts_with("2 "), "{checkpoint}");

    // Someone removes the event; the next sign-in appends a different event 1.
    let raw = TestDatabase::from_url(stillpoint_storage::DatabaseUrl::sqlite_in(Path::new(data)));
    raw.execute_raw("DROP TRIGGER audit_events_no_delete").await;
    raw.execute_raw("DELETE FROM audit_events").await;
    sign_in_once().await;

    let after =
        std::fs::read_to_string(Path::new(data).join("audit-checkpoint")).expect("checkpoint");
    assert_eq!(
        after, checkpoint,
        "the checkpoint was not moved over the rewritten event"
    );
    let broken = stillpoint(&["audit", "verify", "--data-dir", data]);
    assert_one_line_error(
        &broken,
        1,
        &[
            "audit trail is broken at event 2",
            "differs from the one the checkpoint recorded",
        ],
    );
}

#[test]
fn audit_verify_writes_nothing() {
    let folder = tempfile::tempdir().expect("temp");
    let missing = folder.path().join("no-such-folder");
    let output = stillpoint(&[
        "audit",
        "verify",
        "--data-dir",
        missing.to_str().expect("utf-8"),
    ]);
    assert_one_line_error(&output, 1, &["not found", "--data-dir"]);
    assert!(!missing.exists());

    let empty = folder.path().join("empty");
    std::fs::create_dir(&empty).expect("folder");
    let output = stillpoint(&[
        "audit",
        "verify",
        "--data-dir",
        empty.to_str().expect("utf-8"),
    ]);
    assert_one_line_error(&output, 1, &["no database"]);
    assert_eq!(
        std::fs::read_dir(&empty).expect("folder").count(),
        0,
        "nothing was created"
    );
}

#[test]
fn explicit_sqlite_path_is_used() {
    let folder = tempfile::tempdir().expect("temp");
    let data = folder.path().join("data");
    let elsewhere = folder.path().join("volume");
    std::fs::create_dir(&elsewhere).expect("folder");
    let database = elsewhere.join("clinic.db");
    let url = format!("sqlite://{}", database.display());

    let output = stillpoint(&[
        "migrate",
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--database-url",
        &url,
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(database.exists(), "the database is where the URL says");
    assert!(
        !data.join("stillpoint.db").exists(),
        "not in the data folder"
    );

    let verified = stillpoint(&[
        "audit",
        "verify",
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--database-url",
        &url,
    ]);
    assert!(verified.status.success(), "{}", stderr_of(&verified));
}

/// Kills the server with SIGKILL in the middle of a load of PHQ-9 submissions, then checks
/// that every submission it acknowledged with 201 is stored, and that each one answering item 9
/// above 0 has its safety alert, after a restart.
// One journey from load to kill to restart; splitting it would hide the order of events.
#[allow(clippy::too_many_lines)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_responses_survive_a_kill() {
    use std::sync::{Arc, Mutex};

    use stillpoint_app::ports::MeasureStore as _;

    let data = tempfile::tempdir().expect("data folder");
    let data_dir = data.path().to_str().expect("UTF-8 path").to_owned();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = ["demo", "--listen", &listen, "--data-dir", &data_dir];
    let mut running = Running::start(&args, "Press Ctrl+C");
    let password = running
        .stdout_lines
        .join("\n")
        .split("The password of every account is: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("the password is printed")
        .trim()
        .to_owned();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let base = format!("http://{listen}");
    let signed_in: serde_json::Value = client
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({"email": "patient@demo-clinic.example", "password": password}))
        .send()
        .await
        .expect("sign-in")
        .json()
        .await
        .expect("JSON");
    let token = signed_in["token"].as_str().expect("token").to_owned();
    let me: serde_json::Value = client
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("JSON");
    let patient = me["patient_id"]
        .as_str()
        .expect("the patient's id")
        .to_owned();
    let path = format!("{base}/api/v1/patients/{patient}/responses");

    // Eight clients submit as fast as they can; each 201 is recorded with its client id.
    let acknowledged: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (client, path, token, acknowledged) = (
            client.clone(),
            path.clone(),
            token.clone(),
            acknowledged.clone(),
        );
        workers.push(tokio::spawn(async move {
            for n in 0.. {
                let item9 = u8::from(n % 5 == 0);
                let client_id = format!("w{worker}-{n}");
                let body = serde_json::json!({
                    "instrument": "phq-9",
                    "client_id": client_id,
                    "answers": {"1": 1, "2": 1, "3": 0, "4": 0, "5": 0, "6": 0, "7": 0, "8": 0, "9": item9},
                });
                let Ok(response) = client.post(&path).bearer_auth(&token).json(&body).send().await
                else {
                    return;
                };
                if response.status() == reqwest::StatusCode::CREATED {
                    acknowledged.lock().expect("lock").push((client_id, item9 == 1));
                }
            }
        }));
    }
    let started = Instant::now();
    while acknowledged.lock().expect("lock").len() < 300
        && started.elapsed() < Duration::from_mins(1)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.signal("KILL");
    running.wait_for_exit(Duration::from_secs(10));
    for worker in workers {
        let _ = worker.await;
    }
    drop(running);
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 300,
        "only {} were acknowledged",
        acknowledged.len()
    );

    // The storage, opened afresh, holds every acknowledged response and each one's alert.
    {
        let url = stillpoint_storage::DatabaseUrl::sqlite_in(data.path());
        let database = stillpoint_storage::Database::connect(&url)
            .await
            .expect("opens");
        let stored = database
            .responses_of_patient(patient.parse().expect("uuid"))
            .await
            .expect("responses");
        for (client_id, item9) in &acknowledged {
            let response = stored
                .iter()
                .find(|response| &response.client_id == client_id)
                .unwrap_or_else(|| panic!("acknowledged response {client_id} was lost"));
            if *item9 {
                let alert = response
                    .alert
                    .unwrap_or_else(|| panic!("{client_id} lost its alert"));
                let alert = database
                    .get_alert(alert)
                    .await
                    .expect("the alert is stored");
                assert_eq!(alert.rules, ["phq9_item9"]);
            } else {
                assert!(response.alert.is_none(), "{client_id}");
            }
        }
    }

    // The restarted server serves them too.
    let _restarted = Running::start(&args, "Press Ctrl+C");
    let served: serde_json::Value = client
        .get(&path)
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    let served = served.as_array().expect("a list").len();
    assert!(
        served >= acknowledged.len(),
        "{served} served, {} acknowledged",
        acknowledged.len()
    );
}
