//! Runs a script of `tests/browser/` (Node.js, playwright-core driving
//! Debian's Chromium, axe-core) against a running test app. The browser
//! tests are `#[ignore]`d because they need Chromium and the npm packages,
//! which `.ci/browser-setup` installs; `.ci/run` runs them with
//! `cargo test --test api browser_ -- --ignored`.

use std::path::PathBuf;
use std::process::Command;

/// Runs `node tests/browser/<script>` with `env`, panicking with its output
/// unless it exits 0. Returns its stdout (scripts print what they saw as JSON).
pub fn run_script(script: &str, env: &[(&str, String)]) -> String {
    // One browser at a time: two Chromiums on a 2-core machine starve each
    // other's pages.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "tests/browser has no node_modules: run .ci/browser-setup first"
    );
    let mut command = Command::new("node");
    command.arg(dir.join(script)).current_dir(&dir);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
