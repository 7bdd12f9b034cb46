//! An experiment file: its name, dataset, `[common]` and `[[grid]]` tables, `[slurm]` table,
//! and the plan they expand to.

use super::kinds::Dataset;
use super::run_config::{GridSpec, RunConfig};
use super::shard::Shard;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most runs an experiment file may expand to (the full Table 1 grid with EBGAN-PT is
/// 7,168): a file listing far more is most likely a mistake, and expanding it would exhaust
/// memory before any error. `ebgan --max-runs N` raises it.
pub const DEFAULT_MAX_RUNS: u64 = 100_000;
static MAX_RUNS: AtomicU64 = AtomicU64::new(DEFAULT_MAX_RUNS);

/// Sets the limit [`Experiment::parse`] holds files to (`ebgan --max-runs`).
pub fn set_max_runs(n: u64) {
    MAX_RUNS.store(n, Ordering::Relaxed);
}

/// The longest experiment name: it becomes a folder name and a Slurm job name.
const MAX_NAME: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExperimentFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_dataset")]
    dataset: Dataset,
    /// Where the dataset lives (relative to the working directory); the dataset's environment
    /// variable (EBGAN_CELEBA, EBGAN_LSUN, EBGAN_IMAGENET) overrides it; default <data>/<dataset>.
    data_root: Option<String>,
    /// ImageNet: a file of WordNet ids (one per line) restricting training to those classes.
    wnids: Option<String>,
    #[serde(default)]
    common: GridSpec,
    grid: Vec<GridSpec>,
    #[serde(default)]
    slurm: SlurmSettings,
    /// FID-Inception weights (safetensors) for the FID and KID of image runs.
    inception: Option<String>,
}

fn default_dataset() -> Dataset {
    Dataset::Mnist
}

/// Table 1's names, accepted as aliases of the fields.
const ALIASES: [(&str, &str); 7] = [
    ("n_layer_g", "nLayerG"),
    ("size_g", "sizeG"),
    ("n_layer_d", "nLayerD"),
    ("size_d", "sizeD"),
    ("dropout_d", "dropoutD"),
    ("optim_d", "optimD"),
    ("optim_g", "optimG"),
];

/// Where `key` is set for grid `g` (0-based): its line in that `[[grid]]` table, else in
/// `[common]`; with the key and value as written. None when it is not written (a default).
fn locate(text: &str, g: usize, key: &str) -> Option<(usize, String, String)> {
    let names: Vec<&str> = std::iter::once(key)
        .chain(ALIASES.iter().filter(|(k, _)| *k == key).map(|(_, a)| *a))
        .collect();
    // (table name, first line, lines) of every table; the top level is "".
    let mut tables: Vec<(String, usize, Vec<&str>)> = vec![(String::new(), 1, vec![])];
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            let name = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            tables.push((name, i + 2, vec![]));
        } else if let Some(last) = tables.last_mut() {
            last.2.push(line);
        }
    }
    let grid = tables.iter().filter(|t| t.0 == "grid").nth(g);
    let common = tables.iter().find(|t| t.0 == "common");
    for (_, first, lines) in grid.into_iter().chain(common) {
        for (j, line) in lines.iter().enumerate() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            if names.contains(&k.trim()) {
                let value = v.split('#').next().unwrap_or("").trim().to_string();
                return Some((first + j, k.trim().to_string(), value));
            }
        }
    }
    None
}

/// An invalid run of grid `g` as "file: line N: key = value: why".
fn invalid(text: &str, origin: &str, g: usize, e: &super::validate::Invalid) -> anyhow::Error {
    match locate(text, g, &e.key) {
        Some((line, key, value)) => {
            anyhow::anyhow!("{origin}: line {line}: {key} = {value}: {}", e.message)
        }
        None => anyhow::anyhow!(
            "{origin}: [[grid]] table {} (the default {}): {}",
            g + 1,
            e.key,
            e.message
        ),
    }
}

/// One planned run.
#[derive(Clone, Debug)]
pub struct Run {
    pub id: String,
    pub config: RunConfig,
}

/// What an experiment trains on and where it lives (the experiment-level keys).
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub dataset: Dataset,
    /// Where the dataset lives (relative to the working directory); the dataset's environment
    /// variable overrides it; default <data>/<dataset>.
    pub data_root: Option<String>,
    /// ImageNet: a file of WordNet ids restricting training to those classes.
    pub wnids: Option<String>,
    /// Folder of the experiment file (relative paths that are not found from the working
    /// directory are looked up there).
    pub dir: std::path::PathBuf,
}

#[derive(Clone, Debug)]
pub struct Experiment {
    pub name: String,
    pub description: String,
    pub data: DatasetSpec,
    pub runs: Vec<Run>,
    pub slurm: SlurmSettings,
    /// FID-Inception weights named by the file (relative paths from the file's folder).
    pub inception: Option<std::path::PathBuf>,
}

impl Experiment {
    pub fn load(path: &Path) -> Result<Experiment> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read experiment file {}", path.display()))?;
        let mut e = Self::parse(&text, &path.display().to_string())?;
        e.data.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Some(p) = &e.inception {
            if p.is_relative() && !p.exists() {
                e.inception = Some(e.data.dir.join(p));
            }
        }
        Ok(e)
    }

    /// Parses experiment text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Experiment> {
        Self::parse_limited(text, origin, MAX_RUNS.load(Ordering::Relaxed))
    }

    /// [`Experiment::parse`] of a file that may expand to at most `limit` runs.
    pub fn parse_limited(text: &str, origin: &str, limit: u64) -> Result<Experiment> {
        let file: ExperimentFile =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        if file.wnids.is_some() && file.dataset != Dataset::Imagenet {
            bail!("{origin}: wnids is only for dataset = \"imagenet\"");
        }
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if file.name.is_empty()
            || file.name.len() > MAX_NAME
            || !file.name.chars().all(plain)
            || file.name.starts_with('.')
        {
            bail!(
                "{origin}: name = {:?} must be a plain folder name: 1 to {MAX_NAME} of A-Z a-z 0-9 - _ . and not starting with a dot",
                file.name
            );
        }
        if file.grid.is_empty() {
            bail!("{origin}: no [[grid]] table: an experiment needs at least one");
        }
        let specs: Vec<GridSpec> = file.grid.iter().map(|g| file.common.overlay(g)).collect();
        let planned = specs.iter().fold(0u128, |n, s| n.saturating_add(s.size()));
        if planned > limit as u128 {
            bail!(
                "{origin}: the grids expand to {planned} runs, over the limit of {limit} (a list too long?); `ebgan --max-runs N` raises it"
            );
        }
        let mut runs = vec![];
        let mut seen = std::collections::HashSet::new();
        for (g, spec) in specs.iter().enumerate() {
            for config in spec.expand() {
                config
                    .validate_for(file.dataset)
                    .map_err(|e| invalid(text, origin, g, &e))?;
                let id = config.run_id();
                // Two grids listing the same run would train it twice.
                if seen.insert(id.clone()) {
                    runs.push(Run { id, config });
                }
            }
        }
        Ok(Experiment {
            name: file.name,
            description: file.description,
            data: DatasetSpec {
                dataset: file.dataset,
                data_root: file.data_root,
                wnids: file.wnids,
                dir: std::path::PathBuf::from("."),
            },
            runs,
            slurm: file.slurm,
            inception: file.inception.map(std::path::PathBuf::from),
        })
    }

    /// Shard `index` of `count`: every `count`-th run of the plan, starting at `index`.
    /// Shards are disjoint, their union is the plan, and they balance expensive shapes.
    pub fn shard(&self, shard: Shard) -> Vec<Run> {
        self.runs
            .iter()
            .enumerate()
            .filter(|(i, _)| i % shard.count == shard.index)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// The `[slurm]` table of an experiment file; `ebgan slurm` flags override it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// Array tasks = shards (or `shards` in the file's [slurm] table).
    #[arg(long)]
    pub shards: Option<usize>,
    #[arg(long)]
    pub partition: Option<String>,
    #[arg(long)]
    pub gpus_per_task: Option<u32>,
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// Memory per task, as sbatch takes it (e.g. "16G").
    #[arg(long)]
    pub mem: Option<String>,
    /// Time limit, as sbatch takes it (e.g. "12:00:00").
    #[arg(long)]
    pub time: Option<String>,
    #[arg(long)]
    pub account: Option<String>,
    /// `--device` of each task; default "auto" (the GPU Slurm assigns, else CPU).
    #[arg(long)]
    pub device: Option<String>,
}

impl SlurmSettings {
    /// `self` with every field that `over` sets replaced by `over`'s.
    pub fn overlay(&self, over: &SlurmSettings) -> SlurmSettings {
        SlurmSettings {
            shards: over.shards.or(self.shards),
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            gpus_per_task: over.gpus_per_task.or(self.gpus_per_task),
            cpus_per_task: over.cpus_per_task.or(self.cpus_per_task),
            mem: over.mem.clone().or_else(|| self.mem.clone()),
            time: over.time.clone().or_else(|| self.time.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            device: over.device.clone().or_else(|| self.device.clone()),
        }
    }
}
