//! Translation catalogues (Fluent) and language negotiation.
//!
//! The catalogues shipped with Stillpoint are compiled into the binary from `content/locales/`.
//! A clinic adds or overrides a language without rebuilding by pointing `locales_dir` at a folder
//! with the same layout: one sub-folder per BCP 47 tag, holding `.ftl` files. A message missing
//! from a language falls back to English.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use rust_embed::RustEmbed;
use stillpoint_domain::{InvalidValue, Language};

pub mod dates;

#[derive(RustEmbed)]
#[folder = "../../content/locales/"]
#[include = "*.ftl"]
struct BundledLocales;

/// The language every other one falls back to, and the one whose catalogue must be complete.
pub const FALLBACK_LANGUAGE: &str = "en";

/// A catalogue that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("translation file {file} has a syntax error: {detail}; fix the line it names")]
    Syntax { file: String, detail: String },

    #[error("translation folder {folder} is not a language tag: {detail}")]
    BadTag { folder: String, detail: String },

    #[error("cannot read translation folder {path}: {detail}")]
    Unreadable { path: String, detail: String },

    #[error("no English catalogue was found; Stillpoint needs content/locales/en")]
    MissingFallback,
}

type Bundle = FluentBundle<FluentResource>;

/// Every loaded language, keyed by tag.
pub struct Catalogs {
    bundles: BTreeMap<String, Bundle>,
    /// Messages already reported missing, as (language, id), so each is logged once.
    reported: std::sync::Mutex<std::collections::BTreeSet<(String, String)>>,
}

impl std::fmt::Debug for Catalogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogs")
            .field("languages", &self.bundles.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A language the interface is offered in, with its name in that language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedLanguage {
    pub tag: String,
    pub name: String,
}

impl Catalogs {
    /// Loads the bundled catalogues, then the ones in `extra_dir` (which may add languages or
    /// replace messages of bundled ones).
    pub fn load(extra_dir: Option<&Path>) -> Result<Self, CatalogError> {
        let mut sources: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for file in BundledLocales::iter() {
            let Some((tag, _)) = file.split_once('/') else {
                continue;
            };
            let Some(content) = BundledLocales::get(&file) else {
                continue;
            };
            let text = String::from_utf8_lossy(&content.data).into_owned();
            sources
                .entry(tag.to_owned())
                .or_default()
                .push((file.to_string(), text));
        }
        if let Some(folder) = extra_dir {
            read_extra_folder(folder, &mut sources)?;
        }

        let mut bundles = BTreeMap::new();
        for (tag, files) in sources {
            bundles.insert(tag.clone(), build_bundle(&tag, files)?);
        }
        if !bundles.contains_key(FALLBACK_LANGUAGE) {
            return Err(CatalogError::MissingFallback);
        }

        Ok(Self {
            bundles,
            reported: std::sync::Mutex::default(),
        })
    }

    /// The languages on offer, in tag order.
    #[must_use]
    pub fn offered(&self) -> Vec<OfferedLanguage> {
        self.bundles
            .keys()
            .map(|tag| OfferedLanguage {
                tag: tag.clone(),
                name: self.format(tag, "language-name", None),
            })
            .collect()
    }

    /// Whether a catalogue exists for exactly this tag.
    #[must_use]
    pub fn supports(&self, tag: &str) -> bool {
        self.bundles.contains_key(tag)
    }

    /// The offered language closest to `language`: the same tag, else the same primary
    /// language (`es-MX` → `es`).
    #[must_use]
    pub fn closest(&self, language: &Language) -> Option<String> {
        if self.supports(language.as_str()) {
            return Some(language.as_str().to_owned());
        }
        self.bundles
            .keys()
            .find(|tag| tag.split('-').next() == Some(language.primary()))
            .cloned()
    }

    /// The offered language for a requested tag (the same tag, or the same primary language),
    /// or an error naming the field and the offered tags.
    pub fn offered_language(
        &self,
        field: &'static str,
        tag: &str,
    ) -> Result<Language, InvalidValue> {
        let requested =
            Language::parse(tag).map_err(|error| InvalidValue::new(field, error.problem))?;
        self.closest(&requested)
            .and_then(|offered| Language::parse(&offered).ok())
            .ok_or_else(|| {
                let offered: Vec<String> = self.bundles.keys().cloned().collect();
                InvalidValue::new(
                    field,
                    format!(
                        "'{requested}' is not offered; choose one of {}",
                        offered.join(", ")
                    ),
                )
            })
    }

    /// Picks a language from an `Accept-Language` header (RFC 9110 section 12.5.4), highest
    /// quality first; `None` when nothing offered matches.
    #[must_use]
    pub fn negotiate(&self, accept_language: &str) -> Option<String> {
        let mut ranges: Vec<(f32, usize, &str)> = accept_language
            .split(',')
            .enumerate()
            .filter_map(|(position, item)| {
                let mut parts = item.split(';');
                let range = parts.next()?.trim();
                let quality = parts
                    .find_map(|param| param.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (quality > 0.0 && !range.is_empty() && range != "*")
                    .then_some((quality, position, range))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));

        ranges
            .into_iter()
            .filter_map(|(_, _, range)| Language::parse(range).ok())
            .find_map(|language| self.closest(&language))
    }

    /// Formats message `id` in `tag`, falling back to English, then to the id itself.
    #[must_use]
    pub fn format(&self, tag: &str, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        for candidate in [tag, FALLBACK_LANGUAGE] {
            if candidate != tag {
                self.report_missing(tag, id);
            }
            let Some(bundle) = self.bundles.get(candidate) else {
                continue;
            };
            let Some(pattern) = bundle.get_message(id).and_then(|message| message.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, args, &mut errors);
            if !errors.is_empty() {
                tracing::warn!(
                    message_id = id,
                    language = candidate,
                    "translation has formatting errors"
                );
            }
            return text.into_owned();
        }
        self.report_missing(FALLBACK_LANGUAGE, id);
        id.to_owned()
    }

    /// Logs a warning the first time message `id` is found missing from `tag`. Later misses of
    /// the same message stay quiet, so a busy page or a batch of e-mails logs it once.
    fn report_missing(&self, tag: &str, id: &str) {
        let Ok(mut reported) = self.reported.lock() else {
            return;
        };
        if reported.insert((tag.to_owned(), id.to_owned())) {
            tracing::warn!(
                message_id = id,
                language = tag,
                "translation message is missing; using English, or the id when English lacks it too"
            );
        }
    }

    /// Returns whether message `id` exists in `tag` itself, without falling back.
    #[must_use]
    pub fn has_message(&self, tag: &str, id: &str) -> bool {
        self.bundles
            .get(tag)
            .is_some_and(|bundle| bundle.has_message(id))
    }

    /// Message ids present in English but missing from `tag`.
    #[must_use]
    pub fn missing_messages(&self, tag: &str) -> Vec<String> {
        let (Some(english), Some(bundle)) =
            (self.bundles.get(FALLBACK_LANGUAGE), self.bundles.get(tag))
        else {
            return Vec::new();
        };
        message_ids(english)
            .into_iter()
            .filter(|id| !bundle.has_message(id))
            .collect()
    }
}

fn message_ids(bundle: &Bundle) -> Vec<String> {
    // NOTE: fluent-bundle 0.16 has no iterator over a bundle's messages, so the ids are read
    // back from the English source files.
    let mut ids = Vec::new();
    for file in BundledLocales::iter().filter(|file| file.starts_with("en/")) {
        let Some(content) = BundledLocales::get(&file) else {
            continue;
        };
        for line in String::from_utf8_lossy(&content.data).lines() {
            if let Some((id, _)) = line.split_once(" =")
                && !id.starts_with(['#', ' ', '-'])
                && bundle.has_message(id)
            {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

fn read_extra_folder(
    folder: &Path,
    sources: &mut BTreeMap<String, Vec<(String, String)>>,
) -> Result<(), CatalogError> {
    let unreadable = |path: &Path, error: &std::io::Error| CatalogError::Unreadable {
        path: path.display().to_string(),
        detail: error.to_string(),
    };
    let entries = std::fs::read_dir(folder).map_err(|error| unreadable(folder, &error))?;
    for entry in entries {
        let entry = entry.map_err(|error| unreadable(folder, &error))?;
        if !entry.path().is_dir() {
            continue;
        }
        let tag = entry.file_name().to_string_lossy().into_owned();
        Language::parse(&tag).map_err(|error| CatalogError::BadTag {
            folder: entry.path().display().to_string(),
            detail: error.problem,
        })?;
        let files =
            std::fs::read_dir(entry.path()).map_err(|error| unreadable(&entry.path(), &error))?;
        for file in files {
            let path = file
                .map_err(|error| unreadable(&entry.path(), &error))?
                .path();
            if path.extension().is_some_and(|extension| extension == "ftl") {
                let text =
                    std::fs::read_to_string(&path).map_err(|error| unreadable(&path, &error))?;
                sources
                    .entry(tag.clone())
                    .or_default()
                    .push((path.display().to_string(), text));
            }
        }
    }
    Ok(())
}

fn build_bundle(tag: &str, files: Vec<(String, String)>) -> Result<Bundle, CatalogError> {
    let language_id = tag
        .parse()
        .map_err(
            |error: unic_langid::LanguageIdentifierError| CatalogError::BadTag {
                folder: tag.to_owned(),
                detail: error.to_string(),
            },
        )?;
    let mut bundle = FluentBundle::new_concurrent(vec![language_id]);
    // Unicode isolation marks around placeables would end up inside HTML attributes and tests;
    // every supported language is left-to-right.
    // NOTE: a right-to-left catalogue (Arabic, Hebrew) needs isolation turned back on.
    bundle.set_use_isolating(false);

    for (file, text) in files {
        let resource =
            FluentResource::try_new(text).map_err(|(_, errors)| CatalogError::Syntax {
                file: file.clone(),
                detail: errors.first().map(ToString::to_string).unwrap_or_default(),
            })?;
        // Later files (the clinic's folder) replace messages of earlier ones (the bundled set).
        bundle.add_resource_overriding(resource);
    }
    Ok(bundle)
}

/// Formats messages in one language; what templates call.
#[derive(Debug, Clone)]
pub struct Translator {
    catalogs: Arc<Catalogs>,
    tag: String,
}

impl Translator {
    #[must_use]
    pub fn new(catalogs: Arc<Catalogs>, tag: String) -> Self {
        Self { catalogs, tag }
    }

    #[must_use]
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The message `id`.
    #[must_use]
    pub fn t(&self, id: &str) -> String {
        self.catalogs.format(&self.tag, id, None)
    }

    /// The message `id` with one variable.
    #[must_use]
    pub fn t_with(&self, id: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), value.to_owned());
        self.catalogs.format(&self.tag, id, Some(&args))
    }

    /// Formats the message `id` with several variables.
    #[must_use]
    pub fn t_args(&self, id: &str, args: &FluentArgs<'_>) -> String {
        self.catalogs.format(&self.tag, id, Some(args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogs() -> Catalogs {
        Catalogs::load(None).expect("bundled catalogues load")
    }

    #[test]
    fn bundled_languages_are_english_and_spanish() {
        let tags: Vec<String> = catalogs().offered().into_iter().map(|l| l.tag).collect();
        assert_eq!(tags, ["en", "es"]);
    }

    #[test]
    fn spanish_catalogue_is_complete() {
        assert_eq!(catalogs().missing_messages("es"), Vec::<String>::new());
    }

    #[test]
    fn accept_language_follows_quality_order() {
        let catalogs = catalogs();
        let cases = [
            ("es-MX,es;q=0.9,en;q=0.8", Some("es")),
            ("fr-CA, en;q=0.5", Some("en")),
            ("en;q=0.2, es;q=0.9", Some("es")),
            ("fr, de;q=0.9", None),
            ("es;q=0, en", Some("en")),
            ("", None),
        ];
        for (header, expected) in cases {
            assert_eq!(catalogs.negotiate(header).as_deref(), expected, "{header}");
        }
    }

    #[test]
    fn missing_message_falls_back_to_english_then_id() {
        let catalogs = catalogs();
        assert_eq!(catalogs.format("fr", "nav-home", None), "Home");
        assert_eq!(
            catalogs.format("es", "no-such-message", None),
            "no-such-message"
        );
    }

    /// A log writer that keeps what was written, for checking warnings.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn missing_translation_logged_once() {
        let directory = tempfile::tempdir().expect("temporary folder");
        std::fs::create_dir_all(directory.path().join("fr")).expect("create");
        std::fs::write(
            directory.path().join("fr/main.ftl"),
            "language-name = Français\n",
        )
        .expect("write");
        let catalogs = Catalogs::load(Some(directory.path())).expect("loads");
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..50 {
                assert_eq!(catalogs.format("fr", "nav-home", None), "Home");
            }
        });
        let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("text");
        assert_eq!(
            log.matches("translation message is missing").count(),
            1,
            "{log}"
        );
        assert!(
            log.contains("message_id=\"nav-home\"") || log.contains("message_id=nav-home"),
            "{log}"
        );
    }

    #[test]
    fn clinic_folder_adds_a_language_and_overrides_messages() {
        let directory = tempfile::tempdir().expect("temporary folder");
        let folder = directory.path();
        std::fs::create_dir_all(folder.join("fr")).expect("create");
        std::fs::write(
            folder.join("fr/main.ftl"),
            "language-name = Français\nnav-home = Accueil\n",
        )
        .expect("write");
        std::fs::create_dir_all(folder.join("en")).expect("create");
        std::fs::write(
            folder.join("en/clinic.ftl"),
            "app-name = Riverbend Mindfulness\n",
        )
        .expect("write");

        let catalogs = Catalogs::load(Some(folder)).expect("loads");
        assert_eq!(catalogs.format("fr", "nav-home", None), "Accueil");
        assert_eq!(catalogs.format("fr", "nav-sites", None), "Sites");
        assert_eq!(
            catalogs.format("en", "app-name", None),
            "Riverbend Mindfulness"
        );
    }

    #[test]
    fn clinic_folder_with_syntax_error_names_the_file() {
        let directory = tempfile::tempdir().expect("temporary folder");
        let folder = directory.path();
        std::fs::create_dir_all(folder.join("fr")).expect("create");
        std::fs::write(folder.join("fr/broken.ftl"), "nav-home = {\n").expect("write");
        let error = Catalogs::load(Some(folder)).expect_err("syntax error");
        assert!(error.to_string().contains("broken.ftl"), "{error}");
    }
}
