//! Every page in headless Chromium at phone and desktop widths must have no serious or critical
//! axe-core violations, no sideways scrolling, 18 px body text and 44 px touch targets. The
//! sign-in and language journeys are done with the real forms.

use fantoccini::Locator;
use serde_json::Value;
use stillpoint_app::demo::DEMO_PASSWORD;
use stillpoint_app::ports::ProgramStore as _;
use stillpoint_storage::Dialect;
use stillpoint_test_support::browser::{DESKTOP_WIDTH, PHONE_WIDTH};
use stillpoint_test_support::{Browser, Seed, TestApp, spawn_app};

/// Controls smaller than 44 × 44 CSS pixels, excluding the skip link (off screen until focused)
/// and links inside running text, which WCAG 2.5.8 exempts.
const SMALL_TARGETS: &str = "[...document.querySelectorAll('nav a, nav button, button, input:not([type=hidden]), select, a.button, a.brand')]\
    .filter(e => !e.classList.contains('skip-link'))\
    .map(e => [e, e.getBoundingClientRect()])\
    .filter(([e, r]) => r.width > 0 && (r.height < 44 || r.width < 44))\
    .map(([e, r]) => e.outerHTML.slice(0, 80) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height))";

/// Waits up to five seconds for the page's main heading to read `expected`, because a click
/// that submits a form returns before the next page has loaded.
async fn wait_for_heading(browser: &Browser, expected: &str) {
    let mut last = Value::Null;
    for _ in 0..50 {
        last = browser.eval("document.querySelector('h1') ? document.querySelector('h1').textContent.trim() : null").await;
        if last == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the heading is {last}, expected {expected}");
}

async fn sign_in(browser: &Browser, app: &TestApp, local: &str, password: &str) {
    browser
        .client
        .delete_all_cookies()
        .await
        .expect("cookies cleared");
    browser.goto(&app.url("/sign-in")).await;
    let email = browser
        .client
        .find(Locator::Id("email"))
        .await
        .expect("e-mail field");
    email
        .send_keys(&format!("{local}@demo-clinic.example"))
        .await
        .expect("typed");
    let field = browser
        .client
        .find(Locator::Id("password"))
        .await
        .expect("password field");
    field.send_keys(password).await.expect("typed");
    browser
        .client
        .find(Locator::Css("main button[type=submit]"))
        .await
        .expect("submit button")
        .click()
        .await
        .expect("clicked");
}

/// Types a one-time code into the code page and submits it.
async fn submit_code(browser: &Browser, code: &str) {
    let field = browser
        .client
        .find(Locator::Id("code"))
        .await
        .expect("code field");
    field.send_keys(code).await.expect("typed");
    browser
        .client
        .find(Locator::Css("main form.card button[type=submit]"))
        .await
        .expect("submit button")
        .click()
        .await
        .expect("clicked");
}

/// Checks the page now loaded at both widths and returns the problems found.
async fn check_page(browser: &Browser, label: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for width in [PHONE_WIDTH, DESKTOP_WIDTH] {
        browser.set_width(width).await;
        let viewport = browser
            .eval("window.innerWidth")
            .await
            .as_u64()
            .unwrap_or_default();
        for violation in browser.serious_axe_violations().await {
            problems.push(format!(
                "{label} at {width}px: axe {} ({}) {}: {:?}",
                violation.rule, violation.impact, violation.help, violation.targets
            ));
        }
        let scroll_width = browser
            .eval("document.documentElement.scrollWidth")
            .await
            .as_u64()
            .unwrap_or_default();
        if scroll_width > viewport {
            problems.push(format!(
                "{label} at {width}px: page is {scroll_width}px wide in a {viewport}px viewport"
            ));
        }
        let font_size = browser
            .eval("parseFloat(getComputedStyle(document.body).fontSize)")
            .await
            .as_f64()
            .unwrap_or_default();
        if font_size < 18.0 {
            problems.push(format!("{label} at {width}px: body text is {font_size}px"));
        }
        if let Value::Array(small) = browser.eval(SMALL_TARGETS).await {
            for target in small {
                problems.push(format!("{label} at {width}px: small touch target {target}"));
            }
        }
    }
    problems
}

#[tokio::test]
async fn every_page_passes_accessibility_checks_on_sqlite() {
    every_page_passes_accessibility_checks(Dialect::Sqlite).await;
}

#[tokio::test]
async fn every_page_passes_accessibility_checks_on_postgres() {
    every_page_passes_accessibility_checks(Dialect::Postgres).await;
}

#[allow(clippy::too_many_lines)] // One journey, read top to bottom.
async fn every_page_passes_accessibility_checks(dialect: Dialect) {
    let test = format!("every_page_passes_accessibility_checks ({dialect})");
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "browser").await else {
        return;
    };
    let Some(browser) = Browser::start(&test).await else {
        return;
    };
    let mut problems = Vec::new();

    for (label, path) in [
        ("start", "/"),
        ("sign-in", "/sign-in"),
        ("not found", "/no-such-page"),
        ("sign-in required", "/home"),
    ] {
        browser
            .client
            .delete_all_cookies()
            .await
            .expect("cookies cleared");
        browser.goto(&app.url(path)).await;
        problems.extend(check_page(&browser, label).await);
    }

    sign_in(&browser, &app, "clinician", "wrong-password").await;
    let error = browser
        .client
        .wait()
        .for_element(Locator::Id("sign-in-error"))
        .await
        .expect("error message shown");
    assert!(error.text().await.expect("text").contains("incorrect"));
    problems.extend(check_page(&browser, "sign-in with error").await);

    let demo = app.demo.as_ref().expect("demo");
    let own_record = format!("/patients/{}", demo.patients[0].id);
    let record_without_account = format!(
        "/patients/{}",
        demo.patients
            .iter()
            .find(|patient| patient.site_id == demo.sites[0].id && patient.account_id.is_none())
            .expect("a NORTH patient without account")
            .id
    );
    let north = &demo.cohorts[0].0.id;
    let south = &demo.cohorts[1].0.id;
    let store = &app.database.database;
    let held_session = store
        .list_cohort_sessions(*north)
        .await
        .expect("sessions")
        .into_iter()
        .rev()
        .find(|session| session.planned.start <= stillpoint_app::Clock::now(app.clock.as_ref()))
        .expect("a held session");
    let north_page = format!("/cohorts/{north}");
    let roll_call_page = format!("/cohorts/{north}/sessions/{}", held_session.id);
    let upcoming_session = store
        .list_cohort_sessions(*south)
        .await
        .expect("sessions")
        .into_iter()
        .next()
        .expect("the orientation");
    let upcoming_page = format!("/cohorts/{south}/sessions/{}", upcoming_session.id);
    let unassigned = demo
        .patients
        .iter()
        .find(|patient| patient.site_id == demo.sites[0].id && !demo.is_cohort_member(patient.id))
        .expect("a NORTH patient outside the cohorts")
        .id;
    let screening_page = format!("/patients/{unassigned}/screening");
    let outcomes_page = format!("{own_record}/measures");
    let safety_page = format!("/sites/{}/safety", demo.sites[0].id);
    let admin_account = demo
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "program.admin@demo-clinic.example")
        .expect("program administrator");
    stillpoint_app::curricula::copy(
        store,
        app.clock.as_ref(),
        &stillpoint_app::audit::AuditContext::for_account(admin_account, None),
        admin_account,
        stillpoint_app::curricula::CopyRequest {
            from: (
                &stillpoint_domain::curriculum::CurriculumId::parse("mbsr-gentle").expect("id"),
                1,
            ),
            new_id: "riverbend-gentle",
            title: (
                &stillpoint_domain::Language::english(),
                "Riverbend gentle group",
            ),
            site: Some(demo.sites[0].id),
        },
    )
    .await
    .expect("a draft copy");
    // One reminder goes out in-app, so the delivery log has a line and the patient a notice.
    let lucia = demo
        .accounts
        .iter()
        .find(|account| account.email.as_str() == TestApp::demo_email("patient"))
        .expect("the demo patient")
        .id;
    let lucia_patient = stillpoint_app::ports::PatientStore::find_patient_for_account(store, lucia)
        .await
        .expect("patient");
    let lucia_cohort =
        stillpoint_app::ports::EnrolmentStore::find_enrolment(store, lucia_patient.id)
            .await
            .expect("pathway")
            .and_then(|state| state.cohort())
            .expect("in a cohort");
    let next_session = store
        .list_cohort_sessions(lucia_cohort)
        .await
        .expect("sessions")
        .into_iter()
        .find(|session| session.planned.start > stillpoint_app::Clock::now(app.clock.as_ref()))
        .expect("an upcoming session");
    let room_page = format!("/sessions/{}/room", next_session.id);
    let reminder = stillpoint_app::notify::notify_job(
        stillpoint_domain::notify::MessageKind::SessionReminder,
        lucia,
        stillpoint_app::notify::Subject::Session {
            session: next_session.id,
            start: next_session.planned.start,
            lead_minutes: 60,
        },
        "browser-test-reminder".to_owned(),
        stillpoint_app::Clock::now(app.clock.as_ref()),
    )
    .expect("job");
    stillpoint_app::ports::JobStore::enqueue(store, &reminder, reminder.due_at)
        .await
        .expect("queued");
    let notifier = app.notifier(None, None);
    app.run_due_jobs(&app.worker(&notifier)).await;
    let unsubscribe_page = format!(
        "/unsubscribe?account={lucia}&kind=session_reminder&token={}",
        stillpoint_app::notify::unsubscribe_token(
            &app.state.config.secrets,
            lucia,
            stillpoint_domain::notify::MessageKind::SessionReminder
        )
    );
    let recording_page = format!(
        "/practice/recordings/{}",
        stillpoint_app::ports::PracticeStore::list_recordings(store)
            .await
            .expect("recordings")
            .first()
            .expect("a bundled recording")
            .id
    );
    let entry_page = format!(
        "/practice/entries/{}",
        stillpoint_app::ports::PracticeStore::practice_entries_of(
            store,
            lucia_patient.id,
            jiff::civil::date(2000, 1, 1)
        )
        .await
        .expect("entries")
        .first()
        .expect("a demo diary entry")
        .id
    );
    let practice_overview = format!("/cohorts/{north}/practice");
    for (local, pages) in [
        (
            "patient",
            vec![
                ("/account/notifications", "reminder settings"),
                ("/practice", "home practice"),
                ("/practice/timer", "meditation timer"),
                (recording_page.as_str(), "recording player"),
                (entry_page.as_str(), "diary entry"),
                ("/notifications", "patient notifications"),
                (unsubscribe_page.as_str(), "one-click unsubscribe"),
                ("/program", "patient program"),
                (room_page.as_str(), "session room before it opens"),
                ("/tech-check", "technology check"),
                ("/account/calendar", "calendar feed"),
                ("/home", "patient home"),
                ("/sites", "forbidden page"),
                ("/record-access", "record access report"),
                ("/sharing", "sharing with caregivers"),
                ("/consent", "consent documents"),
                ("/account", "patient profile"),
                ("/consent/practice-risks", "consent document"),
                ("/measures", "check-ins due"),
                ("/measures/phq-9", "PHQ-9 questionnaire"),
                (
                    "/measures/cssrs-screener",
                    "questionnaire with skipped items",
                ),
                ("/measures/pain-rating", "0-10 rating"),
                ("/progress", "progress charts"),
                ("/help", "crisis resources"),
            ],
        ),
        (
            "caregiver",
            vec![
                ("/home", "caregiver home"),
                (own_record.as_str(), "shared record"),
            ],
        ),
        (
            "clinician",
            vec![
                ("/home", "clinician home"),
                ("/account", "staff profile"),
                ("/patients", "patient list"),
                (own_record.as_str(), "patient record"),
                (
                    record_without_account.as_str(),
                    "record with invitation form",
                ),
                ("/patients/new", "referral form"),
                (screening_page.as_str(), "screening form"),
                ("/cohorts", "cohort list"),
                (north_page.as_str(), "cohort with roster"),
                ("/alerts", "alert inbox"),
                ("/notifications", "notifications"),
                (outcomes_page.as_str(), "patient outcomes timeline"),
            ],
        ),
        (
            "facilitator",
            vec![
                (roll_call_page.as_str(), "session plan with roll call"),
                (room_page.as_str(), "session room for staff before it opens"),
                (practice_overview.as_str(), "cohort practice overview"),
                ("/library", "practice library"),
                ("/account/notifications", "facilitator reminder settings"),
                ("/curricula", "curriculum library"),
                ("/curricula/mbsr-online/1", "curriculum"),
            ],
        ),
        (
            "clinician.south",
            vec![(own_record.as_str(), "break-glass request")],
        ),
        ("admin", vec![("/jobs", "delivery log")]),
        (
            "program.admin",
            vec![
                ("/home", "administrator home"),
                ("/sites", "sites"),
                ("/instruments", "measures library"),
                (safety_page.as_str(), "site safety settings"),
                ("/audit", "audit trail"),
                ("/staff", "staff"),
                ("/cohorts/new", "cohort builder"),
                (upcoming_page.as_str(), "session with reschedule forms"),
                ("/curricula", "curriculum library with copy forms"),
                ("/curricula/riverbend-gentle/1", "curriculum draft editor"),
                (
                    "/curricula/riverbend-gentle/1/sessions/2",
                    "session plan editor",
                ),
            ],
        ),
    ] {
        sign_in(&browser, &app, local, DEMO_PASSWORD).await;
        if !["patient", "caregiver"].contains(&local) {
            browser
                .client
                .wait()
                .for_url(&url::Url::parse(&app.url("/sign-in/verify")).expect("url"))
                .await
                .expect("asked for a code");
            if local == "clinician" {
                problems.extend(check_page(&browser, "one-time code").await);
            }
            let email = format!("{local}@demo-clinic.example");
            let code = app.next_one_time_code(&email).expect("staff code");
            submit_code(&browser, &code).await;
        }
        browser
            .client
            .wait()
            .for_url(&url::Url::parse(&app.url("/home")).expect("url"))
            .await
            .expect("signed in");
        for (path, label) in pages {
            browser.goto(&app.url(path)).await;
            problems.extend(check_page(&browser, label).await);
        }
    }

    problems.extend(invitation_pages(&browser, &app).await);
    problems.extend(authenticator_setup_pages(&browser, &app).await);
    problems.extend(lapsed_program_page(&browser, &app).await);

    browser.close().await;
    assert!(
        problems.is_empty(),
        "accessibility problems:\n{}",
        problems.join("\n")
    );
}

/// Marks the demo patient lapsed and opens their program page, which invites them back.
async fn lapsed_program_page(browser: &Browser, app: &TestApp) -> Vec<String> {
    use stillpoint_app::ports::EnrolmentStore as _;

    let demo = app.demo.as_ref().expect("demo");
    let lucia = demo.patients[0].id;
    let store = &app.database.database;
    let current = store.find_enrolment(lucia).await.expect("state");
    let cohort = demo.cohorts[0].0.id;
    store
        .record_transition(
            lucia,
            current.as_ref(),
            &stillpoint_domain::enrolment::EnrolmentState::Lapsed { cohort },
            None,
            Some("no attended session for 14 days"),
            None,
            stillpoint_app::Clock::now(app.clock.as_ref()),
        )
        .await
        .expect("lapse stored");
    sign_in(browser, app, "patient", DEMO_PASSWORD).await;
    browser
        .client
        .wait()
        .for_url(&url::Url::parse(&app.url("/home")).expect("url"))
        .await
        .expect("signed in");
    browser.goto(&app.url("/program")).await;
    check_page(browser, "program after a lapse").await
}

/// Creates an invitation on the staff page, then opens it as the invited person would.
async fn invitation_pages(browser: &Browser, app: &TestApp) -> Vec<String> {
    let mut problems = Vec::new();
    browser.goto(&app.url("/staff")).await;
    for (id, value) in [
        ("invite-name", "Noor Haddad"),
        ("invite-email", "noor@demo-clinic.example"),
    ] {
        browser
            .client
            .find(Locator::Id(id))
            .await
            .expect("invitation field")
            .send_keys(value)
            .await
            .expect("typed");
    }
    browser
        .client
        .find(Locator::Css(
            "form[action='/staff/invitations'] button[type=submit]",
        ))
        .await
        .expect("invite button")
        .click()
        .await
        .expect("clicked");
    wait_for_heading(browser, "Invitation created").await;
    problems.extend(check_page(browser, "invitation created").await);

    let link = browser
        .eval("document.getElementById('issued-link').value")
        .await;
    let link = link.as_str().expect("the link is shown").to_owned();
    browser
        .client
        .delete_all_cookies()
        .await
        .expect("cookies cleared");
    browser.goto(&link).await;
    wait_for_heading(browser, "Create your account").await;
    problems.extend(check_page(browser, "accept invitation").await);

    // A password reset link, issued to the demo caregiver.
    let admin = app.browser_session("admin").await;
    let caregiver = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.has_role(stillpoint_domain::Role::Caregiver))
        .expect("caregiver")
        .id;
    let page = app
        .post_form(
            &admin,
            &format!("/accounts/{caregiver}/password-reset"),
            &[],
        )
        .await
        .text()
        .await
        .expect("body");
    let marker = "id=\"issued-link\" type=\"text\" readonly value=\"";
    let start = page.find(marker).expect("a reset link") + marker.len();
    let link = &page[start..start + page[start..].find('"').expect("end of link")];
    browser.goto(link).await;
    wait_for_heading(browser, "Choose a new password").await;
    problems.extend(check_page(browser, "password reset").await);
    problems
}

/// Sets up the authenticator of a new staff account, checking the set-up and recovery code pages.
async fn authenticator_setup_pages(browser: &Browser, app: &TestApp) -> Vec<String> {
    use stillpoint_domain::{
        Account, AccountId, EmailAddress, Language, Role, RoleAssignment, TimeZoneName,
    };

    let site = app.demo.as_ref().expect("demo").sites[0].id;
    let account = Account {
        id: AccountId::from_uuid(uuid::Uuid::now_v7()),
        email: EmailAddress::parse("setup@demo-clinic.example").expect("valid"),
        display_name: "New Clinician".to_owned(),
        language: Language::english(),
        time_zone: TimeZoneName::parse("America/Chicago").expect("valid"),
        preferences: stillpoint_domain::DisplayPreferences::default(),
        roles: vec![RoleAssignment::new(Role::Clinician, Some(site)).expect("valid")],
    };
    let hash = stillpoint_app::auth::hash_password(DEMO_PASSWORD).expect("hash");
    app.state
        .store
        .insert_account(&account, &hash)
        .await
        .expect("insert");

    let mut problems = Vec::new();
    sign_in(browser, app, "setup", DEMO_PASSWORD).await;
    browser
        .client
        .wait()
        .for_url(&url::Url::parse(&app.url("/sign-in/authenticator")).expect("url"))
        .await
        .expect("asked to set up an authenticator");
    problems.extend(check_page(browser, "authenticator set-up").await);

    let key = browser
        .eval("document.querySelector('.secret-key').textContent.replace(/ /g, '')")
        .await;
    let now = stillpoint_app::Clock::now(app.clock.as_ref());
    let code = stillpoint_app::mfa::code_at(key.as_str().expect("key text"), now).expect("code");
    submit_code(browser, &code).await;
    wait_for_heading(browser, "Your recovery codes").await;
    problems.extend(check_page(browser, "recovery codes").await);
    problems
}

#[tokio::test]
async fn sign_in_and_language_journey() {
    let Some(browser) = Browser::start("sign_in_and_language_journey").await else {
        return;
    };
    let app = spawn_app(Dialect::Sqlite, Seed::DemoClinic, "journey")
        .await
        .expect("sqlite");
    browser.set_width(PHONE_WIDTH).await;

    sign_in(&browser, &app, "facilitator", DEMO_PASSWORD).await;
    wait_for_heading(&browser, "Enter your one-time code").await;
    let code = app
        .next_one_time_code("facilitator@demo-clinic.example")
        .expect("staff code");
    submit_code(&browser, &code).await;
    wait_for_heading(&browser, "Welcome, Maya Lindqvist").await;
    assert_eq!(
        browser.client.current_url().await.expect("url").path(),
        "/home"
    );

    let select = browser
        .client
        .find(Locator::Id("language-select"))
        .await
        .expect("language switcher");
    select.select_by_value("es").await.expect("Spanish chosen");
    browser
        .client
        .find(Locator::Css(".language-switcher button"))
        .await
        .expect("switch button")
        .click()
        .await
        .expect("clicked");
    wait_for_heading(&browser, "Hola, Maya Lindqvist").await;
    assert_eq!(browser.eval("document.documentElement.lang").await, "es");

    browser
        .client
        .find(Locator::Css("form[action='/sign-out'] button"))
        .await
        .expect("sign-out button")
        .click()
        .await
        .expect("clicked");
    wait_for_heading(
        &browser,
        "Atención plena para vivir con una enfermedad crónica",
    )
    .await;
    browser.goto(&app.url("/home")).await;
    // Signed out, and the language cookie the switcher set still applies.
    wait_for_heading(&browser, "Inicie sesión").await;

    browser.close().await;
}

/// Polls `expression` every 200 ms for up to `seconds` until it is true.
async fn wait_until(browser: &Browser, expression: &str, seconds: u64) -> bool {
    for _ in 0..seconds * 5 {
        if browser.eval(expression).await == Value::Bool(true) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    false
}

async fn timer_entries(
    app: &TestApp,
    patient: stillpoint_domain::PatientId,
) -> Vec<stillpoint_app::ports::PracticeEntry> {
    stillpoint_app::ports::PracticeStore::practice_entries_of(
        &app.database.database,
        patient,
        jiff::civil::date(2000, 1, 1),
    )
    .await
    .expect("entries")
    .into_iter()
    .filter(|entry| {
        entry.source == stillpoint_domain::practice::EntrySource::Timer && entry.seconds == 180
    })
    .collect()
}

/// A patient plays a recording with captions, then runs the timer with the browser offline;
/// the practice reaches the diary once, after the connection comes back.
#[tokio::test]
#[allow(clippy::too_many_lines)] // One journey, read top to bottom.
async fn practice_plays_captions_and_times_offline() {
    let test = "practice_plays_captions_and_times_offline";
    let Some(app) = spawn_app(Dialect::Sqlite, Seed::DemoClinic, test).await else {
        return;
    };
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let store = &app.database.database;
    let lucia = stillpoint_app::ports::AccountStore::find_credentials(
        store,
        &stillpoint_domain::EmailAddress::parse(&TestApp::demo_email("patient")).expect("address"),
    )
    .await
    .expect("account")
    .account;
    let patient = stillpoint_app::ports::PatientStore::find_patient_for_account(store, lucia.id)
        .await
        .expect("patient")
        .id;
    // The timer dates its entry by the browser's own clock, so the app's clock moves to the
    // real time, or the entry would be dated after the app's "today".
    let behind =
        jiff::Timestamp::now().duration_since(stillpoint_app::Clock::now(app.clock.as_ref()));
    app.clock.advance(behind);
    sign_in(&browser, &app, "patient", DEMO_PASSWORD).await;
    wait_for_heading(&browser, "Hola, Lucía Morales").await;

    // The player: captions appear under it as the recording plays.
    let recording = stillpoint_app::ports::PracticeStore::list_recordings(store)
        .await
        .expect("recordings")
        .into_iter()
        .find(|recording| recording.language.as_str() == "es")
        .expect("a Spanish recording");
    browser
        .goto(&app.url(&format!("/practice/recordings/{}", recording.id)))
        .await;
    let started = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             const audio = document.getElementById('practice-audio');\
             audio.play().then(() => done(true)).catch(e => done(String(e)));",
            vec![],
        )
        .await
        .expect("play runs");
    assert_eq!(started, Value::Bool(true), "the recording starts");
    assert!(
        wait_until(
            &browser,
            "document.getElementById('caption-line').textContent.trim().length > 0",
            30
        )
        .await,
        "a caption is shown while the recording plays"
    );
    let caption = browser
        .eval("document.getElementById('caption-line').textContent.trim()")
        .await;
    let caption = caption.as_str().unwrap_or_default().to_owned();
    let cues = stillpoint_domain::practice::webvtt::parse(&recording.captions).expect("captions");
    assert!(
        cues.iter().any(|cue| cue.text == caption),
        "'{caption}' is one of the recording's cues"
    );
    assert!(
        wait_until(
            &browser,
            "document.querySelector('#transcript li[aria-current=\"true\"]') !== null",
            5
        )
        .await,
        "the transcript marks the sentence being spoken"
    );
    browser
        .eval("document.getElementById('practice-audio').pause() || true")
        .await;
    let mut counted = 0;
    for _ in 0..50 {
        counted = stillpoint_app::ports::PracticeStore::practice_entries_of(
            store,
            patient,
            jiff::civil::date(2000, 1, 1),
        )
        .await
        .expect("entries")
        .iter()
        .filter(|entry| entry.recording == Some(recording.id))
        .map(|entry| entry.seconds)
        .sum::<u32>();
        if counted > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let played = browser
        .eval("document.getElementById('practice-audio').currentTime")
        .await
        .as_f64()
        .unwrap_or_default();
    assert!(counted > 0, "the played seconds reach the diary");
    assert!(
        f64::from(counted) <= played + 1.0,
        "counted {counted} s of {played} s played"
    );

    // The timer, with the service worker in control and the network cut off.
    browser.goto(&app.url("/practice/timer")).await;
    assert!(
        wait_until(&browser, "navigator.serviceWorker.controller !== null", 20).await || {
            browser.goto(&app.url("/practice/timer")).await;
            wait_until(&browser, "navigator.serviceWorker.controller !== null", 20).await
        },
        "the practice service worker controls the timer page"
    );
    let before = timer_entries(&app, patient).await.len();
    browser.set_offline(true).await;
    assert_eq!(browser.eval("navigator.onLine").await, Value::Bool(false));
    // Sixty times faster clock, so three minutes pass in three seconds.
    browser
        .eval("(() => { const real = Date.now.bind(Date); const start = real(); Date.now = () => start + (real() - start) * 60; return true; })()")
        .await;
    browser
        .eval("(document.getElementById('timer-minutes').value = '3') && true")
        .await;
    browser
        .client
        .find(Locator::Id("timer-start"))
        .await
        .expect("start button")
        .click()
        .await
        .expect("clicked");
    assert!(
        wait_until(
            &browser,
            "!document.getElementById('timer-done').hidden",
            30
        )
        .await,
        "the timer finishes offline"
    );
    let result = browser
        .eval("document.getElementById('timer-result').textContent")
        .await;
    assert!(
        result
            .as_str()
            .is_some_and(|text| text.contains("Guardado en este dispositivo")),
        "{result}"
    );
    assert_eq!(
        timer_entries(&app, patient).await.len(),
        before,
        "nothing arrived while offline"
    );

    // Back online, the queued entry is sent, and only once.
    browser.set_offline(false).await;
    let mut arrived = 0;
    for _ in 0..50 {
        arrived = timer_entries(&app, patient).await.len();
        if arrived > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(arrived, before + 1, "the entry arrives after reconnecting");
    assert!(
        wait_until(
            &browser,
            "document.getElementById('timer-result').textContent.includes('Su práctica se añadió')",
            10
        )
        .await,
        "the page says the practice reached the diary"
    );
    browser.goto(&app.url("/practice")).await;
    wait_for_heading(&browser, "Práctica en casa").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        timer_entries(&app, patient).await.len(),
        before + 1,
        "a reload sends nothing again"
    );
    assert_eq!(
        browser
            .eval("JSON.parse(localStorage.getItem('stillpoint-practice-queue') || '[]').length")
            .await,
        Value::from(0)
    );
    browser.close().await;
}
