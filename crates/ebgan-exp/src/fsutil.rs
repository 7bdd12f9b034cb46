//! Crash-safe file writes: a reader sees the old file or the new one, never a torn one.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

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
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
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
