//! Reading runs*.csv back: the result columns by name, the config columns into a [`RunConfig`].

use super::{config_fields, result_columns, ResultColumns, RunRecord};
use crate::config::RunConfig;
use anyhow::{Context, Result};
use std::path::Path;

/// Parses a CSV cell back into JSON: bool, number, or string.
fn cell_value(s: &str) -> serde_json::Value {
    if let Ok(b) = s.parse::<bool>() {
        return b.into();
    }
    if let Ok(i) = s.parse::<i64>() {
        return i.into();
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() => f.into(),
        _ => s.into(),
    }
}

/// Result columns every runs.csv has had since its first version (the others came later and
/// default when absent): a file without one was cut by hand or by a spreadsheet, and reading it
/// would report that column's values as missing, and the next rewrite would drop them.
const ALWAYS: [&str; 10] = [
    "run_id",
    "family",
    "status",
    "i_prime",
    "i_prime_printed",
    "inception_score",
    "test_error",
    "final_loss_d",
    "final_loss_g",
    "diverged_step",
];

/// Reads one runs*.csv; a torn last line (no newline) is ignored, an empty file has no rows.
pub fn read_rows(path: &Path) -> Result<Vec<RunRecord>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_rows(&bytes, path)
}

/// The rows of runs.csv text `bytes` (`path` names it in errors).
pub(super) fn parse_rows(bytes: &[u8], path: &Path) -> Result<Vec<RunRecord>> {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &bytes[..0],
    };
    let mut rdr = csv::ReaderBuilder::new().from_reader(complete);
    let head = rdr
        .headers()
        .with_context(|| format!("{}: line 1: not a runs.csv header", path.display()))?
        .clone();
    let cut = |c: &&&str| !head.is_empty() && !head.iter().any(|h| h == **c);
    if let Some(missing) = ALWAYS.iter().find(cut) {
        anyhow::bail!(
            "{}: line 1: no `{missing}` column: every runs.csv has one (cut by hand or by a spreadsheet?); nothing was read or rewritten",
            path.display()
        );
    }
    let results = result_columns();
    let optional: Vec<String> = config_fields(&RunConfig::default())
        .into_iter()
        .filter_map(|(k, v)| v.is_null().then_some(k))
        .collect();
    let mut out = vec![];
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{}: line {line}: not a CSV row", path.display()))?;
        let result: ResultColumns = rec.deserialize(Some(&head)).map_err(|e| {
            let column = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err
                    .field()
                    .and_then(|j| head.get(j as usize))
                    .map(|h| format!("column {h}: "))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            anyhow::anyhow!("{}: line {line}: {column}{e}", path.display())
        })?;
        let mut config = serde_json::Map::new();
        for (j, h) in head
            .iter()
            .enumerate()
            .filter(|(_, h)| !results.iter().any(|r| r == h))
        {
            let cell = rec.get(j).unwrap_or("");
            // An optional field's empty cell is its default, unset.
            if !(cell.is_empty() && optional.iter().any(|o| o == h)) {
                config.insert(h.to_string(), cell_value(cell));
            }
        }
        let config: RunConfig = serde_json::from_value(serde_json::Value::Object(config))
            .with_context(|| {
                format!(
                    "{}: line {line}: config columns do not form a run config",
                    path.display()
                )
            })?;
        // The id is the hash of the config: a row whose config columns were edited, or whose id
        // is anything else (a path, markup), is not a row `ebgan run` wrote.
        let id = config.run_id();
        if result.run_id != id {
            anyhow::bail!(
                "{}: line {line}: run_id `{}` is not the id of its config columns ({id}): edited by hand? nothing was read or rewritten",
                path.display(),
                result.run_id.escape_debug()
            );
        }
        out.push(RunRecord { result, config });
    }
    Ok(out)
}
