//! Helpers for the unit tests that check cdw's files against Python's own readers and writers.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The venv's Python (`$VIRTUAL_ENV`, which `scripts/with-libtorch` sets, else `$CDW_VENV`, else
/// `.venv` beside Cargo.toml) when it can import `modules`; otherwise why not, for the test's
/// "skipped" line.
pub fn venv_python(modules: &[&str]) -> Result<PathBuf, String> {
    let venv = std::env::var_os("VIRTUAL_ENV")
        .or_else(|| std::env::var_os("CDW_VENV"))
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"),
            PathBuf::from,
        );
    let py = venv.join("bin/python");
    if !py.exists() {
        return Err(format!("no Python at {}", py.display()));
    }
    if modules.is_empty() {
        return Ok(py);
    }
    let imports = format!("import {}", modules.join(", "));
    let ok = Command::new(&py)
        .args(["-c", &imports])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(py)
    } else {
        Err(format!("{} cannot `{imports}`", py.display()))
    }
}

/// Runs the Python `script` with `args`; its stdout, or a panic with its stderr when it fails.
pub fn run_python(py: &Path, script: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
