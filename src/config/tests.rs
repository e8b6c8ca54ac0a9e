use super::*;
use serde_json::json;

fn load(conf: Value) -> Result<Config, ConfigError> {
    Config::from_json(&Sources::default(), &conf)
}

#[test]
fn password_policy_in_kdf_order() {
    let cases = [
        ("myPassword1!", "Password can't contain the word password"),
        (
            "Ab1!",
            "Password length should be at least 8 characters long",
        ),
        ("Abcdefg!", "Password should contain at least 1 digit"),
        (
            "ABCDEFG1!",
            "Password should contain at least 1 lowercase character",
        ),
        (
            "abcdefg1!",
            "Password should contain at least 1 uppercase character",
        ),
        (
            "Abcdefg12",
            "Password should contain at least 1 special character",
        ),
        (
            "Abccc1!xyz",
            "Password can't contain the same character 3 times in a row",
        ),
    ];
    for (pw, msg) in cases {
        assert_eq!(
            check_password_policy(pw).unwrap_err().to_string(),
            msg,
            "{pw}"
        );
    }
    assert!(check_password_policy("Str0ng!Pass-ok").is_ok());
}

#[test]
fn weak_password_allowed_when_asked() {
    let c = json!({"rpc_password": "weak", "coins": []});
    assert!(load(c).is_err());
    let c = json!({"rpc_password": "weak", "allow_weak_password": true, "coins": []});
    let conf = load(c).unwrap();
    assert_eq!(conf.rpc_password.as_deref(), Some("weak"));
    assert!(
        !format!("{conf:?}").contains("weak"),
        "Debug redacts rpc_password"
    );
    let c = json!({"rpc_password": "", "coins": []});
    assert_eq!(
        load(c).unwrap_err().to_string(),
        "rpc_password must not be empty"
    );
    let c = json!({"rpc_password": 5, "coins": []});
    assert_eq!(
        load(c).unwrap_err().to_string(),
        "rpc_password must be string"
    );
}

#[test]
fn ports_as_kdf() {
    let port = |v: Value| load(json!({"rpcport": v, "coins": []})).map(|c| c.rpcport);
    assert_eq!(port(Value::Null).unwrap(), 7783);
    assert_eq!(port(json!(0)).unwrap(), 0);
    assert_eq!(port(json!("8000")).unwrap(), 8000);
    assert_eq!(port(json!(80)).unwrap_err().to_string(), "rpcport < 1024");
    assert_eq!(port(json!(70000)).unwrap_err().to_string(), "rpcport > u16");
    assert!(port(json!(-5)).is_err());
}

#[test]
fn defaults() {
    let c = load(json!({"coins": []})).unwrap();
    assert_eq!(c.rpcip.to_string(), "127.0.0.1");
    assert!(c.rpc_local_only);
    assert_eq!(c.rpccors, "http://localhost:3000");
    assert_eq!(c.gui, "UNKNOWN");
    assert_eq!(c.limits.max_batch_items, 1000);
    assert!(load(json!({"coins": [], "rpcip": 1})).is_err());
    assert!(load(json!({"coins": [], "netid": 7777})).is_err());
    assert!(load(json!({"coins": [], "passphrase": ""})).is_err());
    assert!(load(json!({"coins": [], "max_batch_items": 0})).is_err());
}

#[test]
fn electrum_cost_budget_keys() {
    let b = load(json!({"coins": []})).unwrap().limits.electrum_budget;
    assert_eq!((b.limit, b.reserve, b.decay_per_sec), (800.0, 100.0, 1.0));
    let c = json!({"coins": [], "electrum_cost_budget": 150, "electrum_cost_reserve": "20",
        "electrum_cost_decay_per_sec": 0.5});
    let b = load(c).unwrap().limits.electrum_budget;
    assert_eq!((b.limit, b.reserve, b.decay_per_sec), (150.0, 20.0, 0.5));
    let off = load(json!({"coins": [], "electrum_cost_budget": 0})).unwrap();
    assert!(off.limits.electrum_budget.is_off());
    for (bad, msg) in [
        (
            json!({"electrum_cost_budget": -1}),
            "electrum_cost_budget must be a non-negative number",
        ),
        (
            json!({"electrum_cost_reserve": "x"}),
            "electrum_cost_reserve must be a non-negative number",
        ),
        (
            json!({"electrum_cost_decay_per_sec": 0}),
            "electrum_cost_decay_per_sec must be greater than 0",
        ),
        (
            json!({"electrum_cost_budget": 100, "electrum_cost_reserve": 100}),
            "electrum_cost_reserve (100) must be less than electrum_cost_budget (100)",
        ),
    ] {
        let mut c = bad.clone();
        c["coins"] = json!([]);
        assert_eq!(load(c).unwrap_err().to_string(), msg, "{bad}");
    }
}
