//! Stamps the build with a git short hash and a build time, as KDF's `version` reports them.
use std::process::Command;

fn main() {
    let hash = Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "nogit".to_string());
    let tag = std::env::var("KDFD_BUILD_TAG")
        .ok()
        .filter(|s| !s.is_empty());
    println!("cargo:rustc-env=KDFD_GIT_HASH={}", tag.unwrap_or(hash));
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!("cargo:rustc-env=KDFD_BUILD_UNIX={secs}");
    println!("cargo:rerun-if-env-changed=KDFD_BUILD_TAG");
    // A commit moves the branch ref, not HEAD: watch both (and packed refs).
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/packed-refs");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{r}");
        }
    }
}
