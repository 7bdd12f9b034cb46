//! The results browser: `index.html` in a results folder and one page per run, opened straight
//! from the file system (no server). The index holds every run in one table (tabulator-tables
//! 6.5.3, MIT, vendored in assets/: a virtual table, so a 7,168-run grid scrolls as fast as a
//! small one), sortable and filterable by every column, each row with its sample sheet; below it
//! the folder's figures. A run's page holds its row, its resolved config, its loss curves (drawn
//! in the page from losses.csv's rows), its final samples and its checkpoints' sample sheets.

use crate::fsutil::write_atomic;
use crate::results::{LossLog, ResultsDir, RunRecord};
use anyhow::Result;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

const TABULATOR_JS: &[u8] = include_bytes!("../../assets/tabulator-6.5.3/tabulator.min.js");
const TABULATOR_CSS: &[u8] = include_bytes!("../../assets/tabulator-6.5.3/tabulator.min.css");
const TABULATOR_LICENSE: &[u8] = include_bytes!("../../assets/tabulator-6.5.3/LICENSE");
/// The index's own code: columns' formatters and filters, the table, the row count.
const BROWSER_JS: &[u8] = include_bytes!("../../assets/results-browser.js");
/// Where a folder keeps its copy of the table's code.
pub const ASSETS: &str = "assets/tabulator-6.5.3";

/// The result columns every index shows, with their headers.
const RESULTS: [(&str, &str); 11] = [
    ("family", "family"),
    ("status", "status"),
    ("i_prime", "I'"),
    ("inception_score", "IS"),
    ("fid", "FID"),
    ("inception_fid", "Inception FID"),
    ("inception_kid", "KID"),
    ("test_error", "test error %"),
    ("epochs_done", "epochs"),
    ("diverged_step", "diverged at"),
    ("wall_s", "wall s"),
];

/// A run's row as the index's table reads it: its results, and its config's fields.
fn row_values(r: &RunRecord) -> Result<Map<String, Value>> {
    let Value::Object(mut m) = serde_json::to_value(&r.result)? else {
        anyhow::bail!("a row serialises to an object")
    };
    let Value::Object(config) = serde_json::to_value(&r.config)? else {
        anyhow::bail!("a config serialises to an object")
    };
    for (k, v) in config {
        m.entry(k).or_insert(v);
    }
    Ok(m)
}

/// The config fields whose values differ between `rows` (the grid's hyper-parameters).
fn varying(rows: &[Map<String, Value>], fields: &[String]) -> Vec<String> {
    fields
        .iter()
        .filter(|f| rows.iter().any(|r| r.get(*f) != rows[0].get(*f)))
        .cloned()
        .collect()
}

/// Text safe inside HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `template` with each `{{KEY}}` of `values` replaced in one pass: an inserted value is never
/// scanned again, so user text that contains `{{DATA}}` stays text.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let known = after
            .find("}}")
            .and_then(|j| values.iter().find(|(k, _)| *k == &after[..j]));
        match known {
            Some((key, value)) => {
                out.push_str(value);
                rest = &after[key.len() + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// JSON safe inside a <script> element.
fn script_json(v: &Value) -> String {
    v.to_string().replace("</", "<\\/")
}

/// `index.html` of results folder `dir` over `rows`, with the folder's `figures` (file names),
/// and the table's code beside it. Returns the page's path.
pub fn write_index(
    dir: &Path,
    name: &str,
    rows: &[RunRecord],
    figures: &[PathBuf],
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir.join(ASSETS))?;
    for (file, bytes) in [
        (format!("{ASSETS}/tabulator.min.js"), TABULATOR_JS),
        (format!("{ASSETS}/tabulator.min.css"), TABULATOR_CSS),
        (format!("{ASSETS}/LICENSE"), TABULATOR_LICENSE),
        ("assets/results-browser.js".to_string(), BROWSER_JS),
    ] {
        let path = dir.join(file);
        if std::fs::read(&path).ok().as_deref() != Some(bytes) {
            write_atomic(&path, bytes)?;
        }
    }
    let values: Vec<Map<String, Value>> = rows.iter().map(row_values).collect::<Result<_>>()?;
    let config_fields: Vec<String> = match serde_json::to_value(crate::config::RunConfig::default())?
    {
        Value::Object(m) => m.keys().cloned().collect(),
        _ => vec![],
    };
    let mut hyper = varying(&values, &config_fields);
    hyper.retain(|f| f != "seed");
    hyper.push("seed".into());
    let mut columns: Vec<Value> =
        vec![json!({"title": "run", "field": "run_id", "formatter": "run"})];
    columns.push(
        json!({"title": "samples", "field": "run_id", "formatter": "thumb", "headerSort": false}),
    );
    for (field, title) in RESULTS {
        if values
            .iter()
            .any(|r| !r.get(field).is_none_or(Value::is_null))
        {
            columns.push(json!({"title": title, "field": field}));
        }
    }
    for f in &hyper {
        columns.push(json!({"title": f, "field": f}));
    }
    let data: Vec<Value> = values
        .into_iter()
        .map(|mut m| {
            m.retain(|k, _| {
                k == "run_id" || RESULTS.iter().any(|(f, _)| f == k) || hyper.contains(k)
            });
            let dir_has = |f: &str| {
                dir.join(m["run_id"].as_str().unwrap_or(""))
                    .join(f)
                    .is_file()
            };
            let (thumb, page) = (dir_has("samples.png"), dir_has("index.html"));
            m.insert("has_samples".into(), json!(thumb));
            m.insert("has_page".into(), json!(page));
            Value::Object(m)
        })
        .collect();
    let figures: String = figures
        .iter()
        .filter_map(|p| p.file_name())
        .map(|f| f.to_string_lossy().to_string())
        .filter(|f| f.ends_with(".png"))
        .map(|f| {
            format!(
                "<figure><img src=\"{0}\" alt=\"{0}\"><figcaption>{0}</figcaption></figure>\n",
                escape(&f)
            )
        })
        .collect();
    let page = fill(
        INDEX,
        &[
            ("NAME", &escape(name)),
            ("COUNT", &rows.len().to_string()),
            ("ASSETS", ASSETS),
            ("COLUMNS", &script_json(&Value::Array(columns))),
            ("DATA", &script_json(&Value::Array(data))),
            ("FIGURES", &figures),
        ],
    );
    let path = dir.join("index.html");
    write_atomic(&path, page.as_bytes())?;
    Ok(path)
}

/// `<run-id>/index.html`: the run's row, config, loss curves and sample sheets.
pub fn write_run_page(res: &ResultsDir, record: &RunRecord, log: &[LossLog]) -> Result<PathBuf> {
    let dir = res.run_dir(&record.run_id);
    let row = row_values(record)?;
    let rows: String = row
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            format!("<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(&v))
        })
        .collect();
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default();
    let mut sheets: Vec<String> =
        crate::results::events::sample_sheets(&dir, log.last().map_or(0, |l| l.step))
            .into_iter()
            .filter_map(|(step, p)| {
                let rel = p.strip_prefix(&dir).ok()?.to_string_lossy().to_string();
                Some(format!(
            "<figure><img src=\"{0}\" alt=\"{0}\"><figcaption>step {step}</figcaption></figure>",
            escape(&rel)
        ))
            })
            .collect();
    if dir.join("curves.png").is_file() {
        sheets.insert(0, "<figure><img src=\"curves.png\" alt=\"curves.png\"><figcaption>loss curves</figcaption></figure>".into());
    }
    let page = fill(
        RUN,
        &[
            ("ID", &escape(&record.run_id)),
            ("ROW", &rows),
            ("CONFIG", &escape(&config)),
            ("LOG", &script_json(&serde_json::to_value(log)?)),
            ("SHEETS", &sheets.join("\n")),
        ],
    );
    let path = dir.join("index.html");
    write_atomic(&path, page.as_bytes())?;
    Ok(path)
}

const INDEX: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{NAME}}: runs</title>
<link rel="stylesheet" href="{{ASSETS}}/tabulator.min.css">
<style>
body { font-family: sans-serif; margin: 1em 2em; }
figure { display: inline-block; margin: 0.5em; }
figure img { max-width: 48vw; }
.thumb { height: 40px; image-rendering: pixelated; }
</style></head>
<body>
<h1>{{NAME}}</h1>
<p>{{COUNT}} runs. Click a column's title to sort; type in the box under it to filter: a number
(1.5, &gt;1.5, &lt;=0.01), the family or status exactly, other text by substring.
<a href="summary.md">summary.md</a></p>
<div id="runs"></div>
<p id="shown"></p>
<h2>Figures</h2>
{{FIGURES}}
<script src="{{ASSETS}}/tabulator.min.js"></script>
<script>
const COLUMNS = {{COLUMNS}};
const RUNS = {{DATA}};
</script>
<script src="assets/results-browser.js"></script>
</body></html>
"##;

const RUN: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ID}}</title>
<style>
body { font-family: sans-serif; margin: 1em 2em; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
figure { display: inline-block; margin: 0.5em; }
svg { border: 1px solid #ccc; margin: 0.5em; }
</style></head>
<body>
<p><a href="../index.html">all runs</a></p>
<h1>{{ID}}</h1>
<h2>Loss curves</h2>
<div id="curves"></div>
<h2>Samples</h2>
{{SHEETS}}
<h2>Row</h2>
<table>{{ROW}}</table>
<h2>Resolved config</h2>
<pre>{{CONFIG}}</pre>
<script>
const LOG = {{LOG}};
// One SVG panel per group of the loss log's columns, against the epoch.
const panels = [["loss_d", "loss_g"], ["real", "fake", "margin"], ["k_t", "m_global", "gradient_penalty"]];
const colours = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
for (const fields of panels) {
  const series = fields.filter((f) => LOG.some((l) => l[f] !== null && l[f] !== undefined));
  if (!series.length || LOG.length === 0) continue;
  const W = 420, H = 260, P = 40;
  const xs = LOG.map((l) => l.epoch), ys = series.flatMap((f) => LOG.map((l) => l[f]).filter(Number.isFinite));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) || 1], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => P + (x - x0) / ((x1 - x0) || 1) * (W - 2 * P);
  const sy = (y) => H - P - (y - y0) / ((y1 - y0) || 1) * (H - 2 * P);
  let svg = `<svg width="${W}" height="${H}" role="img" aria-label="${series.join(", ")}">`;
  svg += `<text x="${P}" y="14" font-size="11">${y1.toPrecision(4)}</text><text x="${P}" y="${H - 24}" font-size="11">${y0.toPrecision(4)}</text>`;
  svg += `<text x="${W - P}" y="${H - 8}" font-size="11" text-anchor="end">epoch ${x1.toFixed(2)}</text>`;
  series.forEach((f, i) => {
    const pts = LOG.filter((l) => Number.isFinite(l[f])).map((l) => `${sx(l.epoch)},${sy(l[f])}`).join(" ");
    svg += `<polyline fill="none" stroke="${colours[i]}" stroke-width="1.5" points="${pts}"/>`;
    svg += `<text x="${W - P}" y="${16 + 13 * i}" font-size="11" text-anchor="end" fill="${colours[i]}">${f}</text>`;
  });
  document.getElementById("curves").insertAdjacentHTML("beforeend", svg + "</svg>");
}
</script>
</body></html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_filled_in_one_pass_and_user_text_stays_text() {
        let values = [("NAME", "{{DATA}} <b>"), ("DATA", "[1]")];
        assert_eq!(
            fill("<h1>{{NAME}}</h1>{{DATA}} {{OTHER}} {{", &values),
            "<h1>{{DATA}} <b></h1>[1] {{OTHER}} {{"
        );
        assert_eq!(escape("<script>&\""), "&lt;script&gt;&amp;&quot;");
    }
}
