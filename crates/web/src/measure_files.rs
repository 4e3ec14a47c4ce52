//! The instruments bundled from `content/instruments/` and the measurement plans from
//! `content/measurement-plans/`.

use rust_embed::RustEmbed;
use stillpoint_app::measures::MeasureLibrary;
use stillpoint_domain::InvalidValue;

#[derive(RustEmbed)]
#[folder = "../../content/instruments/"]
#[include = "*.toml"]
struct Instruments;

#[derive(RustEmbed)]
#[folder = "../../content/measurement-plans/"]
#[include = "*.toml"]
struct Plans;

fn files<E: RustEmbed>() -> Result<Vec<(String, String)>, InvalidValue> {
    E::iter()
        .map(|path| {
            let data = E::get(&path)
                .map(|file| file.data.into_owned())
                .unwrap_or_default();
            let text = String::from_utf8(data).map_err(|error| {
                InvalidValue::new("instrument", format!("{path}: not UTF-8: {error}"))
            })?;
            Ok((path.into_owned(), text))
        })
        .collect()
}

/// Reads and checks every bundled instrument and plan.
pub fn load() -> Result<MeasureLibrary, InvalidValue> {
    MeasureLibrary::from_files(files::<Instruments>()?, files::<Plans>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_library_loads() {
        let library = load().expect("the bundled instruments and plans are valid");
        assert!(library.instrument("phq-9").is_some());
        assert!(library.plan_for("mbsr-online").is_some());
    }
}
