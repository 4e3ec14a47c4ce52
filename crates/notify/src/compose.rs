//! Message text from the translation catalogues, in the recipient's language and time zone.
//!
//! Each kind has a subject and a body (`message-{kind}-subject`, `message-{kind}`). E-mail adds
//! a link to Stillpoint, the one-click unsubscribe line when the kind may be turned off, and
//! the clinic's name. A message missing from the recipient's language comes out in
//! English, and the catalogue logs a warning the first time.

use std::fmt::Write as _;
use std::sync::Arc;

use fluent_bundle::FluentArgs;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use stillpoint_app::notify::{ComposeRequest, ComposedMessage, Composer, Subject};
use stillpoint_i18n::{Catalogs, Translator, dates};

/// Composes messages from the catalogues.
#[derive(Debug, Clone)]
pub struct CatalogComposer {
    catalogs: Arc<Catalogs>,
    clinic_name: String,
}

impl CatalogComposer {
    #[must_use]
    pub fn new(catalogs: Arc<Catalogs>, clinic_name: impl Into<String>) -> Self {
        Self {
            catalogs,
            clinic_name: clinic_name.into(),
        }
    }

    fn translator(&self, request: &ComposeRequest<'_>) -> Translator {
        let tag = self
            .catalogs
            .closest(request.language)
            .unwrap_or_else(|| stillpoint_i18n::FALLBACK_LANGUAGE.to_owned());
        Translator::new(self.catalogs.clone(), tag)
    }
}

impl Composer for CatalogComposer {
    fn compose(&self, request: &ComposeRequest<'_>) -> ComposedMessage {
        let tr = self.translator(request);
        let id = format!("message-{}", request.kind.code().replace('_', "-"));
        let args = subject_args(&tr, request.subject, request.zone, request.now);
        let subject = tr.t_args(&format!("{id}-subject"), &args);
        let body = tr.t_args(&id, &args);
        let open = tr.t_with("message-open", "link", &request.link);
        let sent_by = tr.t_with("message-sent-by", "clinic", &self.clinic_name);
        let unsubscribe = request
            .unsubscribe
            .as_deref()
            .map(|link| tr.t_with("message-unsubscribe", "link", link));

        let mut text = format!("{body}\n\n{open}\n\n");
        if let Some(line) = &unsubscribe {
            let _ = write!(text, "{line}\n\n");
        }
        text.push_str(&sent_by);
        text.push('\n');

        let html = html_body(&tr, request, &body, &sent_by);
        let sms = format!("{}: {body} {}", self.clinic_name, request.link);
        ComposedMessage {
            email_subject: subject,
            email_text: text,
            email_html: html,
            sms,
        }
    }
}

/// Builds the HTML part: the same text as the plain part, with the links as links.
fn html_body(tr: &Translator, request: &ComposeRequest<'_>, body: &str, sent_by: &str) -> String {
    let language = escape(tr.tag());
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"{language}\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family: sans-serif; font-size: 16px; line-height: 1.5\">\n<p>{}</p>\n\
         <p><a href=\"{}\">{}</a></p>\n",
        escape(body),
        escape(body),
        escape(&request.link),
        escape(&tr.t("message-open-button")),
    );
    if let Some(link) = &request.unsubscribe {
        let _ = writeln!(
            html,
            "<p style=\"font-size: 14px\"><a href=\"{}\">{}</a></p>",
            escape(link),
            escape(&tr.t("message-unsubscribe-link"))
        );
    }
    let _ = write!(
        html,
        "<p style=\"font-size: 14px\">{}</p>\n</body>\n</html>\n",
        escape(sent_by)
    );
    html
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Builds the variables of a message: session times as "tomorrow at 18:30" in the recipient's
/// zone.
fn subject_args<'a>(
    tr: &Translator,
    subject: &Subject,
    zone: &TimeZone,
    now: Timestamp,
) -> FluentArgs<'a> {
    let mut args = FluentArgs::new();
    match subject {
        Subject::Session { start, .. } | Subject::SessionCancelled { start, .. } => {
            args.set("when", when(tr, *start, zone, now));
        }
        Subject::SessionRescheduled {
            previous_start,
            start,
            ..
        } => {
            args.set("previous", when(tr, *previous_start, zone, now));
            args.set("when", when(tr, *start, zone, now));
        }
        _ => {}
    }
    args
}

/// "today at 18:30", "tomorrow at 18:30" or "on Tuesday 9 March 2027 at 18:30", in the
/// recipient's zone and relative to when the message goes out.
fn when(tr: &Translator, instant: Timestamp, zone: &TimeZone, now: Timestamp) -> String {
    let local = instant.to_zoned_datetime(zone.clone());
    let today = now.to_zoned_datetime(zone.clone()).date();
    let time = local.strftime("%H:%M").to_string();
    let mut args = FluentArgs::new();
    args.set("time", time);
    if local.date() == today {
        tr.t_args("message-when-today", &args)
    } else if today
        .tomorrow()
        .is_ok_and(|tomorrow| tomorrow == local.date())
    {
        tr.t_args("message-when-tomorrow", &args)
    } else {
        args.set("date", dates::long_date(tr, local.date()));
        tr.t_args("message-when-date", &args)
    }
}

#[cfg(test)]
mod tests {
    use stillpoint_domain::Language;
    use stillpoint_domain::notify::MessageKind;

    use super::*;

    fn composer() -> CatalogComposer {
        CatalogComposer::new(
            Arc::new(Catalogs::load(None).expect("catalogues")),
            "Lakeside Clinic",
        )
    }

    fn reminder(language: &str, now: &str) -> ComposedMessage {
        let zone = TimeZone::get("America/Chicago").expect("zone");
        let language = Language::parse(language).expect("language");
        let subject = Subject::Session {
            session: "01890000-0000-7000-8000-000000000001".parse().expect("id"),
            start: "2027-03-10T00:30:00Z".parse().expect("instant"),
            lead_minutes: 1440,
        };
        composer().compose(&ComposeRequest {
            kind: MessageKind::SessionReminder,
            language: &language,
            zone: &zone,
            subject: &subject,
            now: now.parse().expect("instant"),
            link: "https://mbsr.example.org/program".to_owned(),
            unsubscribe: Some("https://mbsr.example.org/unsubscribe?x=<1>".to_owned()),
        })
    }

    #[test]
    fn session_reminder_local_time_only() {
        // 00:30 UTC on 10 March 2027 is 18:30 on 9 March in Chicago (CST, UTC-6).
        let message = reminder("en", "2027-03-09T00:30:00Z");
        assert_eq!(
            message.email_subject,
            "Reminder: your group session tomorrow at 18:30"
        );
        assert!(
            message
                .email_text
                .starts_with("Your group session starts tomorrow at 18:30.")
        );
        assert!(
            message
                .email_text
                .contains("Open Stillpoint: https://mbsr.example.org/program")
        );
        assert!(message.email_text.contains("Sent by Lakeside Clinic."));
        assert!(message.email_html.contains("<html lang=\"en\">"));
        assert!(
            message.email_html.contains("x=&lt;1&gt;"),
            "links are escaped"
        );
        assert!(
            message
                .sms
                .starts_with("Lakeside Clinic: Your group session starts")
        );
    }

    #[test]
    fn spanish_reminder_says_today() {
        let message = reminder("es", "2027-03-09T23:30:00Z");
        assert_eq!(
            message.email_subject,
            "Recordatorio: su sesión de grupo hoy a las 18:30"
        );
        assert!(message.email_html.contains("<html lang=\"es\">"));
    }

    #[test]
    fn missing_translation_uses_english() {
        let folder =
            std::env::temp_dir().join(format!("stillpoint-compose-{}", std::process::id()));
        std::fs::create_dir_all(folder.join("fr")).expect("folder");
        std::fs::write(folder.join("fr/main.ftl"), "language-name = Français\n").expect("file");
        let catalogs = Arc::new(Catalogs::load(Some(&folder)).expect("catalogues"));
        let composer = CatalogComposer::new(catalogs, "Lakeside Clinic");
        let zone = TimeZone::UTC;
        let language = Language::parse("fr").expect("language");
        let message = composer.compose(&ComposeRequest {
            kind: MessageKind::MeasureDue,
            language: &language,
            zone: &zone,
            subject: &Subject::Lapse {
                patient: "01890000-0000-7000-8000-000000000002".parse().expect("id"),
                since: Timestamp::UNIX_EPOCH,
            },
            now: Timestamp::UNIX_EPOCH,
            link: "https://mbsr.example.org/measures".to_owned(),
            unsubscribe: None,
        });
        let _ = std::fs::remove_dir_all(&folder);
        assert_eq!(message.email_subject, "A short check-in is ready");
        assert!(!message.email_text.contains("Stop these messages"));
    }
}
