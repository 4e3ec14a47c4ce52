//! `stillpoint score`: scores a CSV of responses to one instrument, as exported from REDCap or
//! a spreadsheet, for researchers and for importing a clinic's historical data.
//!
//! Each row is one response and each item is a column, named by the item's id (`9`) or ending
//! in `_` and the id (`phq9_9`, as REDCap names variables). Empty cells are unanswered items,
//! scored under the instrument's missing-item rule. Other columns (a record id, a date) are
//! copied to the output unchanged, followed by each scale's raw score, reported score, band and
//! incomplete flag, the safety rules the row fired, and the problems found. A bad row is
//! reported in its `problems` column and the other rows are still scored.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write};
use std::path::Path;

use anyhow::{Context as _, bail};
use stillpoint_app::measures::MeasureLibrary;
use stillpoint_domain::measures::instrument::{Answers, Instrument};
use stillpoint_domain::measures::safety;

/// Rows between updates of the progress line.
const PROGRESS_EVERY: usize = 1_000;

/// The counts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreSummary {
    pub rows: usize,
    /// Rows with at least one problem.
    pub rows_with_problems: usize,
}

/// Scores `input` with the bundled instrument `instrument_id` and writes the result to
/// `output` as CSV.
pub fn run(
    instrument_id: &str,
    input: &Path,
    output: &mut dyn Write,
) -> anyhow::Result<ScoreSummary> {
    let library =
        stillpoint_web::measure_files::load().context("the bundled instruments are invalid")?;
    score_file(&library, instrument_id, input, output)
}

/// Scores `input` with an instrument from `library`.
pub fn score_file(
    library: &MeasureLibrary,
    instrument_id: &str,
    input: &Path,
    output: &mut dyn Write,
) -> anyhow::Result<ScoreSummary> {
    let Some(instrument) = library.instrument(instrument_id) else {
        let known: Vec<String> = library.instruments().map(|i| i.id.to_string()).collect();
        bail!(
            "'{instrument_id}' is not an instrument; use one of: {}",
            known.join(", ")
        );
    };
    let total_rows = count_rows(input)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(input)
        .with_context(|| format!("cannot read {}", input.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: the first row must name the columns", input.display()))?
        .clone();
    let columns = map_columns(instrument, &headers)?;

    let mut writer = csv::Writer::from_writer(output);
    writer.write_record(output_header(instrument, &headers, &columns))?;

    let progress = Progress::new(total_rows);
    let mut summary = ScoreSummary {
        rows: 0,
        rows_with_problems: 0,
    };
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record =
            record.with_context(|| format!("{}: row {line} is not valid CSV", input.display()))?;
        let (cells, problems) = score_row(instrument, &headers, &columns, &record);
        summary.rows += 1;
        if !problems.is_empty() {
            summary.rows_with_problems += 1;
        }
        let mut out = cells;
        out.push(problems.join("; "));
        writer.write_record(&out)?;
        progress.update(summary.rows);
    }
    writer.flush()?;
    progress.finish(summary.rows);
    Ok(summary)
}

/// Finds the column of each item. Returns the item id for each column index that contains one.
fn map_columns(
    instrument: &Instrument,
    headers: &csv::StringRecord,
) -> anyhow::Result<BTreeMap<usize, String>> {
    let mut columns = BTreeMap::new();
    for item in &instrument.items {
        let suffix = format!("_{}", item.id);
        let matches: Vec<usize> = headers
            .iter()
            .enumerate()
            .filter(|(_, name)| {
                let name = name.trim();
                name == item.id || name.ends_with(&suffix)
            })
            .map(|(index, _)| index)
            .collect();
        match matches.as_slice() {
            [] => {}
            [index] => {
                columns.insert(*index, item.id.clone());
            }
            _ => bail!(
                "several columns match item '{}'; rename all but one so that only one is '{}' or ends in '{suffix}'",
                item.id,
                item.id
            ),
        }
    }
    if columns.is_empty() {
        let ids: Vec<&str> = instrument
            .items
            .iter()
            .map(|item| item.id.as_str())
            .collect();
        bail!(
            "no column matches an item of {}; name the item columns {} (or end them in _ and the id)",
            instrument.short_name,
            ids.join(", ")
        );
    }
    Ok(columns)
}

fn output_header(
    instrument: &Instrument,
    headers: &csv::StringRecord,
    columns: &BTreeMap<usize, String>,
) -> Vec<String> {
    let mut header: Vec<String> = headers
        .iter()
        .enumerate()
        .filter(|(index, _)| !columns.contains_key(index))
        .map(|(_, name)| name.to_owned())
        .collect();
    for scale in &instrument.scales {
        for part in ["raw", "score", "band", "incomplete"] {
            header.push(format!("{}_{part}", scale.code));
        }
    }
    header.push("flags".to_owned());
    header.push("problems".to_owned());
    header
}

/// Scores one row. Returns the output cells without the problems column, and the problems.
fn score_row(
    instrument: &Instrument,
    headers: &csv::StringRecord,
    columns: &BTreeMap<usize, String>,
    record: &csv::StringRecord,
) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut answers = Answers::new();
    let mut cells = Vec::new();
    for (index, value) in record.iter().enumerate() {
        let Some(item) = columns.get(&index) else {
            cells.push(value.to_owned());
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match value.parse::<u8>() {
            Ok(number) => {
                answers.insert(item.clone(), number);
            }
            Err(_) => problems.push(format!(
                "column '{}' holds '{value}', which is not a whole number",
                headers.get(index).unwrap_or_default()
            )),
        }
    }
    if let Err(error) = instrument.check_values(&answers) {
        problems.push(error.to_string());
    }

    let valid = problems.is_empty();
    let scores = if valid {
        instrument.score(&answers)
    } else {
        Vec::new()
    };
    for scale in &instrument.scales {
        let score = scores
            .iter()
            .find(|score| score.scale == scale.code)
            .map(|score| &score.outcome);
        match score {
            Some(Ok(score)) => {
                cells.push(number(score.raw));
                cells.push(number(score.reported));
                cells.push(score.band.clone().unwrap_or_default());
                cells.push(score.incomplete.to_string());
            }
            Some(Err(error)) => {
                problems.push(format!("{}: {error}", scale.code));
                cells.extend([
                    String::new(),
                    String::new(),
                    String::new(),
                    "true".to_owned(),
                ]);
            }
            None => cells.extend([String::new(), String::new(), String::new(), String::new()]),
        }
    }
    // The safety rules run on every row, bad ones included: a row with item 9 above 0 and a
    // typing error elsewhere still needs its flag.
    let flags = safety::evaluate(instrument, &answers, &scores, &[])
        .map(|trigger| trigger.rules.join(" "))
        .unwrap_or_default();
    cells.push(flags);
    (cells, problems)
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Counts the data rows, for the progress line.
fn count_rows(input: &Path) -> anyhow::Result<usize> {
    let mut reader = csv::Reader::from_path(input)
        .with_context(|| format!("cannot read {}", input.display()))?;
    let mut rows = 0;
    let mut record = csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .with_context(|| format!("{}: row {} is not valid CSV", input.display(), rows + 2))?
    {
        rows += 1;
    }
    Ok(rows)
}

/// A progress line on standard error, shown only when it is a terminal.
struct Progress {
    total: usize,
    shown: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            shown: std::io::stderr().is_terminal() && total >= PROGRESS_EVERY,
        }
    }

    fn update(&self, done: usize) {
        if self.shown && done.is_multiple_of(PROGRESS_EVERY) {
            let width = 30;
            let filled = done * width / self.total.max(1);
            eprint!(
                "\r[{}{}] {done}/{} rows",
                "#".repeat(filled),
                " ".repeat(width - filled.min(width)),
                self.total
            );
        }
    }

    fn finish(&self, done: usize) {
        if self.shown {
            eprintln!("\r{done}/{} rows scored{}", self.total, " ".repeat(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score_text(instrument: &str, text: &str) -> (String, ScoreSummary) {
        let mut input = tempfile::NamedTempFile::new().expect("temporary file");
        input.write_all(text.as_bytes()).expect("written");
        let library = stillpoint_web::measure_files::load().expect("bundled library");
        let mut output = Vec::new();
        let summary = score_file(&library, instrument, input.path(), &mut output).expect("scored");
        (String::from_utf8(output).expect("UTF-8"), summary)
    }

    /// PHQ-9 rows in REDCap's naming: sums and bands as published (Kroenke, Spitzer and
    /// Williams 2001), item 9 flagged, and bad rows reported without stopping the run.
    #[test]
    fn scores_redcap_phq9_export() {
        let text = "record_id,phq9_1,phq9_2,phq9_3,phq9_4,phq9_5,phq9_6,phq9_7,phq9_8,phq9_9\n\
                    r1,3,3,2,2,1,1,0,0,0\n\
                    r2,0,0,0,0,0,0,0,0,1\n\
                    r3,0,0,,0,0,0,0,0,0\n\
                    r4,0,0,7,0,0,0,0,0,0\n\
                    r5,0,x,0,0,0,0,0,0,0\n\
                    r6,0,0,N/A,0,0,0,0,0,2\n";
        let (output, summary) = score_text("phq-9", text);
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(
            lines[0],
            "record_id,total_raw,total_score,total_band,total_incomplete,flags,problems"
        );
        assert_eq!(lines[1], "r1,12,12,moderate,false,,");
        assert_eq!(lines[2], "r2,1,1,minimal,false,phq9_item9,");
        assert!(
            lines[3].starts_with("r3,,,,true,,total: the form cannot be scored"),
            "{}",
            lines[3]
        );
        assert!(
            lines[4].contains("item '3' has the value 7"),
            "{}",
            lines[4]
        );
        assert!(
            lines[5].contains("'x', which is not a whole number"),
            "{}",
            lines[5]
        );
        // A bad cell elsewhere does not hide the item-9 flag.
        assert!(lines[6].starts_with("r6,,,,,phq9_item9,"), "{}", lines[6]);
        assert_eq!(summary.rows, 6);
        assert_eq!(summary.rows_with_problems, 4);
    }

    #[test]
    fn unknown_instrument_and_columns_are_named() {
        let mut input = tempfile::NamedTempFile::new().expect("temporary file");
        input.write_all(b"id,a,b\n1,2,3\n").expect("written");
        let library = stillpoint_web::measure_files::load().expect("bundled library");
        let error = score_file(&library, "phq-99", input.path(), &mut Vec::new())
            .expect_err("unknown instrument");
        assert!(error.to_string().contains("'phq-99' is not an instrument"));
        let error = score_file(&library, "gad-7", input.path(), &mut Vec::new())
            .expect_err("no item columns");
        assert!(
            error
                .to_string()
                .contains("no column matches an item of GAD-7"),
            "{error}"
        );
    }
}
