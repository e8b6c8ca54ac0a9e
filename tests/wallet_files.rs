//! Byte-compatibility of kdfd's wallet files with an independent implementation
//! (scripts/walletfile/walletfile.py: argon2-cffi + cryptography), both ways, plus the
//! directory rules. Needs python3 and PyPI (ensure-venv.sh makes a cached venv once).

use kdfd::wallet::{decrypt, encrypt, EncryptedData, WalletDir, WalletError, TEMP_PREFIX};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const MNEMONIC: &str = "tank abandon bind salon remove wisdom net size aspect direct source fossil";
const FIXTURE_PW: &str = "Fixture-Pass1!";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's python, made once per test binary.
fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("scripts/walletfile/ensure-venv.sh"))
            .output()
            .expect("run ensure-venv.sh");
        assert!(
            out.status.success(),
            "ensure-venv.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn walletfile(args: &[&str]) -> std::process::Output {
    Command::new(python())
        .arg(repo().join("scripts/walletfile/walletfile.py"))
        .args(args)
        .output()
        .expect("run walletfile.py")
}

fn py_encrypt(format: &str, pw: &str, mnemonic: &str) -> String {
    let out = walletfile(&[
        "encrypt",
        "--format",
        format,
        "--password",
        pw,
        "--mnemonic",
        mnemonic,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (exit code, stdout trimmed).
fn py_decrypt(pw: &str, file: &Path) -> (i32, String) {
    let out = walletfile(&["decrypt", "--password", pw, file.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text.trim_end_matches('\n').to_string(),
    )
}

#[test]
fn committed_fixtures_decrypt() {
    let dir = WalletDir::new(repo().join("tests/fixtures/wallets"));
    assert_eq!(dir.names().unwrap(), ["fixture_legacy", "fixture_v1"]);
    for name in ["fixture_v1", "fixture_legacy"] {
        assert_eq!(
            dir.load(name, FIXTURE_PW).unwrap().expose(),
            MNEMONIC,
            "{name}"
        );
        assert_eq!(
            dir.load(name, "Fixture-Pass2!").unwrap_err(),
            WalletError::InvalidPassword
        );
    }
    assert_eq!(dir.read("fixture_v1").unwrap().version, Some(1));
    assert_eq!(dir.read("fixture_legacy").unwrap().version, None);
}

#[test]
fn kdfd_writes_python_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = WalletDir::new(tmp.path());
    let pw = "Ünïcode-pass 1!";
    dir.create("alice", pw, MNEMONIC).unwrap();
    let file = dir.path("alice").unwrap();
    assert_eq!(py_decrypt(pw, &file), (0, MNEMONIC.to_string()));
    assert_eq!(py_decrypt("wrong", &file).0, 1);
    // After a password change Python reads the new file with the new password only.
    dir.change_password("alice", pw, "New-pass-2!").unwrap();
    assert_eq!(py_decrypt("New-pass-2!", &file), (0, MNEMONIC.to_string()));
    assert_eq!(py_decrypt(pw, &file).0, 1);
}

#[test]
fn python_writes_kdfd_reads_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = WalletDir::new(tmp.path());
    for (format, name) in [("v1", "py v1"), ("legacy", "py_legacy")] {
        let json = py_encrypt(format, "Py-pass-1!", MNEMONIC);
        let data: EncryptedData = serde_json::from_str(&json).unwrap();
        assert_eq!(decrypt(&data, "Py-pass-1!").unwrap().expose(), MNEMONIC);
        assert_eq!(
            decrypt(&data, "Py-pass-2!").unwrap_err(),
            WalletError::InvalidPassword
        );
        // kdfd's serialisation of a parsed file is the same JSON (same keys, order, types).
        let back = serde_json::to_string(&data).unwrap();
        assert_eq!(back, json.trim_end(), "{format}");
        std::fs::write(tmp.path().join(format!("{name}.json")), &json).unwrap();
        assert_eq!(dir.load(name, "Py-pass-1!").unwrap().expose(), MNEMONIC);
    }
    assert_eq!(dir.names().unwrap(), ["py v1", "py_legacy"]);
}

#[test]
fn full_round_trip_through_both() {
    let tmp = tempfile::tempdir().unwrap();
    // kdfd → file → Python → Python re-encrypts → kdfd.
    let d = encrypt("some other words", "Round-trip-1!").unwrap();
    let f = tmp.path().join("r.json");
    std::fs::write(&f, serde_json::to_vec(&d).unwrap()).unwrap();
    let (rc, text) = py_decrypt("Round-trip-1!", &f);
    assert_eq!((rc, text.as_str()), (0, "some other words"));
    let json = py_encrypt("v1", "Round-trip-2!", &text);
    let d2: EncryptedData = serde_json::from_str(&json).unwrap();
    assert_eq!(
        decrypt(&d2, "Round-trip-2!").unwrap().expose(),
        "some other words"
    );
}

#[test]
fn wrong_password_leaves_the_file_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = WalletDir::new(tmp.path());
    dir.create("w", "Right-pass-1!", MNEMONIC).unwrap();
    let file = dir.path("w").unwrap();
    let before = std::fs::read(&file).unwrap();
    assert_eq!(
        dir.load("w", "bad").unwrap_err(),
        WalletError::InvalidPassword
    );
    assert_eq!(
        dir.change_password("w", "bad", "New-pass-1!").unwrap_err(),
        WalletError::InvalidPassword
    );
    assert_eq!(
        dir.delete("w", "bad").unwrap_err(),
        WalletError::InvalidPassword
    );
    assert_eq!(py_decrypt("bad", &file).0, 1);
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn name_rules_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = WalletDir::new(tmp.path().join("DB"));
    for bad in ["../evil", "a/b", "", "  ", "x\0y", "semi;colon"] {
        assert!(
            matches!(
                dir.create(bad, "pw", MNEMONIC),
                Err(WalletError::BadName(_))
            ),
            "{bad:?}"
        );
    }
    assert!(!tmp.path().join("evil.json").exists());
    dir.create("  padded name ", "pw", MNEMONIC).unwrap();
    assert!(dir.exists("padded name").unwrap());
    assert_eq!(dir.names().unwrap(), ["padded name"]);
    // Any *.json stem is listed (as KDF does), others are not.
    std::fs::write(dir.root().join("notes.txt"), "x").unwrap();
    std::fs::write(dir.root().join("zeta.json"), "{}").unwrap();
    assert_eq!(dir.names().unwrap(), ["padded name", "zeta"]);
    assert!(matches!(dir.read("zeta"), Err(WalletError::BadFile(_))));
}

#[test]
fn temp_files_are_invisible_and_stale_ones_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    WalletDir::new(root).create("real", "pw", MNEMONIC).unwrap();
    // A crash between write and rename leaves a temp file: never listed, never a wallet.
    let stale = root.join(format!("{TEMP_PREFIX}real-deadbeef"));
    std::fs::write(&stale, b"{\"half").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let fresh = root.join(format!("{TEMP_PREFIX}other-cafe"));
    std::fs::write(&fresh, b"in progress").unwrap();
    let dir = WalletDir::new(root);
    assert_eq!(dir.names().unwrap(), ["real"]);
    assert!(!stale.exists(), "a stale temp file is removed on open");
    assert!(
        fresh.exists(),
        "a recent one may belong to a running writer"
    );
    assert_eq!(dir.load("real", "pw").unwrap().expose(), MNEMONIC);
}

#[test]
fn create_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = WalletDir::new(tmp.path());
    dir.create("w", "pw", MNEMONIC).unwrap();
    let before = std::fs::read(dir.path("w").unwrap()).unwrap();
    assert_eq!(
        dir.create("w", "pw2", "other").unwrap_err(),
        WalletError::WalletExists("w".into())
    );
    assert_eq!(std::fs::read(dir.path("w").unwrap()).unwrap(), before);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}
