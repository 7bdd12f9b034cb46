//! Every shipped experiment plans the same run ids as when its runs were first trained: a run id
//! is the hash of a run's resolved config, so a refactoring that changed one would silently
//! orphan finished runs. The fixtures are `ebgan plan FILE --list` of each experiments/*.toml.

use std::path::Path;
use std::process::Command;

#[test]
fn every_shipped_experiment_plans_its_recorded_run_ids() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("tests/fixtures/run-ids");
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("../../experiments")).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_ebgan"))
            .args(["plan", file.to_str().unwrap(), "--list"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan = String::from_utf8_lossy(&out.stdout);
        let listed: Vec<&str> = plan
            .lines()
            .filter(|l| !l.contains(": ") && !l.starts_with('(') && !l.is_empty())
            .collect();
        let fixture = fixtures.join(format!("{name}.txt"));
        let recorded = std::fs::read_to_string(&fixture)
            .unwrap_or_else(|_| panic!("{}: no recorded run ids", fixture.display()));
        let recorded: Vec<&str> = recorded.lines().collect();
        assert_eq!(listed.len(), recorded.len(), "{name}: number of runs");
        for (i, (a, b)) in listed.iter().zip(&recorded).enumerate() {
            assert_eq!(a, b, "{name}: run {i} of the plan changed its id");
        }
        checked += 1;
    }
    assert!(checked >= 12, "{checked} experiment files");
}
