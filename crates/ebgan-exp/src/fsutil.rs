//! Crash-safe file writes: a reader sees the old file or the new one, never a torn one.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Temporary files of [`write_atomic`]: a SIGKILL between create and rename leaves one behind.
pub const TMP_PREFIX: &str = ".ebgan-tmp-";

/// Removes temporary files left in `dir` and its sub-folders (one level) by killed writers:
/// those older than an hour, so that a writer still at work (seconds) is never touched.
/// Returns how many were removed.
pub fn sweep_temporaries(dir: &Path) -> usize {
    let old = |p: &Path| {
        p.metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(3600))
    };
    let is_tmp = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(TMP_PREFIX) || n.starts_with(".tmp"))
    };
    let mut removed = 0;
    let mut dirs = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for d in dirs {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_file() && is_tmp(&p) && old(&p) && std::fs::remove_file(&p).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| {
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    })
}

/// [`write_atomic`] for content written by `write` into the temporary file (which it may seek
/// in); when `write` fails, nothing replaces `path`.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    write(tmp.as_file_mut())?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    // Temporary files are private (0600); results are meant to be read by others too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Appends one complete line with a single write, then syncs: a crash leaves the line whole or absent
/// (a torn tail, possible only on power loss, is dropped when the file is read).
pub fn append_line(path: &Path, line: &str) -> Result<()> {
    debug_assert!(line.ends_with('\n'));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(line.as_bytes())
        .and_then(|_| f.sync_data())
        .with_context(|| format!("cannot append to {}", path.display()))
}

/// `rel` (e.g. "bench/step_pytorch.py") in the source tree this binary was built from, or under
/// the working directory when that tree is not here (a copied binary run from a checkout).
pub fn source_file(rel: &str) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    if source.exists() {
        source
    } else {
        Path::new(rel).to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_temporaries_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run-a");
        std::fs::create_dir_all(&run).unwrap();
        let stale = run.join(".ebgan-tmp-abc");
        let fresh = dir.path().join(".ebgan-tmp-def");
        let kept = run.join("losses.csv");
        for p in [&stale, &fresh, &kept] {
            std::fs::write(p, b"x").unwrap();
        }
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for p in [&stale, &kept] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        assert_eq!(sweep_temporaries(dir.path()), 1);
        assert!(!stale.exists() && fresh.exists() && kept.exists());
    }
}
