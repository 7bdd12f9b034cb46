//! `--device-limits`: this process and its children see what a device machine offers. Python
//! children get a sitecustomize that refuses network connections and hides pytorch-fid and
//! torch-fidelity unless they come from the carried wheels (.device/wheels, `just gpu-pack`);
//! pip may not reach an index; `cargo` and `just` answer "not here" (exit 127). A dry run on
//! the CPU then finds what a device machine would refuse, here.

use anyhow::{Context, Result};
use std::path::Path;

/// Packages a device machine's python lacks unless carried.
pub const HIDDEN: [&str; 2] = ["pytorch_fid", "torch_fidelity"];

const SITECUSTOMIZE: &str = r#"# Written by `ebgan gpu-check --device-limits`: a device machine's limits for this python.
import importlib.machinery, socket, sys

_HIDDEN = {HIDDEN}

class _DeviceLimits:
    """Finds pytorch-fid and torch-fidelity only in the carried wheels (.device/wheels)."""
    @staticmethod
    def find_spec(name, path=None, target=None):
        if path is not None or name.split(".")[0] not in _HIDDEN:
            return None
        carried = [p for p in sys.path if "/.device/wheels/" in p]
        spec = importlib.machinery.PathFinder.find_spec(name, carried)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r} (not carried: --device-limits)", name=name)
        return spec

sys.meta_path.insert(0, _DeviceLimits)

def _no_network(self, address, *args, **kwargs):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(101, f"network unreachable (--device-limits): {address}")
    return _connect(self, address, *args, **kwargs)

_connect = socket.socket.connect
socket.socket.connect = _no_network
socket.socket.connect_ex = _no_network
"#;

/// The packages beyond torch, numpy and scipy that a reference script imports.
pub fn packages(script: &str) -> &'static [&'static str] {
    match script {
        "kid.py" => &["torch_fidelity"],
        "scores.py" | "scoring.py" | "fid_inception.py" => &["pytorch_fid"],
        _ => &[],
    }
}

/// Whether `python` imports `module` (a device machine's python has only what was carried).
fn importable(python: &Path, module: &str) -> bool {
    std::process::Command::new(python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Which of [`HIDDEN`] `python` cannot import.
pub fn absent(python: &Path) -> Vec<&'static str> {
    HIDDEN
        .into_iter()
        .filter(|m| !importable(python, m))
        .collect()
}

/// The sitecustomize with the hidden names as a Python set.
fn sitecustomize() -> String {
    let names: Vec<String> = HIDDEN.iter().map(|n| format!("{n:?}")).collect();
    SITECUSTOMIZE.replace("{HIDDEN}", &format!("{{{}}}", names.join(", ")))
}

/// Applies the limits to this process's environment (before any thread or child starts), with
/// the sitecustomize written into `dir`.
pub fn apply(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    crate::fsutil::write_atomic(&dir.join("sitecustomize.py"), sitecustomize().as_bytes())?;
    let dir = dir.canonicalize()?;
    let pythonpath = match std::env::var_os("PYTHONPATH") {
        Some(p) if !p.is_empty() => {
            let mut v = vec![dir.clone()];
            v.extend(std::env::split_paths(&p));
            std::env::join_paths(v)?
        }
        _ => dir.clone().into_os_string(),
    };
    // cargo and just answer "not here" from the front of PATH. Dropping their folders instead
    // could drop the python beside them.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    for tool in ["cargo", "just"] {
        let stub = format!(
            "#!/bin/sh\necho \"{tool}: not on a device machine (--device-limits)\" >&2\nexit 127\n"
        );
        crate::fsutil::write_atomic(&bin.join(tool), stub.as_bytes())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join(tool), std::fs::Permissions::from_mode(0o755))?;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(&path));
    std::env::set_var("PYTHONPATH", pythonpath);
    std::env::set_var("PIP_NO_INDEX", "1");
    std::env::set_var("PATH", std::env::join_paths(dirs)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sitecustomize_refuses_the_network_and_uncarried_packages() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("sitecustomize.py"), super::sitecustomize()).unwrap();
        // A carried-looking package of each hidden name, and one elsewhere on the path.
        let carried = tmp.path().join("x/.device/wheels/pkg");
        let elsewhere = tmp.path().join("elsewhere");
        for d in [&carried, &elsewhere] {
            std::fs::create_dir_all(d.join("torch_fidelity")).unwrap();
            std::fs::write(d.join("torch_fidelity/__init__.py"), "").unwrap();
        }
        std::fs::create_dir_all(elsewhere.join("pytorch_fid")).unwrap();
        std::fs::write(elsewhere.join("pytorch_fid/__init__.py"), "").unwrap();
        let script = "import socket, sys\n\
            try:\n    import pytorch_fid\n    print('fid imported')\nexcept ModuleNotFoundError as e:\n    print('fid hidden:', e)\n\
            import torch_fidelity\nprint('fidelity from', torch_fidelity.__file__)\n\
            try:\n    socket.create_connection(('192.0.2.1', 80), timeout=1)\nexcept OSError as e:\n    print('network:', e)\n\
            import json\nprint('json ok')\n";
        let path = std::env::join_paths([tmp.path(), &elsewhere, &carried]).unwrap();
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .env("PYTHONPATH", path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("fid hidden: No module named 'pytorch_fid' (not carried"),
            "{text}"
        );
        assert!(text.contains(".device/wheels/pkg/torch_fidelity"), "{text}");
        assert!(
            text.contains("network unreachable (--device-limits)"),
            "{text}"
        );
        assert!(text.contains("json ok"), "{text}");
    }
}
