//! The consent documents bundled from `content/consent/`, with an optional folder of the same
//! layout whose files replace or add to them, so a clinic can revise texts or add a language
//! without rebuilding.

use std::path::Path;

use rust_embed::RustEmbed;
use stillpoint_app::consent::ConsentLibrary;

#[derive(RustEmbed)]
#[folder = "../../content/consent/"]
#[include = "*/*.md"]
struct Bundled;

/// A consent folder or document that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConsentFilesError {
    #[error("cannot read the consent folder {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Loads the bundled documents, with the files under `folder` (when given) replacing bundled
/// files of the same path or adding new ones.
pub fn load(folder: Option<&Path>) -> Result<ConsentLibrary, ConsentFilesError> {
    let mut files: std::collections::BTreeMap<String, String> = Bundled::iter()
        .filter_map(|path| {
            let file = Bundled::get(&path)?;
            let text = String::from_utf8(file.data.into_owned()).ok()?;
            Some((path.into_owned(), text))
        })
        .collect();
    if let Some(folder) = folder {
        for (path, text) in read_folder(folder)? {
            files.insert(path, text);
        }
    }
    ConsentLibrary::from_files(files).map_err(|error| {
        ConsentFilesError::Invalid(format!("consent documents: {}", error.problem))
    })
}

fn read_folder(folder: &Path) -> Result<Vec<(String, String)>, ConsentFilesError> {
    let read_error = |path: &Path, source| ConsentFilesError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(|error| read_error(folder, error))? {
        let document_folder = entry.map_err(|error| read_error(folder, error))?.path();
        if !document_folder.is_dir() {
            continue;
        }
        let id = document_folder
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_owned();
        for file in std::fs::read_dir(&document_folder)
            .map_err(|error| read_error(&document_folder, error))?
        {
            let path = file
                .map_err(|error| read_error(&document_folder, error))?
                .path();
            if path.extension().and_then(|extension| extension.to_str()) != Some("md") {
                continue;
            }
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).map_err(|error| read_error(&path, error))?;
            files.push((format!("{id}/{name}"), text));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_documents_load() {
        let library = load(None).expect("the bundled consent documents are valid");
        let ids = library.ids();
        for id in [
            "telehealth-video",
            "data-use-privacy",
            "practice-risks",
            "monitoring-limits",
            "caregiver-sharing",
        ] {
            assert!(ids.contains(&id), "{id} is bundled");
            for language in ["en", "es"] {
                let language = stillpoint_domain::Language::parse(language).expect("valid");
                let document = library.document(id, &language).expect("document");
                assert_eq!(document.language, language, "{id} exists in {language}");
            }
        }
        assert_eq!(
            ids.last(),
            Some(&"caregiver-sharing"),
            "the optional one comes last"
        );
    }

    #[test]
    fn folder_adds_a_language() {
        let folder = tempfile::tempdir().expect("temp");
        let document = folder.path().join("practice-risks");
        std::fs::create_dir(&document).expect("folder");
        std::fs::write(
            document.join("fr.md"),
            "+++\nid = \"practice-risks\"\nversion = 1\nlanguage = \"fr\"\ntitle = \"Risques\"\nsummary = \"Résumé.\"\nrequired = true\n+++\nTexte.\n",
        )
        .expect("write");
        let library = load(Some(folder.path())).expect("valid");
        let french = stillpoint_domain::Language::parse("fr").expect("valid");
        assert_eq!(
            library
                .document("practice-risks", &french)
                .expect("document")
                .title,
            "Risques"
        );

        std::fs::write(
            document.join("de.md"),
            "+++\nid = \"practice-risks\"\nversion = 2\nlanguage = \"de\"\ntitle = \"R\"\nsummary = \"S\"\nrequired = true\n+++\nText.\n",
        )
        .expect("write");
        assert!(
            load(Some(folder.path())).is_err(),
            "a version mismatch is refused"
        );
    }
}
