//! The application served on 127.0.0.1 port 0 with a fresh database, for integration tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use stillpoint_app::Clock;
use stillpoint_app::demo::{self, DEMO_PASSWORD, DemoClinic};
use stillpoint_app::jobs::{StepOutcome, Worker};
use stillpoint_app::notify::{Mailer, Notifier, SmsSender};
use stillpoint_domain::jobs::RetryPolicy;
use stillpoint_notify::CatalogComposer;
use stillpoint_storage::Dialect;
use stillpoint_web::i18n::Catalogs;
use stillpoint_web::{AppState, WebConfig};
use tokio::sync::oneshot;

use crate::TestDatabase;

/// A clock tests can set and advance.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    #[must_use]
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.0.lock().expect("clock lock");
        *now = now.saturating_add(by).expect("the clock stays in range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// A running app. The server stops when this value is dropped.
#[derive(Debug)]
pub struct TestApp {
    pub address: SocketAddr,
    pub database: TestDatabase,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    /// The demo clinic the database was seeded with, when it was.
    pub demo: Option<DemoClinic>,
    _shutdown: oneshot::Sender<()>,
}

impl TestApp {
    /// Builds the app's notification channels, with `mailer` and `sms` (or none), on the app's test
    /// clock. The first call also hands them to the app's SMS status callback.
    #[must_use]
    pub fn notifier(
        &self,
        mailer: Option<Arc<dyn Mailer>>,
        sms: Option<Arc<dyn SmsSender>>,
    ) -> Arc<Notifier> {
        let notifier = Arc::new(Notifier {
            store: self.state.store.clone(),
            clock: self.clock.clone(),
            composer: Arc::new(CatalogComposer::new(
                self.state.catalogs.clone(),
                "Stillpoint Test Clinic",
            )),
            mailer,
            sms,
            measures: self.state.measures.clone(),
            sealer: Arc::new(self.state.config.secrets.clone()),
            public_url: self.url(""),
        });
        let _ = self.state.notifier.set(notifier.clone());
        notifier
    }

    /// Builds a worker that runs every job kind through `notifier`, retrying after the default
    /// backoff.
    #[must_use]
    pub fn worker(&self, notifier: &Arc<Notifier>) -> Worker {
        stillpoint_app::notify::worker(
            "test-worker",
            notifier,
            RetryPolicy::default(),
            stillpoint_app::jobs::DEFAULT_LEASE,
        )
    }

    /// Steps `worker` until no job is due at the test clock's time; returns what each step did.
    pub async fn run_due_jobs(&self, worker: &Worker) -> Vec<StepOutcome> {
        let mut outcomes = Vec::new();
        while let Some(outcome) = worker
            .step(self.state.store.as_ref(), self.clock.as_ref(), 0.0)
            .await
            .expect("worker step")
        {
            outcomes.push(outcome);
        }
        outcomes
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A client with a cookie store, as a browser would keep the session cookie.
    #[must_use]
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client builds")
    }

    /// Fetches the hidden form token the start page shows `client`, which also gives the
    /// client its form seed cookie when it has none.
    pub async fn form_token(&self, client: &reqwest::Client) -> String {
        let page = client
            .get(self.url("/"))
            .send()
            .await
            .expect("the start page responds")
            .text()
            .await
            .expect("the start page has a body");
        hidden_field(&page, "csrf_token").expect("the start page has a form token")
    }

    /// Posts an HTML form as a browser would: with the form token of `client`'s pages.
    pub async fn post_form(
        &self,
        client: &reqwest::Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let token = self.form_token(client).await;
        let mut body: Vec<(&str, &str)> = fields.to_vec();
        body.push(("csrf_token", &token));
        client
            .post(self.url(path))
            .form(&body)
            .send()
            .await
            .expect("the form request completes")
    }
}

impl TestApp {
    /// Returns the demo e-mail address of `local`, such as `clinician`.
    #[must_use]
    pub fn demo_email(local: &str) -> String {
        format!("{local}@demo-clinic.example")
    }

    /// Returns the current code of a demo staff account's authenticator. The clock first moves
    /// on by one 30-second step, because each step's code is accepted once per account.
    #[must_use]
    pub fn next_one_time_code(&self, email: &str) -> Option<String> {
        let demo = self.demo.as_ref()?;
        demo.one_time_code(email, self.clock.now())?;
        self.clock.advance(SignedDuration::from_secs(30));
        demo.one_time_code(email, self.clock.now())
    }

    /// Opens a fully signed-in session for `account` directly in storage and returns its bearer
    /// token, for accounts a test created itself.
    pub async fn session_token_for(&self, account: stillpoint_domain::AccountId) -> String {
        use stillpoint_app::ports::SessionStore as _;

        let token = stillpoint_app::random::new_token();
        let now = self.clock.now();
        let session = stillpoint_app::ports::SignInSession {
            token_digest: stillpoint_app::random::token_digest(&token),
            account_id: account,
            created_at: now,
            last_seen_at: now,
            expires_at: now + SignedDuration::from_hours(12),
            second_factor_at: Some(now),
        };
        self.database
            .database
            .insert_session(&session)
            .await
            .expect("the session is stored");
        token
    }

    /// Records that `patient` agreed on paper to every required consent document in English,
    /// entered by `recorded_by`, so the pathway's consent checks pass.
    pub async fn record_paper_consents(
        &self,
        patient: stillpoint_domain::PatientId,
        recorded_by: stillpoint_domain::AccountId,
    ) {
        use stillpoint_app::ports::ConsentStore as _;

        let english = stillpoint_domain::Language::english();
        for id in self.state.consents.ids() {
            let Some(document) = self.state.consents.document(id, &english) else {
                continue;
            };
            let record = stillpoint_domain::consent::ConsentRecord {
                patient_id: patient,
                document_id: document.id.clone(),
                version: document.version,
                language: document.language.clone(),
                content_hash: document.content_hash.clone(),
                signed_name: "Paper form".to_owned(),
                signed_at: self.clock.now(),
                signer: recorded_by,
                withdrawn_at: None,
                withdrawal_reason: None,
            };
            self.database
                .database
                .insert_consent_record(&record)
                .await
                .expect("the consent is stored");
        }
    }

    /// Creates an account with `roles` and returns a signed-in bearer token for it.
    pub async fn account_with_roles(
        &self,
        local: &str,
        roles: Vec<stillpoint_domain::RoleAssignment>,
    ) -> (stillpoint_domain::Account, String) {
        use stillpoint_app::ports::AccountStore as _;

        let account = stillpoint_domain::Account {
            id: stillpoint_domain::AccountId::from_uuid(uuid::Uuid::now_v7()),
            email: stillpoint_domain::EmailAddress::parse(&Self::demo_email(local))
                .expect("valid address"),
            display_name: local.to_owned(),
            language: stillpoint_domain::Language::english(),
            time_zone: stillpoint_domain::TimeZoneName::parse("America/Chicago")
                .expect("valid zone"),
            preferences: stillpoint_domain::DisplayPreferences::default(),
            roles,
        };
        self.database
            .database
            .insert_account(&account, "not-a-usable-hash")
            .await
            .expect("the account is stored");
        let token = self.session_token_for(account.id).await;
        (account, token)
    }

    /// Signs a demo account in through the API, with its one-time code for staff, and returns
    /// the bearer token.
    pub async fn api_token(&self, local: &str) -> String {
        let email = Self::demo_email(local);
        let mut body = serde_json::json!({"email": email, "password": DEMO_PASSWORD});
        if let Some(code) = self.next_one_time_code(&email) {
            body["one_time_code"] = serde_json::Value::String(code);
        }
        let response = self
            .client()
            .post(self.url("/api/v1/sessions"))
            .json(&body)
            .send()
            .await
            .expect("the sign-in request completes");
        assert_eq!(
            response.status(),
            reqwest::StatusCode::CREATED,
            "{local} signs in"
        );
        let body: serde_json::Value = response.json().await.expect("JSON body");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// Signs a demo account in with the HTML forms, entering the one-time code for staff, and
    /// returns a client that keeps the cookies.
    pub async fn browser_session(&self, local: &str) -> reqwest::Client {
        let client = self.client();
        let email = Self::demo_email(local);
        let response = self
            .post_form(
                &client,
                "/sign-in",
                &[("email", &email), ("password", DEMO_PASSWORD)],
            )
            .await;
        assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER, "{local}");
        let next = response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
        if next == "/sign-in/verify" {
            let code = self
                .next_one_time_code(&email)
                .expect("a staff account has a code");
            let verified = self
                .post_form(&client, "/sign-in/verify", &[("code", &code)])
                .await;
            assert_eq!(
                verified.status(),
                reqwest::StatusCode::SEE_OTHER,
                "{local} code"
            );
            assert_eq!(verified.headers()["location"], "/home");
        } else {
            assert_eq!(next, "/home");
        }
        client
    }
}

/// Extracts the value of the hidden input `name` from an HTML page.
#[must_use]
pub fn hidden_field(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

/// What the spawned app starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    Empty,
    /// The demo clinic from the same generator `stillpoint demo` uses.
    DemoClinic,
}

/// Seed of the demo clinic in tests, so expectations can name its people.
pub const TEST_DEMO_SEED: u64 = 2026;

/// Serves the app on a fresh database of `dialect`, or returns `None` when that dialect is not
/// available (see [`TestDatabase::of`]).
pub async fn spawn_app(dialect: Dialect, seed: Seed, test: &str) -> Option<TestApp> {
    spawn_app_with_live(dialect, seed, test, test_live_state()).await
}

/// Starts the app as [`spawn_app`] does, with the given live session settings.
pub async fn spawn_app_with_live(
    dialect: Dialect,
    seed: Seed,
    test: &str,
    live: stillpoint_web::live::LiveState,
) -> Option<TestApp> {
    let database = TestDatabase::of(dialect, test).await?;
    let start: Timestamp = "2026-12-04T15:00:00Z".parse().expect("valid instant");
    let clock = Arc::new(ManualClock::new(start));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port 0 binds");
    let address = listener.local_addr().expect("bound address");
    let config = WebConfig {
        public_url: format!("http://{address}"),
        ..WebConfig::default()
    };
    let curricula = stillpoint_web::curriculum_files::load().expect("bundled curricula");
    stillpoint_app::curricula::install_bundled(&database.database, clock.as_ref(), &curricula)
        .await
        .expect("the bundled curricula install");
    let demo = match seed {
        Seed::Empty => None,
        Seed::DemoClinic => {
            let clinic = demo::generate(
                TEST_DEMO_SEED,
                start.to_zoned_datetime(jiff::tz::TimeZone::UTC).date(),
            );
            let consents =
                stillpoint_web::consent_files::load(None).expect("bundled consent documents");
            demo::seed(
                &database.database,
                &config.secrets,
                &consents,
                &curricula,
                &stillpoint_web::measure_files::load().expect("bundled instruments"),
                &clinic,
                start,
            )
            .await
            .expect("the demo clinic seeds");
            stillpoint_app::library::add_bundled(
                &database.database,
                clock.as_ref(),
                &stillpoint_web::recording_files::load().expect("bundled recordings"),
            )
            .await
            .expect("the demo recordings are added");
            Some(clinic)
        }
    };

    let catalogs = Catalogs::load(None).expect("bundled catalogues load");
    let state = AppState::new(
        Arc::new(database.database.clone()),
        clock.clone(),
        catalogs,
        config,
    )
    .with_live(live);
    let app = stillpoint_web::router(state.clone());

    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });

    Some(TestApp {
        address,
        database,
        clock,
        state,
        demo,
        _shutdown: shutdown,
    })
}

/// Live session settings with an embedded SFU on a free UDP port of 127.0.0.1.
#[must_use]
pub fn test_live_state() -> stillpoint_web::live::LiveState {
    let sfu = stillpoint_video::Sfu::start(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .expect("the embedded SFU binds a UDP port on 127.0.0.1");
    stillpoint_web::live::LiveState {
        hub: Arc::new(stillpoint_video::Hub::new(Some(sfu))),
        ..stillpoint_web::live::LiveState::default()
    }
}
