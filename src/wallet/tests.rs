use super::crypto::{derive_key, encrypt_with};
use super::*;

const MNEMONIC: &str = "tank abandon bind salon remove wisdom net size aspect direct source fossil";
const STRONG: &str = "Str0ng-Pass!x";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn argon2_vectors_from_the_spec() {
    // Salt string "c2FsdHNhbHRzYWx0c2FsdA" = the bytes "saltsaltsaltsalt", decoded before hashing.
    let salt = "c2FsdHNhbHRzYWx0c2FsdA";
    let k = derive_key(&argon2::Argon2::default(), "password", salt).unwrap();
    let h = hex(k.as_ref());
    assert!(h.starts_with("4fde6aed") && h.ends_with("205d3f"), "{h}");
    let p = argon2::Params::new(65536, 2, 1, Some(32)).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let h = hex(derive_key(&a, "password", salt).unwrap().as_ref());
    assert!(h.starts_with("7640855a") && h.ends_with("393e4c"), "{h}");
}

#[test]
fn current_format_json_shape() {
    let d = encrypt(MNEMONIC, STRONG).unwrap();
    let v: serde_json::Value = serde_json::to_value(&d).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "version",
            "encryption_algorithm",
            "key_derivation_details",
            "iv",
            "ciphertext",
            "tag"
        ]
    );
    assert_eq!(v["version"], 1);
    assert_eq!(v["encryption_algorithm"], "AES256CBC");
    let a = &v["key_derivation_details"]["Argon2"];
    assert_eq!(
        a["params"],
        serde_json::json!({"algorithm":"argon2id","version":19,"m_cost":65536,"t_cost":2,"p_cost":1,"output_len":32})
    );
    for s in ["salt_aes", "salt_hmac"] {
        let s = a[s].as_str().unwrap();
        assert_eq!(s.len(), 22);
        assert!(!s.contains('='));
    }
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD;
    assert_eq!(b.decode(v["iv"].as_str().unwrap()).unwrap().len(), 16);
    assert_eq!(b.decode(v["tag"].as_str().unwrap()).unwrap().len(), 32);
    // 75 bytes of text → 80 bytes of PKCS7-padded ciphertext.
    assert_eq!(
        b.decode(v["ciphertext"].as_str().unwrap()).unwrap().len(),
        80
    );
    assert!(v["ciphertext"].as_str().unwrap().ends_with('='));
}

#[test]
fn round_trips_and_wrong_password() {
    for legacy in [false, true] {
        let d = encrypt_with(MNEMONIC, STRONG, legacy).unwrap();
        assert_eq!(d.version.is_none(), legacy);
        assert_eq!(decrypt(&d, STRONG).unwrap().expose(), MNEMONIC);
        assert_eq!(
            decrypt(&d, "wrong").unwrap_err(),
            WalletError::InvalidPassword
        );
    }
    // A tampered ciphertext fails the tag check too.
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD;
    let mut d = encrypt("x", "pw").unwrap();
    let mut ct = b.decode(&d.ciphertext).unwrap();
    ct[0] ^= 1;
    d.ciphertext = b.encode(ct);
    assert_eq!(decrypt(&d, "pw").unwrap_err(), WalletError::InvalidPassword);
}

#[test]
fn legacy_ignores_stored_params() {
    // An old file claims m=65536 but was made with the defaults (m=19456): the stored params
    // must not matter, so changing them must not break decryption.
    let mut d = encrypt_with(MNEMONIC, STRONG, true).unwrap();
    let KeyDerivationDetails::Argon2 { params, .. } = &mut d.key_derivation_details;
    params.m_cost = 8;
    assert_eq!(decrypt(&d, STRONG).unwrap().expose(), MNEMONIC);
}

#[test]
fn absurd_params_refused_without_hashing() {
    let mut d = encrypt("x", "pw").unwrap();
    let KeyDerivationDetails::Argon2 { params, .. } = &mut d.key_derivation_details;
    params.m_cost = u32::MAX;
    let e = decrypt(&d, "pw").unwrap_err();
    assert!(
        matches!(&e, WalletError::BadFile(m) if m.contains("exceed")),
        "{e}"
    );
    let mut d = encrypt("x", "pw").unwrap();
    d.version = Some(7);
    assert!(matches!(decrypt(&d, "pw"), Err(WalletError::BadFile(_))));
}

#[test]
fn name_rules() {
    assert_eq!(validate_name("  my wallet_1-a ").unwrap(), "my wallet_1-a");
    for bad in ["", "   ", "a/b", "..", "a\0b", "a.b", "x\\y"] {
        assert!(
            matches!(validate_name(bad), Err(WalletError::BadName(_))),
            "{bad:?}"
        );
    }
    assert!(validate_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
    assert!(validate_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
}

#[test]
fn mnemonic_generation() {
    let m = generate_mnemonic(12).unwrap();
    assert!(bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &m).is_ok());
    assert_eq!(m.split(' ').count(), 12);
    assert_eq!(generate_mnemonic(24).unwrap().split(' ').count(), 24);
    assert_ne!(generate_mnemonic(12).unwrap(), m);
    assert!(generate_mnemonic(13).is_err());
}

#[test]
fn secrets_stay_out_of_debug() {
    let s = SecretString::new(MNEMONIC.into());
    assert!(!format!("{s:?}").contains("tank"));
    let input = StartupInput {
        wallet_name: Some("w".into()),
        wallet_password: Some(STRONG.into()),
        passphrase: Some(PassphraseInput::Plain(MNEMONIC.into())),
        allow_weak_password: false,
    };
    let dbg = format!("{input:?}");
    assert!(!dbg.contains("tank") && !dbg.contains(STRONG), "{dbg}");
}

#[test]
fn db_root_prefers_dbdir() {
    assert_eq!(
        db_root(Some(std::path::Path::new("/x/y"))),
        std::path::Path::new("/x/y")
    );
}

fn input(name: Option<&str>, pw: Option<&str>, pass: Option<PassphraseInput>) -> StartupInput {
    StartupInput {
        wallet_name: name.map(Into::into),
        wallet_password: pw.map(Into::into),
        passphrase: pass,
        allow_weak_password: false,
    }
}

#[test]
fn startup_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = WalletDir::new(tmp.path().join("DB"));
    let plain = |s: &str| Some(PassphraseInput::Plain(s.into()));
    // No name, no passphrase; passphrase only; encrypted passphrase without a name.
    assert_eq!(
        startup(&dir, &input(None, None, None)).unwrap(),
        Login::NoLogin
    );
    match startup(&dir, &input(None, None, plain("legacy words"))).unwrap() {
        Login::Passphrase(p) => assert_eq!(p.expose(), "legacy words"),
        l => panic!("{l:?}"),
    }
    let enc = PassphraseInput::Encrypted(encrypt(MNEMONIC, STRONG).unwrap());
    let e = startup(&dir, &input(None, Some(STRONG), Some(enc.clone()))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "The 'wallet_name' field not found in the config"
    );
    assert!(dir.names().unwrap().is_empty());
    // Name without password.
    let e = startup(&dir, &input(Some("a"), None, None)).unwrap_err();
    assert_eq!(e, WalletError::FieldNotFound("wallet_password"));
    // Name + password, no file: policy, then a new mnemonic is generated and saved.
    let e = startup(&dir, &input(Some("a"), Some("weak"), None)).unwrap_err();
    assert!(matches!(e, WalletError::PasswordPolicy(_)));
    let mut weak = input(Some("a"), Some(""), None);
    weak.allow_weak_password = true;
    assert!(matches!(
        startup(&dir, &weak),
        Err(WalletError::PasswordPolicy(_))
    ));
    let Login::Wallet {
        mnemonic: gen,
        created: true,
        ..
    } = startup(&dir, &input(Some("a"), Some(STRONG), None)).unwrap()
    else {
        panic!()
    };
    assert_eq!(dir.names().unwrap(), ["a"]);
    // Second start loads the same mnemonic; a wrong password changes nothing.
    let again = startup(&dir, &input(Some("a"), Some(STRONG), None)).unwrap();
    assert!(matches!(&again, Login::Wallet { mnemonic, created: false, .. } if *mnemonic == gen));
    let before = std::fs::read(dir.path("a").unwrap()).unwrap();
    let e = startup(&dir, &input(Some("a"), Some("Wr0ng-Pass!x"), None)).unwrap_err();
    assert_eq!(e, WalletError::InvalidPassword);
    assert_eq!(std::fs::read(dir.path("a").unwrap()).unwrap(), before);
    // Name + plain passphrase: match ok, mismatch refused, no file → saved.
    assert!(startup(&dir, &input(Some("a"), Some(STRONG), plain(&gen))).is_ok());
    let e = startup(&dir, &input(Some("a"), Some(STRONG), plain(MNEMONIC))).unwrap_err();
    assert_eq!(e, WalletError::PassphraseMismatch);
    let l = startup(&dir, &input(Some("b"), Some(STRONG), plain(MNEMONIC))).unwrap();
    assert!(matches!(l, Login::Wallet { created: true, .. }));
    assert_eq!(dir.load("b", STRONG).unwrap().expose(), MNEMONIC);
    // Name + encrypted passphrase: decrypted with wallet_password, compared or saved.
    assert!(startup(&dir, &input(Some("b"), Some(STRONG), Some(enc.clone()))).is_ok());
    let e = startup(&dir, &input(Some("a"), Some(STRONG), Some(enc.clone()))).unwrap_err();
    assert_eq!(e, WalletError::PassphraseMismatch);
    let e = startup(
        &dir,
        &input(Some("c"), Some("Other-Pass1!"), Some(enc.clone())),
    )
    .unwrap_err();
    assert_eq!(e, WalletError::InvalidPassword);
    let l = startup(&dir, &input(Some("c"), Some(STRONG), Some(enc.clone()))).unwrap();
    assert!(
        matches!(&l, Login::Wallet { mnemonic, created: true, .. } if mnemonic.expose() == MNEMONIC)
    );
    let PassphraseInput::Encrypted(d) = &enc else {
        panic!()
    };
    assert_eq!(&dir.read("c").unwrap(), d);
    assert_eq!(dir.names().unwrap(), ["a", "b", "c"]);
}

#[test]
fn passphrase_input_parses_both_forms() {
    let p: PassphraseInput = serde_json::from_str("\"some words\"").unwrap();
    assert_eq!(p, PassphraseInput::Plain("some words".into()));
    let d = encrypt("x", "pw").unwrap();
    let p: PassphraseInput = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
    assert_eq!(p, PassphraseInput::Encrypted(d));
}

#[test]
fn dir_operations() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = WalletDir::new(tmp.path());
    dir.create("w1", "pw1", MNEMONIC).unwrap();
    assert_eq!(
        dir.create("w1", "pw1", "other").unwrap_err(),
        WalletError::WalletExists("w1".into())
    );
    assert_eq!(dir.load("w1", "pw1").unwrap().expose(), MNEMONIC);
    assert_eq!(
        dir.load("nope", "pw1").unwrap_err(),
        WalletError::MnemonicFileNotFound
    );
    let before = std::fs::read(dir.path("w1").unwrap()).unwrap();
    assert_eq!(
        dir.change_password("w1", "bad", "pw2").unwrap_err(),
        WalletError::InvalidPassword
    );
    assert_eq!(
        dir.delete("w1", "bad").unwrap_err(),
        WalletError::InvalidPassword
    );
    assert_eq!(std::fs::read(dir.path("w1").unwrap()).unwrap(), before);
    dir.change_password("w1", "pw1", "pw2").unwrap();
    assert_eq!(dir.load("w1", "pw2").unwrap().expose(), MNEMONIC);
    assert_eq!(
        dir.load("w1", "pw1").unwrap_err(),
        WalletError::InvalidPassword
    );
    assert_eq!(
        dir.delete("zz", "pw2").unwrap_err().to_string(),
        "Wallet 'zz' not found."
    );
    dir.delete("w1", "pw2").unwrap();
    assert!(!dir.exists("w1").unwrap());
    // Only the wallet files remain: no temp files left behind by the writes.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn password_changes_of_one_file_are_serialised() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = WalletDir::new(tmp.path());
    dir.create("w1", "pw1", MNEMONIC).unwrap();
    // Two changes from the same current password at once: without the lock both read pw1 and
    // both "succeed", and the file ends with whichever wrote last. With it, the second sees the
    // first one's file and is refused.
    let results: Vec<_> = std::thread::scope(|s| {
        let a = s.spawn(|| dir.change_password("w1", "pw1", "pwA"));
        let b = s.spawn(|| dir.change_password("w1", "pw1", "pwB"));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(results.contains(&Err(WalletError::InvalidPassword)));
    let winner = if results[0].is_ok() { "pwA" } else { "pwB" };
    assert_eq!(dir.load("w1", winner).unwrap().expose(), MNEMONIC);
    assert!(dir.locks.lock().unwrap().is_empty(), "no lock entry left");
}
