//! The results browser in a real browser: a tiny grid trained by `ebgan run`, its index.html
//! opened in headless Chromium (Debian's chromium and chromium-driver, driven by selenium from
//! the torch environment) by scripts/browser_check.py, which sorts by I', filters to one family
//! and to I' > 0.5 and checks the counts against runs.csv, opens a run's page, and checks that every image loaded
//! and that the console shows no errors. CI installs the browser (.ci/run); elsewhere the test
//! says it was skipped when /usr/bin/chromium is missing.

use std::path::Path;

mod common;

const TINY: &str = r#"
name = "browse"
[common]
size_g = 32
size_d = 16
batch_size = 32
train_images = 256
epochs = 1
score_samples = 128

[[grid]]
model = "ebgan"
n_layer_g = [2, 3]

[[grid]]
model = "gan"
optim_d = ["adam", "sgd"]

[[grid]]
model = "gan"
optim_d = "sgd"
optim_g = "sgd"
lr = 1e12
"#;

#[test]
fn the_results_page_sorts_filters_and_opens_runs_in_a_real_browser() {
    let browser = ["/usr/bin/chromium", "/usr/bin/chromedriver"];
    if browser.iter().any(|b| !Path::new(b).exists()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and chromium-driver (.ci/run)"
        );
        eprintln!("SKIPPED: no {browser:?} (apt-get install chromium chromium-driver)");
        return;
    }
    let (_tmp, root) = common::train_grid(TINY, "browse");
    assert!(root.join("index.html").is_file());
    let out = common::python("scripts/browser_check.py", &[&root, Path::new("gan")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("11 passed, 0 failed"), "{text}");
}
