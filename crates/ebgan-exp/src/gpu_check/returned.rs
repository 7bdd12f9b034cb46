//! What comes back from a device machine: a few files in the folder the device tool returns
//! (`--return DIR`), within its limits, while the full tree stays in the work folder (OUT), which
//! dies with the machine. The returned folder gets gpu-check.md and performance-rows.md as they
//! are, and results.zip: the small files of the work tree (tables, CSV rows, figures, logs),
//! shallowest first, up to a size that keeps it under the per-file limit. Its MANIFEST.txt names
//! every file left out and why.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The device tool's limits on the folder that comes back (its README): files, bytes per file,
/// bytes in all, and folders down.
pub const MAX_FILES: usize = 8;
pub const MAX_FILE_BYTES: u64 = 16 << 20;
pub const MAX_TOTAL_BYTES: u64 = 64 << 20;
pub const MAX_DEPTH: usize = 2;

/// The files copied as they are (when the work folder has them).
pub const PLAIN: [&str; 3] = ["gpu-check.md", "performance-rows.md", "gpu-check.log"];
pub const ARCHIVE: &str = "results.zip";
/// What the archive may hold: its members' bytes (uncompressed, so a bound that holds whatever
/// deflate makes of them), and the largest member.
const ARCHIVE_BYTES: u64 = 14 << 20;
const MEMBER_BYTES: u64 = 2 << 20;
/// Results people read: tables, rows, figures, notes, logs, experiment files.
const KEPT: [&str; 9] = [
    "md", "csv", "png", "svg", "json", "txt", "toml", "log", "html",
];

/// What a tree holds, below `root`.
enum Entry {
    Folder,
    File(u64),
    /// A link, a socket, ...: nothing the device tool returns.
    Other,
}

/// Every entry below `root` with its path relative to `root`, shallowest first (a folder's
/// runs.csv and figures before its runs' own files), then by path.
fn entries(root: &Path) -> Result<Vec<(PathBuf, Entry)>> {
    let mut found = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let listing =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for e in listing {
            let e = e?;
            let (path, kind) = (e.path(), e.file_type()?);
            let entry = if kind.is_dir() {
                stack.push(path.clone());
                Entry::Folder
            } else if kind.is_file() {
                Entry::File(e.metadata()?.len())
            } else {
                Entry::Other
            };
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            found.push((rel, entry));
        }
    }
    found.sort_by_cached_key(|(p, _)| (p.components().count(), p.clone()));
    Ok(found)
}

/// Writes the returned folder from the work folder `work`: the plain files and results.zip
/// (atomically each, so a folder read mid-write holds whole files). Returns the archive's
/// member count.
pub fn pack(work: &Path, ret: &Path) -> Result<usize> {
    std::fs::create_dir_all(ret).with_context(|| format!("cannot create {}", ret.display()))?;
    for name in PLAIN {
        let from = work.join(name);
        if from.is_file() {
            let bytes = std::fs::read(&from)?;
            let end = bytes.len().min(MAX_FILE_BYTES as usize);
            crate::fsutil::write_atomic(&ret.join(name), &bytes[..end])?;
        }
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let (mut total, mut members, mut left_out) = (0u64, 0usize, vec![]);
    for (rel, entry) in entries(work)? {
        let Entry::File(len) = entry else { continue };
        let path = work.join(&rel);
        let name = rel.to_string_lossy().replace('\\', "/");
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let why = if !KEPT.contains(&ext) {
            Some("not a result file (checkpoints, weights, caches stay behind)".to_string())
        } else if len > MEMBER_BYTES {
            Some(format!(
                "{len} bytes, over the {MEMBER_BYTES}-byte member limit"
            ))
        } else if total + len > ARCHIVE_BYTES {
            Some(format!("the archive is full ({total} bytes)"))
        } else {
            None
        };
        if let Some(why) = why {
            left_out.push(format!("{name}: {why}"));
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            left_out.push(format!("{name}: unreadable"));
            continue;
        };
        zip.start_file(name, options)?;
        zip.write_all(&bytes)?;
        total += bytes.len() as u64;
        members += 1;
    }
    let manifest = format!(
        "{members} files ({total} bytes) of {}; left out:\n{}\n",
        work.display(),
        left_out.join("\n")
    );
    zip.start_file("MANIFEST.txt", options)?;
    zip.write_all(manifest.as_bytes())?;
    let bytes = zip.finish()?.into_inner();
    crate::fsutil::write_atomic(&ret.join(ARCHIVE), &bytes)?;
    Ok(members)
}

/// How the folder `ret` breaks the device tool's limits (none: empty).
pub fn violations(ret: &Path) -> Result<Vec<String>> {
    let mut found = vec![];
    let (mut files, mut total) = (0usize, 0u64);
    for (rel, entry) in entries(ret)? {
        let name = rel.display();
        match entry {
            Entry::Folder if rel.components().count() > MAX_DEPTH => {
                found.push(format!("{name}: more than {MAX_DEPTH} folders down"))
            }
            Entry::Folder => {}
            Entry::File(len) => {
                files += 1;
                total += len;
                if len > MAX_FILE_BYTES {
                    found.push(format!("{name}: {len} bytes, over {MAX_FILE_BYTES}"));
                }
            }
            Entry::Other => found.push(format!("{name}: not a plain file")),
        }
    }
    if files > MAX_FILES {
        found.push(format!("{files} files, over {MAX_FILES}"));
    }
    if total > MAX_TOTAL_BYTES {
        found.push(format!("{total} bytes in all, over {MAX_TOTAL_BYTES}"));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_archive_keeps_result_files_shallowest_first_and_names_what_it_left_out() {
        let tmp = tempfile::tempdir().unwrap();
        let (work, ret) = (tmp.path().join("work"), tmp.path().join("ret"));
        let run = work.join("results/exp/run-1");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(work.join("gpu-check.md"), "# gpu-check\n").unwrap();
        std::fs::write(work.join("results/exp/runs.csv"), "run_id\n").unwrap();
        std::fs::write(run.join("train.log"), "step 1\n").unwrap();
        std::fs::write(run.join("checkpoint.safetensors"), [0u8; 64]).unwrap();
        std::fs::write(run.join("huge.csv"), vec![b'x'; MEMBER_BYTES as usize + 1]).unwrap();
        assert_eq!(pack(&work, &ret).unwrap(), 3);
        assert_eq!(violations(&ret).unwrap(), Vec::<String>::new());
        let file = std::fs::File::open(ret.join(ARCHIVE)).unwrap();
        let mut z = zip::ZipArchive::new(file).unwrap();
        let names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "gpu-check.md",
                "results/exp/runs.csv",
                "results/exp/run-1/train.log",
                "MANIFEST.txt"
            ]
        );
        let mut manifest = String::new();
        z.by_name("MANIFEST.txt")
            .unwrap()
            .read_to_string(&mut manifest)
            .unwrap();
        assert!(
            manifest.contains("checkpoint.safetensors: not a result file"),
            "{manifest}"
        );
        assert!(manifest.contains("huge.csv:"), "{manifest}");
        assert_eq!(
            std::fs::read_to_string(ret.join("gpu-check.md")).unwrap(),
            "# gpu-check\n"
        );
    }

    #[test]
    fn a_folder_over_the_limits_is_named_for_each_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        for i in 0..MAX_FILES {
            std::fs::write(tmp.path().join(format!("f{i}")), "x").unwrap();
        }
        std::fs::write(deep.join("big"), vec![0u8; MAX_FILE_BYTES as usize + 1]).unwrap();
        let v = violations(tmp.path()).unwrap().join("\n");
        assert!(v.contains("a/b/c: more than 2 folders down"), "{v}");
        assert!(v.contains("a/b/c/big:"), "{v}");
        assert!(v.contains("9 files, over 8"), "{v}");
    }
}
