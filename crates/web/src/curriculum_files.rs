//! The curricula bundled from `content/curricula/`: one folder per curriculum with one TOML
//! document per language.

use std::collections::BTreeMap;

use rust_embed::RustEmbed;
use stillpoint_domain::curriculum::{self, Curriculum, DocumentError};

#[derive(RustEmbed)]
#[folder = "../../content/curricula/"]
#[include = "*/*.toml"]
struct Bundled;

/// Reads every bundled curriculum, checking each against the curriculum rules.
pub fn load() -> Result<Vec<Curriculum>, DocumentError> {
    let mut folders: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for path in Bundled::iter() {
        let Some(file) = Bundled::get(&path) else {
            continue;
        };
        let text = String::from_utf8(file.data.into_owned()).map_err(|error| DocumentError {
            document: path.to_string(),
            problem: format!("not UTF-8: {error}"),
        })?;
        let folder = path.split('/').next().unwrap_or_default().to_owned();
        folders
            .entry(folder)
            .or_default()
            .push((path.into_owned(), text));
    }
    folders
        .into_iter()
        .map(|(folder, documents)| {
            let curriculum = curriculum::parse_documents(&documents)?;
            if curriculum.id.as_str() != folder {
                return Err(DocumentError {
                    document: folder,
                    problem: format!(
                        "the folder holds curriculum '{}'; name the folder after the id",
                        curriculum.id
                    ),
                });
            }
            Ok(curriculum)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_curricula_load() {
        let curricula = load().expect("the bundled curricula are valid");
        let ids: Vec<&str> = curricula
            .iter()
            .map(|curriculum| curriculum.id.as_str())
            .collect();
        assert_eq!(ids, ["mbsr-chronic-pain", "mbsr-gentle", "mbsr-online"]);
        for curriculum in &curricula {
            let languages: Vec<String> = curriculum
                .languages()
                .iter()
                .map(|language| language.as_str().to_owned())
                .collect();
            assert_eq!(languages, ["en", "es"], "{}", curriculum.id);
        }
    }
}
