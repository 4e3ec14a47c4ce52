//! The MBSR program pages end to end. The scenarios cover the curriculum library and editor, the
//! cohort builder, roll call and attendance rates, and rescheduling and cancelling with the
//! calendar feed (read back with Python's icalendar package). They also cover lapse and return,
//! the patient's program page, and referral and screening. Runs on SQLite, and on PostgreSQL when
//! it is configured.
//!
//! The demo clinic's NORTH cohort (America/Chicago) is in week 5 on the test clock's date,
//! 2026-12-04, and the SOUTH cohort's orientation is on 2026-12-10.

// Each scenario is one user journey read top to bottom; splitting it would hide the journey.
#![allow(clippy::too_many_lines)]

use jiff::SignedDuration;
use reqwest::StatusCode;
use stillpoint_app::Clock as _;
use stillpoint_app::ports::{CurriculumStore as _, EnrolmentStore as _, ProgramStore as _};
use stillpoint_domain::curriculum::CurriculumId;
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, parse_icalendar, spawn_app};

async fn text(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.expect("body"))
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
    text(client.get(app.url(path)).send().await.expect("request")).await
}

/// Returns the location a redirect points to.
fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .expect("ascii")
        .to_owned()
}

fn north_cohort(app: &TestApp) -> String {
    app.demo.as_ref().expect("demo").cohorts[0].0.id.to_string()
}

async fn curriculum_is_copied_edited_and_published(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "curriculum_editor").await else {
        return;
    };
    let admin = app.browser_session("program.admin").await;
    let site = app.demo.as_ref().expect("demo").sites[0].id.to_string();
    let (status, library) = get(&app, &admin, "/curricula").await;
    assert_eq!(status, StatusCode::OK);
    for id in ["mbsr-online", "mbsr-chronic-pain", "mbsr-gentle"] {
        assert!(library.contains(&format!("<code>{id}</code>")), "{id}");
    }

    // A bad id is rejected by field, and nothing is stored.
    let bad = app
        .post_form(
            &admin,
            "/curricula/copy",
            &[
                ("from_id", "mbsr-chronic-pain"),
                ("from_version", "1"),
                ("new_id", "Riverbend Pain"),
                ("title", "Riverbend pain group"),
                ("site_id", site.as_str()),
            ],
        )
        .await;
    let (status, page) = text(bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("new_id"), "{page}");

    let copied = app
        .post_form(
            &admin,
            "/curricula/copy",
            &[
                ("from_id", "mbsr-chronic-pain"),
                ("from_version", "1"),
                ("new_id", "riverbend-pain"),
                ("title", "Riverbend pain group"),
                ("site_id", site.as_str()),
            ],
        )
        .await;
    assert_eq!(copied.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&copied), "/curricula/riverbend-pain/1");
    let (_, draft) = get(&app, &admin, "/curricula/riverbend-pain/1").await;
    assert!(draft.contains("Riverbend pain group"), "{draft}");
    assert!(draft.contains("ready to publish"), "{draft}");

    // The week-3 editor (index 3: after the orientation and weeks 1 and 2) saves a new theme
    // and a longer first block, which the publish check then reports.
    let editor_path = "/curricula/riverbend-pain/1/sessions/3?language=en";
    let (status, editor) = get(&app, &admin, editor_path).await;
    assert_eq!(status, StatusCode::OK);
    let mut fields = form_values(&editor);
    set(&mut fields, "theme", "Kindness towards the body");
    let first_minutes = value(&fields, "block_minutes_0")
        .parse::<u32>()
        .expect("minutes");
    set(
        &mut fields,
        "block_minutes_0",
        &(first_minutes + 5).to_string(),
    );
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let saved = app
        .post_form(&admin, "/curricula/riverbend-pain/1/sessions/3", &pairs)
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);

    let revision = draft_revision(&app, &admin, "/curricula/riverbend-pain/1").await;
    // Emptying an existing block's title does not delete the block.
    let mut emptied = form_values(&get(&app, &admin, editor_path).await.1);
    set(&mut emptied, "block_title_1", "");
    let pairs: Vec<(&str, &str)> = emptied
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let rejected = app
        .post_form(&admin, "/curricula/riverbend-pain/1/sessions/3", &pairs)
        .await;
    let (status, page) = text(rejected).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("tick Remove"), "{page}");

    let refused = app
        .post_form(
            &admin,
            "/curricula/riverbend-pain/1/publish",
            &[("revision", revision.as_str())],
        )
        .await;
    let (status, page) = text(refused).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("the blocks of week 3 add up to 125 minutes but class_minutes is 120"),
        "{page}"
    );

    // Raising the class length to 125 does not help, because the other classes add up to 120.
    let details = app
        .post_form(
            &admin,
            "/curricula/riverbend-pain/1/details",
            &[
                ("revision", revision.as_str()),
                ("language", "en"),
                ("title", "Riverbend pain group"),
                ("summary", "Our pain group."),
                ("orientation_minutes", "75"),
                ("class_minutes", "125"),
                ("retreat_minutes", "300"),
            ],
        )
        .await;
    assert_eq!(details.status(), StatusCode::SEE_OTHER);
    let revision = draft_revision(&app, &admin, "/curricula/riverbend-pain/1").await;
    let still_refused = app
        .post_form(
            &admin,
            "/curricula/riverbend-pain/1/publish",
            &[("revision", revision.as_str())],
        )
        .await;
    assert_eq!(
        still_refused.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "other weeks are 120"
    );

    // Put the class length back and the first block of week 3 back, then publish.
    let mut fields = form_values(&get(&app, &admin, editor_path).await.1);
    set(&mut fields, "block_minutes_0", &first_minutes.to_string());
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    app.post_form(&admin, "/curricula/riverbend-pain/1/sessions/3", &pairs)
        .await;
    let revision = draft_revision(&app, &admin, "/curricula/riverbend-pain/1").await;
    app.post_form(
        &admin,
        "/curricula/riverbend-pain/1/details",
        &[
            ("revision", revision.as_str()),
            ("language", "en"),
            ("title", "Riverbend pain group"),
            ("summary", "Our pain group."),
            ("orientation_minutes", "75"),
            ("class_minutes", "120"),
            ("retreat_minutes", "300"),
        ],
    )
    .await;
    // An edit based on an older reading of the draft is rejected, not applied over it.
    let stale = app
        .post_form(
            &admin,
            "/curricula/riverbend-pain/1/publish",
            &[("revision", revision.as_str())],
        )
        .await;
    let (status, page) = text(stale).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("since you opened it"), "{page}");
    let revision = draft_revision(&app, &admin, "/curricula/riverbend-pain/1").await;
    let published = app
        .post_form(
            &admin,
            "/curricula/riverbend-pain/1/publish",
            &[("revision", revision.as_str())],
        )
        .await;
    assert_eq!(published.status(), StatusCode::SEE_OTHER);

    let id = CurriculumId::parse("riverbend-pain").expect("id");
    let stored = app
        .database
        .database
        .get_curriculum_version(&id, 1)
        .await
        .expect("stored");
    let week_three = stored
        .curriculum
        .session(stillpoint_domain::schedule::SessionKind::Class { week: 3 })
        .expect("week 3");
    let english = stillpoint_domain::Language::english();
    let spanish = stillpoint_domain::Language::spanish();
    assert_eq!(week_three.theme[&english], "Kindness towards the body");
    assert_ne!(week_three.theme[&spanish], "Kindness towards the body");

    // A published version never changes; edits go to a new draft version.
    let frozen = app
        .post_form(&admin, "/curricula/riverbend-pain/1/sessions/3", &pairs)
        .await;
    assert_eq!(frozen.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let next = app
        .post_form(&admin, "/curricula/riverbend-pain/drafts", &[])
        .await;
    assert_eq!(location(&next), "/curricula/riverbend-pain/2");

    // A cohort started on version 1 keeps it after version 2 is published with a new theme.
    let cohort = cohort_on_riverbend_v1(&app).await;
    let v2_editor = "/curricula/riverbend-pain/2/sessions/3?language=en";
    let mut fields = form_values(&get(&app, &admin, v2_editor).await.1);
    set(&mut fields, "theme", "A theme of version two");
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let saved = app
        .post_form(&admin, "/curricula/riverbend-pain/2/sessions/3", &pairs)
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let revision = draft_revision(&app, &admin, "/curricula/riverbend-pain/2").await;
    let published = app
        .post_form(
            &admin,
            "/curricula/riverbend-pain/2/publish",
            &[("revision", revision.as_str())],
        )
        .await;
    assert_eq!(published.status(), StatusCode::SEE_OTHER);
    let details = app
        .database
        .database
        .get_cohort_details(cohort)
        .await
        .expect("details");
    assert_eq!(details.curriculum, Some((id.clone(), 1)));
    let (_, cohort_page) = get(&app, &admin, &format!("/cohorts/{cohort}")).await;
    assert!(
        cohort_page.contains("Kindness towards the body"),
        "{cohort_page}"
    );
    assert!(!cohort_page.contains("A theme of version two"));

    // Shipped curricula are copied, never edited in place; facilitators read but do not copy.
    let shipped = app
        .post_form(&admin, "/curricula/mbsr-online/drafts", &[])
        .await;
    assert_eq!(shipped.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let facilitator = app.browser_session("facilitator").await;
    assert_eq!(
        get(&app, &facilitator, "/curricula/mbsr-online/1").await.0,
        StatusCode::OK
    );
    // A copy belongs to a site: the other site's program administrator cannot edit it.
    let south = app.demo.as_ref().expect("demo").sites[1].id.to_string();
    let south_copy = app
        .post_form(
            &admin,
            "/curricula/copy",
            &[
                ("from_id", "mbsr-gentle"),
                ("from_version", "1"),
                ("new_id", "south-gentle"),
                ("title", "South gentle group"),
                ("site_id", south.as_str()),
            ],
        )
        .await;
    assert_eq!(south_copy.status(), StatusCode::SEE_OTHER);
    let north_site = app.demo.as_ref().expect("demo").sites[0].id;
    let (_, north_admin) = app
        .account_with_roles(
            "north.admin",
            vec![
                stillpoint_domain::RoleAssignment::new(
                    stillpoint_domain::Role::ProgramAdministrator,
                    Some(north_site),
                )
                .expect("role"),
            ],
        )
        .await;
    let as_north_admin = |path: &str| {
        app.client()
            .get(app.url(path))
            .bearer_auth(&north_admin)
            .send()
    };
    let editor = as_north_admin("/curricula/south-gentle/1/sessions/1")
        .await
        .expect("request");
    assert_eq!(editor.status(), StatusCode::FORBIDDEN);
    let (status, page) = text(
        as_north_admin("/curricula/south-gentle/1")
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("/curricula/south-gentle/1/publish"),
        "{page}"
    );
    let copy = app
        .post_form(
            &facilitator,
            "/curricula/copy",
            &[
                ("from_id", "mbsr-online"),
                ("from_version", "1"),
                ("new_id", "facilitator-copy"),
                ("title", "Mine"),
                ("site_id", site.as_str()),
            ],
        )
        .await;
    assert_eq!(copy.status(), StatusCode::FORBIDDEN);
}

/// Reads the revision a draft's page sends back with its forms.
async fn draft_revision(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let (_, page) = get(app, client, path).await;
    stillpoint_test_support::hidden_field(&page, "revision").expect("a draft's revision")
}

/// Creates a NORTH cohort on `riverbend-pain` version 1 through the API and returns its id.
async fn cohort_on_riverbend_v1(app: &TestApp) -> stillpoint_domain::CohortId {
    let demo = app.demo.as_ref().expect("demo");
    let facilitator = demo
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "facilitator@demo-clinic.example")
        .expect("facilitator");
    let token = app.api_token("program.admin").await;
    let response = app
        .client()
        .post(app.url("/api/v1/cohorts"))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "site_id": demo.sites[0].id.to_string(),
            "name": "NORTH · Riverbend pain group",
            "time_zone": "America/Chicago",
            "lead_facilitator_id": facilitator.id.to_string(),
            "orientation_date": "2027-02-23",
            "first_class_date": "2027-03-02",
            "class_time": "10:00",
            "class_minutes": 120,
            "retreat_start": "2027-04-10T09:30",
            "retreat_minutes": 300,
            "curriculum_id": "riverbend-pain",
            "curriculum_version": 1,
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").parse().expect("cohort id")
}

/// Collects the `name=value` pairs of the first form on `page` that posts (text inputs, textareas,
/// selected options and checked boxes), in page order.
fn form_values(page: &str) -> Vec<(String, String)> {
    let start = page
        .find("<form method=\"post\" action=\"/curricula/")
        .expect("form");
    let form = &page[start..start + page[start..].find("</form>").expect("end")];
    let attribute = |tag: &str, name: &str| {
        let marker = format!("{name}=\"");
        tag.find(&marker).map(|at| {
            let rest = &tag[at + marker.len()..];
            rest[..rest.find('"').expect("quote")].to_owned()
        })
    };
    let mut values = Vec::new();
    let mut rest = form;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        let end = rest.find('>').expect("tag end");
        let tag = &rest[..=end];
        if tag.starts_with("<input") {
            let kind = attribute(tag, "type").unwrap_or_default();
            let include = kind != "checkbox" || tag.contains(" checked");
            // `post_form` adds the form token itself.
            let name = attribute(tag, "name").filter(|name| name != "csrf_token");
            if let (Some(name), true) = (name, include) {
                values.push((
                    name,
                    html_unescape(&attribute(tag, "value").unwrap_or_default()),
                ));
            }
        } else if tag.starts_with("<textarea") {
            let name = attribute(tag, "name").expect("name");
            let body = &rest[end + 1..];
            let content = &body[..body.find("</textarea>").expect("textarea end")];
            values.push((name, html_unescape(content)));
        } else if tag.starts_with("<select") {
            let name = attribute(tag, "name").expect("name");
            let body = &rest[end + 1..];
            let options = &body[..body.find("</select>").expect("select end")];
            let chosen = options
                .split("<option")
                .find(|option| option.contains(" selected"))
                .and_then(|option| attribute(option, "value"))
                .unwrap_or_default();
            values.push((name, chosen));
        }
        rest = &rest[end + 1..];
    }
    values
}

fn html_unescape(text: &str) -> String {
    text.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn value<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .expect(name)
}

fn set(fields: &mut [(String, String)], name: &str, new: &str) {
    let field = fields.iter_mut().find(|(key, _)| key == name).expect(name);
    new.clone_into(&mut field.1);
}

async fn cohort_builder_plans_and_rejects_by_field(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "cohort_builder").await else {
        return;
    };
    let demo = app.demo.as_ref().expect("demo");
    let admin = app.browser_session("program.admin").await;
    let (status, builder) = get(&app, &admin, "/cohorts/new").await;
    assert_eq!(status, StatusCode::OK);
    let facilitator = demo
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "facilitator@demo-clinic.example")
        .expect("facilitator")
        .id
        .to_string();
    assert!(builder.contains(&facilitator));
    let site = demo.sites[0].id.to_string();
    // A 02:30 class on Sundays in Chicago: 2027-03-14 is the day the clocks go forward.
    let valid = vec![
        ("name", "NORTH · early Sunday group"),
        ("site_id", site.as_str()),
        ("curriculum", "mbsr-online@1"),
        ("capacity", "12"),
        ("language", "es"),
        ("lead_facilitator_id", facilitator.as_str()),
        ("co_facilitator_id", ""),
        ("video_provider", "embedded"),
        ("time_zone", "America/Chicago"),
        ("orientation_date", "2027-02-21"),
        ("first_class_date", "2027-02-28"),
        ("class_time", "02:30"),
        ("class_minutes", ""),
        ("retreat_date", "2027-04-10"),
        ("retreat_time", "09:30"),
        ("retreat_minutes", ""),
        ("skip_dates", ""),
    ];
    let with = |name: &str, new: &'static str| {
        valid
            .iter()
            .map(|(key, value)| (*key, if *key == name { new } else { *value }))
            .collect::<Vec<_>>()
    };
    let cohorts_before = app
        .database
        .database
        .list_cohort_details()
        .await
        .expect("list")
        .len();
    for (field, bad, reported) in [
        ("first_class_date", "2026-11-01", "Date of the week 1 class"),
        ("time_zone", "Mars/Olympus_Mons", "Time zone"),
        ("capacity", "0", "Places in the group"),
        (
            "retreat_date",
            "2027-06-01",
            "Date of the all-day retreat (between the week 6 and week 7 classes)",
        ),
        ("curriculum", "mbsr-online@9", "Curriculum"),
        (
            "class_time",
            "half past two",
            "Start time of the orientation and classes",
        ),
    ] {
        let response = app
            .post_form(&admin, "/cohorts/new", &with(field, bad))
            .await;
        let (status, page) = text(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(
            page.contains(&format!("<strong>{reported}</strong>")),
            "{field}: {page}"
        );
        assert!(page.contains("aria-invalid=\"true\""), "{field}");
    }
    let cohorts_after = app
        .database
        .database
        .list_cohort_details()
        .await
        .expect("list")
        .len();
    assert_eq!(cohorts_before, cohorts_after, "nothing half-created");

    let created = app.post_form(&admin, "/cohorts/new", &valid).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let cohort_path = location(&created);
    let (status, page) = get(&app, &admin, &cohort_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("this local time does not exist"), "{page}");
    assert!(page.contains("starts 60 minutes later"), "{page}");
    assert!(page.contains("The cohort is created"), "{page}");
    // The class length came from the curriculum: 150 minutes.
    let cohort: stillpoint_domain::CohortId = cohort_path
        .trim_start_matches("/cohorts/")
        .trim_end_matches("?notice=created")
        .parse()
        .expect("id");
    let sessions = app
        .database
        .database
        .list_cohort_sessions(cohort)
        .await
        .expect("sessions");
    assert_eq!(sessions.len(), 10);
    assert_eq!(
        sessions[1]
            .planned
            .end
            .duration_since(sessions[1].planned.start),
        SignedDuration::from_mins(150)
    );
    let details = app
        .database
        .database
        .get_cohort_details(cohort)
        .await
        .expect("details");
    assert_eq!(
        details.curriculum,
        Some((CurriculumId::parse("mbsr-online").expect("id"), 1))
    );

    // The capacity cannot drop below the places taken: NORTH has 8 patients holding one.
    let north = north_cohort(&app);
    let too_small = app
        .post_form(
            &admin,
            &format!("/cohorts/{north}/capacity"),
            &[("capacity", "5")],
        )
        .await;
    let (status, page) = text(too_small).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("8 patients hold a place"), "{page}");
    let fits = app
        .post_form(
            &admin,
            &format!("/cohorts/{north}/capacity"),
            &[("capacity", "8")],
        )
        .await;
    assert_eq!(fits.status(), StatusCode::SEE_OTHER);
}

async fn roll_call_records_attendance_and_rates(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "roll_call").await else {
        return;
    };
    let store = &app.database.database;
    let north: stillpoint_domain::CohortId = north_cohort(&app).parse().expect("id");
    let sessions = store.list_cohort_sessions(north).await.expect("sessions");
    let now = app.clock.now();
    let week_five = sessions
        .iter()
        .rev()
        .find(|session| session.planned.start <= now)
        .expect("a held session");
    assert_eq!(
        week_five.planned.kind,
        stillpoint_domain::schedule::SessionKind::Class { week: 5 }
    );
    let roster = store.cohort_roster(north).await.expect("roster");
    assert_eq!(roster.len(), 8);
    let lapsed = roster
        .iter()
        .filter(|entry| entry.state.code() == "lapsed")
        .count();
    assert_eq!(lapsed, 2, "the demo has two lapsed patients");

    // The demo's attendance is realistic: about 80% over the held sessions.
    let facilitator = app.browser_session("facilitator").await;
    let (status, cohort_page) = get(&app, &facilitator, &format!("/cohorts/{north}")).await;
    assert_eq!(status, StatusCode::OK);
    let rate = percent_after(&cohort_page, "Attendance of the group:");
    assert!((70..=90).contains(&rate), "cohort rate {rate}%");

    let session_path = format!("/cohorts/{north}/sessions/{}", week_five.id);
    let (status, page) = get(&app, &facilitator, &session_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Roll call"), "{page}");

    // An absent patient with minutes is rejected, naming the patient, and nothing changes.
    let first = &roster[0];
    let before = store.cohort_attendance(north).await.expect("attendance");
    let bad = app
        .post_form(
            &facilitator,
            &format!("{session_path}/attendance"),
            &[
                (&format!("mark_{}", first.patient), "absent"),
                (&format!("minutes_{}", first.patient), "30"),
            ]
            .map(|(name, value)| (name.as_str(), value)),
        )
        .await;
    let (status, page) = text(bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains(&first.family_name), "{page}");
    assert_eq!(
        store.cohort_attendance(north).await.expect("attendance"),
        before
    );

    // Everyone present: the patient's rate and the cohort's rise.
    let names: Vec<String> = roster
        .iter()
        .map(|entry| format!("mark_{}", entry.patient))
        .collect();
    let marks: Vec<(&str, &str)> = names
        .iter()
        .map(|name| (name.as_str(), "present"))
        .collect();
    let saved = app
        .post_form(&facilitator, &format!("{session_path}/attendance"), &marks)
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, page) = get(&app, &facilitator, &location(&saved)).await;
    assert!(page.contains("The roll call is saved"), "{page}");
    let (_, cohort_page) = get(&app, &facilitator, &format!("/cohorts/{north}")).await;
    assert!(percent_after(&cohort_page, "Attendance of the group:") >= rate);
    let stored = store.cohort_attendance(north).await.expect("attendance");
    assert!(
        stored
            .iter()
            .filter(|mark| mark.session == week_five.id)
            .all(
                |mark| mark.record.mark == stillpoint_domain::attendance::AttendanceMark::Present
                    && mark.record.minutes_attended == 150
            )
    );

    // Another site's clinician gets no cohort page. This site's clinician gets it but takes no
    // roll.
    let south_clinician = app.browser_session("clinician.south").await;
    assert_eq!(
        get(&app, &south_clinician, &format!("/cohorts/{north}"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let clinician = app.browser_session("clinician").await;
    assert_eq!(
        get(&app, &clinician, &format!("/cohorts/{north}")).await.0,
        StatusCode::OK
    );
    let refused = app
        .post_form(&clinician, &format!("{session_path}/attendance"), &marks)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // A waitlisted patient is on the clinician's roster, not in the facilitator's care team.
    let demo = app.demo.as_ref().expect("demo");
    let waiting = demo
        .patients
        .iter()
        .find(|patient| patient.site_id == demo.sites[0].id && !demo.is_cohort_member(patient.id))
        .expect("a NORTH patient outside the cohorts");
    store
        .record_transition(
            waiting.id,
            None,
            &stillpoint_domain::enrolment::EnrolmentState::Waitlisted { cohort: north },
            None,
            None,
            None,
            app.clock.now(),
        )
        .await
        .expect("waitlisted");
    let waiting_name = format!("{} {}", waiting.given_name, waiting.family_name);
    let (_, clinician_page) = get(&app, &clinician, &format!("/cohorts/{north}")).await;
    assert!(clinician_page.contains(&waiting_name), "{clinician_page}");
    let (_, facilitator_page) = get(&app, &facilitator, &format!("/cohorts/{north}")).await;
    assert!(
        !facilitator_page.contains(&waiting_name),
        "{facilitator_page}"
    );
}

/// Returns the first percentage after `label` on `page`.
fn percent_after(page: &str, label: &str) -> u32 {
    let start = page.find(label).expect(label);
    let rest = &page[start..];
    let end = rest.find('%').expect("a percentage");
    let digits: String = rest[..end]
        .chars()
        .rev()
        .skip_while(|character| character.is_whitespace())
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().expect("a number")
}

async fn reschedule_updates_the_calendar_feed(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "calendar_feed").await else {
        return;
    };
    let store = &app.database.database;
    let north: stillpoint_domain::CohortId = north_cohort(&app).parse().expect("id");
    let patient = app.browser_session("patient").await;

    // The patient turns the feed on; the address is shown once.
    let created = app.post_form(&patient, "/account/calendar", &[]).await;
    let (status, page) = text(created).await;
    assert_eq!(status, StatusCode::OK);
    let start = page.find("/calendar/").expect("feed address");
    let end = start + page[start..].find(".ics").expect("ics") + 4;
    let feed_path = page[start..end].to_owned();
    let anonymous = app.client();
    let response = anonymous
        .get(app.url(&feed_path))
        .send()
        .await
        .expect("feed");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/calendar")
    );
    let feed = response.text().await.expect("body");
    let Some(events) = parse_icalendar("reschedule_updates_the_calendar_feed", &feed) else {
        return;
    };
    let sessions = store.list_cohort_sessions(north).await.expect("sessions");
    assert_eq!(events.len(), sessions.len());
    for (event, session) in events.iter().zip(&sessions) {
        let expected = format!(
            "{}@stillpoint|0|{}|CONFIRMED",
            session.id,
            session.planned.start.strftime("%Y-%m-%dT%H:%M:%SZ")
        );
        assert_eq!(event, &expected);
    }

    // The program administrator moves week 7 an hour later and cancels week 8.
    let admin = app.browser_session("program.admin").await;
    let week = |week: u8| {
        sessions
            .iter()
            .find(|session| {
                session.planned.kind == stillpoint_domain::schedule::SessionKind::Class { week }
            })
            .expect("week")
            .clone()
    };
    let (week_seven, week_eight) = (week(7), week(8));
    let local = week_seven.planned.local_start;
    let new_date = local.date().to_string();
    let short = app
        .post_form(
            &admin,
            &format!("/cohorts/{north}/sessions/{}/reschedule", week_seven.id),
            &[
                ("new_date", new_date.as_str()),
                ("new_time", "19:00"),
                ("reason", ""),
            ],
        )
        .await;
    let (status, page) = text(short).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("at least 5 characters"), "{page}");
    let past = app
        .post_form(
            &admin,
            &format!("/cohorts/{north}/sessions/{}/reschedule", week_seven.id),
            &[
                ("new_date", "2026-11-30"),
                ("new_time", "19:00"),
                ("reason", "Holiday week"),
            ],
        )
        .await;
    assert_eq!(past.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let moved = app
        .post_form(
            &admin,
            &format!("/cohorts/{north}/sessions/{}/reschedule", week_seven.id),
            &[
                ("new_date", new_date.as_str()),
                ("new_time", "19:00"),
                ("reason", "Internet at the studio is down until 18:45"),
            ],
        )
        .await;
    assert_eq!(moved.status(), StatusCode::SEE_OTHER);
    // A session that has taken place keeps its time.
    let held = sessions
        .iter()
        .rfind(|session| session.planned.start <= app.clock.now())
        .expect("a held session");
    let rewrite = app
        .post_form(
            &admin,
            &format!("/cohorts/{north}/sessions/{}/cancel", held.id),
            &[("cancel_reason", "Entered by mistake")],
        )
        .await;
    let (status, page) = text(rewrite).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("has started or taken place"), "{page}");
    let cancelled = app
        .post_form(
            &admin,
            &format!("/cohorts/{north}/sessions/{}/cancel", week_eight.id),
            &[("cancel_reason", "Facilitator is ill; a makeup date follows")],
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    let (_, cohort_page) = get(&app, &admin, &format!("/cohorts/{north}")).await;
    assert!(
        cohort_page.contains("Internet at the studio is down"),
        "{cohort_page}"
    );
    assert!(cohort_page.contains("Facilitator is ill"), "{cohort_page}");

    let feed = anonymous
        .get(app.url(&feed_path))
        .send()
        .await
        .expect("feed")
        .text()
        .await
        .expect("body");
    let events = parse_icalendar("reschedule_updates_the_calendar_feed", &feed).expect("parsed");
    let event_of = |id: stillpoint_domain::CohortSessionId| {
        events
            .iter()
            .find(|event| event.starts_with(&format!("{id}@stillpoint|")))
            .expect("the same UID")
            .clone()
    };
    let moved_start = (week_seven.planned.start + SignedDuration::from_hours(1))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(
        event_of(week_seven.id),
        format!("{}@stillpoint|1|{moved_start}|CONFIRMED", week_seven.id)
    );
    let cancelled_event = event_of(week_eight.id);
    assert!(
        cancelled_event.contains("@stillpoint|1|"),
        "{cancelled_event}"
    );
    assert!(cancelled_event.ends_with("|CANCELLED"), "{cancelled_event}");

    // Every fetch is in the audit trail, as a read of Lucía's schedule by her own account.
    let fetches = {
        use stillpoint_app::ports::AuditStore as _;
        store
            .search_audit_events(
                &stillpoint_app::ports::AuditFilter {
                    patient: Some(app.demo.as_ref().expect("demo").patients[0].id),
                    ..stillpoint_app::ports::AuditFilter::default()
                },
                500,
            )
            .await
            .expect("audit")
            .into_iter()
            .filter(|event| event.event.resource_type == "CalendarFeed")
            .count()
    };
    assert_eq!(fetches, 2, "two fetches so far");

    // The demo caregiver, with whom Lucía shares her schedule, gets her group's sessions.
    let caregiver = app.browser_session("caregiver").await;
    let created = app.post_form(&caregiver, "/account/calendar", &[]).await;
    let (_, page) = text(created).await;
    let start = page.find("/calendar/").expect("feed address");
    let end = start + page[start..].find(".ics").expect("ics") + 4;
    let caregiver_feed = anonymous
        .get(app.url(&page[start..end]))
        .send()
        .await
        .expect("feed")
        .text()
        .await
        .expect("body");
    let caregiver_events =
        parse_icalendar("reschedule_updates_the_calendar_feed", &caregiver_feed).expect("parsed");
    assert_eq!(caregiver_events.len(), sessions.len());

    // A new address replaces the old one, and turning the feed off ends it.
    let replaced = app.post_form(&patient, "/account/calendar", &[]).await;
    assert_eq!(replaced.status(), StatusCode::OK);
    assert_eq!(
        anonymous
            .get(app.url(&feed_path))
            .send()
            .await
            .expect("feed")
            .status(),
        StatusCode::NOT_FOUND
    );
    let page = replaced.text().await.expect("body");
    let start = page.find("/calendar/").expect("feed address");
    let end = start + page[start..].find(".ics").expect("ics") + 4;
    let new_path = page[start..end].to_owned();
    assert_eq!(
        anonymous
            .get(app.url(&new_path))
            .send()
            .await
            .expect("feed")
            .status(),
        StatusCode::OK
    );
    let revoked = app
        .post_form(&patient, "/account/calendar/revoke", &[])
        .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous
            .get(app.url(&new_path))
            .send()
            .await
            .expect("feed")
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn lapsed_patient_is_welcomed_back(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "lapse_return").await else {
        return;
    };
    let store = &app.database.database;
    let demo = app.demo.as_ref().expect("demo");
    let lucia = demo.patients[0].id;
    let north: stillpoint_domain::CohortId = north_cohort(&app).parse().expect("id");

    // Lucía's page shows this week's plan in Spanish, with her next session.
    let patient = app.browser_session("patient").await;
    let (status, page) = get(&app, &patient, "/program").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Esta semana"), "{page}");
    // The theme of week 5 of the shipped online curriculum, in Spanish.
    assert!(page.contains("Pensamientos y emociones"), "{page}");
    assert!(
        !page.contains("Indagación"),
        "patients see no facilitator agenda"
    );
    assert!(page.contains("Su próxima sesión"), "{page}");
    assert!(page.contains("Clase de la semana 6"), "{page}");
    assert!(
        !page.contains("Volver en la semana"),
        "an active patient is not asked back"
    );

    // Nothing happens on day 13 after her last class; then, quiet for 14 days, she is marked
    // lapsed, and so is everyone else who stopped coming. Nobody leaves the roster.
    let last_class = store
        .list_cohort_sessions(north)
        .await
        .expect("sessions")
        .iter()
        .filter(|session| session.planned.start <= app.clock.now())
        .map(|session| session.planned.start)
        .max()
        .expect("held");
    let quiet_until = |days: i64| last_class + SignedDuration::from_hours(24 * days);
    app.clock
        .advance(quiet_until(13).duration_since(app.clock.now()));
    // Nobody is marked while no roll call shows a missed session.
    let marked = stillpoint_app::program::mark_lapses(store, app.clock.as_ref(), 14)
        .await
        .expect("lapse check");
    assert!(marked.is_empty(), "{marked:?}");
    // The week-6 class took place without Lucía.
    let week_six = store
        .list_cohort_sessions(north)
        .await
        .expect("sessions")
        .into_iter()
        .find(|session| {
            session.planned.kind == stillpoint_domain::schedule::SessionKind::Class { week: 6 }
        })
        .expect("week 6");
    let facilitator_id = demo.cohorts[0].1[0].0;
    store
        .put_attendance(
            &[stillpoint_app::ports::AttendanceEntry {
                session: week_six.id,
                patient: lucia,
                record: stillpoint_domain::attendance::AttendanceRecord {
                    mark: stillpoint_domain::attendance::AttendanceMark::Absent,
                    minutes_attended: 0,
                    makeup: None,
                },
            }],
            facilitator_id,
            app.clock.now(),
        )
        .await
        .expect("roll call");
    let marked = stillpoint_app::program::mark_lapses(store, app.clock.as_ref(), 14)
        .await
        .expect("lapse check");
    assert!(!marked.contains(&lucia));
    app.clock.advance(SignedDuration::from_hours(24 * 2));
    let marked = stillpoint_app::program::mark_lapses(store, app.clock.as_ref(), 14)
        .await
        .expect("lapse check");
    assert!(marked.contains(&lucia), "{marked:?}");
    assert_eq!(store.cohort_roster(north).await.expect("roster").len(), 8);
    let again = stillpoint_app::program::mark_lapses(store, app.clock.as_ref(), 14)
        .await
        .expect("lapse check");
    assert!(again.is_empty(), "a lapse is marked once");

    // Fifteen days on, the earlier session has ended; Lucía signs in again.
    let patient = app.browser_session("patient").await;
    let (_, page) = get(&app, &patient, "/program").await;
    assert!(page.contains("Puede volver cuando esté listo"), "{page}");
    assert!(page.contains("No hay nada que recuperar"), "{page}");
    let rejoin = app.post_form(&patient, "/program/rejoin", &[]).await;
    assert_eq!(rejoin.status(), StatusCode::SEE_OTHER);
    let state = store
        .find_enrolment(lucia)
        .await
        .expect("state")
        .expect("stored");
    assert_eq!(state.code(), "returned");
    let history = store.enrolment_history(lucia).await.expect("history");
    let lapse = history
        .iter()
        .find(|entry| entry.to_state == "lapsed")
        .expect("the lapse");
    assert_eq!(lapse.actor, None, "the system marked the lapse");
    let (_, page) = get(&app, &patient, "/program").await;
    assert!(!page.contains("Volver en la semana"), "{page}");
}

async fn referral_and_screening_forms_route_the_patient(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "referral_forms").await else {
        return;
    };
    let demo = app.demo.as_ref().expect("demo");
    let site = demo.sites[0].id.to_string();
    let clinician = app.browser_session("clinician").await;
    let (status, _) = get(&app, &clinician, "/patients/new").await;
    assert_eq!(status, StatusCode::OK);
    let referral = |birth_date: &'static str| {
        vec![
            ("site_id", site.clone()),
            ("given_name", "Rosa".to_owned()),
            ("family_name", "Quintero".to_owned()),
            ("birth_date", birth_date.to_owned()),
            ("language", "es".to_owned()),
            ("time_zone", "America/Chicago".to_owned()),
            ("condition", "M79.7".to_owned()),
        ]
    };
    let as_pairs = |fields: &[(&'static str, String)]| {
        fields
            .iter()
            .map(|(name, value)| (*name, value.clone()))
            .collect::<Vec<_>>()
    };
    let future = as_pairs(&referral("2030-01-01"));
    let bad = app
        .post_form(
            &clinician,
            "/patients/new",
            &future
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect::<Vec<_>>(),
        )
        .await;
    let (status, page) = text(bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("birth_date"), "{page}");
    assert!(page.contains("Rosa"), "the entered values stay");

    let valid = as_pairs(&referral("1961-04-23"));
    let created = app
        .post_form(
            &clinician,
            "/patients/new",
            &valid
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let screening_path = location(&created);
    assert!(screening_path.ends_with("/screening"));
    let (status, form) = get(&app, &clinician, &screening_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("Fibromyalgia (M79.7)"), "{form}");

    // A burden of 11 is rejected; a suicidality flag routes to a higher level of care.
    let out_of_range = app
        .post_form(
            &clinician,
            &screening_path,
            &[
                ("condition", "M79.7"),
                ("symptom_burden", "11"),
                ("interested", "yes"),
            ],
        )
        .await;
    let (status, page) = text(out_of_range).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("symptom_burden"), "{page}");
    let flagged = app
        .post_form(
            &clinician,
            &screening_path,
            &[
                ("condition", "M79.7"),
                ("symptom_burden", "7"),
                ("interested", "yes"),
                ("flag", "active_suicidality"),
            ],
        )
        .await;
    assert_eq!(flagged.status(), StatusCode::SEE_OTHER);
    let record_path = location(&flagged);
    let (_, record) = get(&app, &clinician, &record_path).await;
    // The clinician's interface is in Spanish.
    assert!(
        record.contains("Derivado a un nivel de atención más alto"),
        "{record}"
    );
    let patient_id: stillpoint_domain::PatientId = record_path
        .trim_start_matches("/patients/")
        .parse()
        .expect("id");
    let state = app
        .database
        .database
        .find_enrolment(patient_id)
        .await
        .expect("state")
        .expect("stored");
    assert_eq!(state.code(), "higher_level_of_care");

    // A facilitator refers no one.
    let facilitator = app.browser_session("facilitator").await;
    assert_eq!(
        get(&app, &facilitator, "/patients/new").await.0,
        StatusCode::FORBIDDEN
    );
}

stillpoint_test_support::on_both_databases!(
    curriculum_is_copied_edited_and_published,
    cohort_builder_plans_and_rejects_by_field,
    roll_call_records_attendance_and_rates,
    reschedule_updates_the_calendar_feed,
    lapsed_patient_is_welcomed_back,
    referral_and_screening_forms_route_the_patient,
);
