//! Address tools and keys: `validateaddress`, `convertaddress` (+ v2 `convert_utxo_address`),
//! `sign_message`, `verify_message`, `get_public_key(_hash)`, `show_priv_key`; and the
//! sender-key lookup `withdraw` shares (spec 2.8–2.10).

use super::{required_str, Reply, RpcError};
use crate::coins::utxo::hd::AddressId;
use crate::coins::{self, UtxoCoin};
use crate::crypto::hd::HdPath;
use crate::crypto::{self, message, KeyPair, WalletKeys};
use crate::ctx::Ctx;
use bitcoin::hex::DisplayHex;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// KDF's `HDAddressSelector`: a path, or account/chain/index (untagged).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AddressSelector {
    /// `{"derivation_path": "m/44'/141'/0'/0/1"}`.
    Path {
        /// The full path.
        derivation_path: String,
    },
    /// `{"account_id", "chain", "address_id"}`.
    Id(AddressId),
}

/// The key, address and scripts a coin signs or sends with.
pub struct Signer {
    /// The private key.
    pub key: KeyPair,
    /// The address as shown.
    pub address: String,
    /// The address script's scripthash first (the one whose unspents are spent).
    pub scripthashes: Vec<String>,
}

/// An active coin or `NoSuchCoin`.
pub fn active_coin(ctx: &Ctx, ticker: &str) -> Result<Arc<UtxoCoin>, RpcError> {
    ctx.coins
        .get(ticker)
        .ok_or_else(|| RpcError::NoSuchCoin(ticker.to_string()))
}

/// The key of `coin` for `from`: the enabled address without it; an HD address with it (HD
/// mode only). `what` words the iguana refusal ("sign messages", "withdraw").
pub fn signer(
    ctx: &Ctx,
    coin: &UtxoCoin,
    from: Option<&AddressSelector>,
    what: &str,
) -> Result<Signer, RpcError> {
    let keys = ctx.keys.as_ref().ok_or(RpcError::NoPassphrase)?;
    let (seed, hd) = match (keys, &coin.hd) {
        (WalletKeys::Iguana(key), _) => {
            if from.is_some() {
                return Err(RpcError::InvalidParams(format!(
                    "You need to enable kdf with enable_hd to {what} with a specific account/address"
                )));
            }
            return Ok(Signer {
                key: key.clone(),
                address: coin.address.clone(),
                scripthashes: coin.scripthashes.clone(),
            });
        }
        (WalletKeys::Hd { seed, .. }, Some(hd)) => (seed, hd),
        (WalletKeys::Hd { .. }, None) => {
            return Err(RpcError::Internal(format!(
                "{} has no HD state in HD mode",
                coin.ticker()
            )))
        }
    };
    let coin_path = hd.deriver.coin_path;
    let path = match from {
        None => id_path(coin_path, hd.params.path_to_address),
        Some(AddressSelector::Id(id)) => id_path(coin_path, *id),
        Some(AddressSelector::Path { derivation_path }) => {
            HdPath::parse(derivation_path, &coin_path)
                .map_err(|e| RpcError::InvalidParams(e.to_string()))?
        }
    };
    let key = seed
        .key_at(&path)
        .map_err(|e| RpcError::InvalidParams(e.to_string()))?;
    let (address, scripthashes) =
        coins::utxo::scripts_for_pubkey(&coin.conf, &key.public_key(), coin.format)
            .map_err(RpcError::Internal)?;
    Ok(Signer {
        key,
        address,
        scripthashes,
    })
}

fn id_path(coin: crypto::hd::CoinPath, id: AddressId) -> HdPath {
    HdPath {
        coin,
        account: id.account_id,
        chain: id.chain,
        index: id.address_id,
    }
}

/// Legacy `validateaddress`: `{"result":{"is_valid":bool,"reason"?}}`.
pub async fn validateaddress(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let ticker = required_str(&req, "coin")?;
    let address = required_str(&req, "address")?;
    if let Some(coins::Coin::Evm(_)) = ctx.coins.get_coin(ticker) {
        // EVM: `0x` + 40 hex digits with a valid EIP-55 checksum (KDF's rule).
        return Ok(Reply::Json(
            match crate::evm::address::validate_address(address) {
                Ok(_) => json!({"result": {"is_valid": true}}),
                Err(reason) => json!({"result": {"is_valid": false, "reason": reason}}),
            },
        ));
    }
    let coin = active_coin(&ctx, ticker)?;
    Ok(Reply::Json(match validate(&coin.conf, address) {
        Ok(_) => json!({"result": {"is_valid": true}}),
        Err(reason) => json!({"result": {"is_valid": false, "reason": reason}}),
    }))
}

/// Parses an address and checks it may be used with the coin: a segwit address needs `segwit`.
pub fn validate(conf: &coins::CoinConf, address: &str) -> Result<coins::AddrKind, String> {
    let kind = coins::parse_address(conf, address)?;
    if matches!(kind, coins::AddrKind::P2wpkh(_) | coins::AddrKind::P2wsh(_)) && !conf.segwit {
        return Err(format!(
            "Address {address} has invalid prefix: {} does not support segwit",
            conf.ticker
        ));
    }
    Ok(kind)
}

#[derive(Deserialize)]
struct ToFormat {
    format: String,
}

fn convert(ctx: &Ctx, req: &Value) -> Result<String, RpcError> {
    let ticker = required_str(req, "coin")?;
    let conf = ctx
        .coins
        .get(ticker)
        .map(|c| c.conf.clone())
        .ok_or_else(|| RpcError::NoSuchCoin(ticker.to_string()))?;
    let from = required_str(req, "from")?;
    let to: ToFormat = match req.get("to_address_format") {
        None | Some(Value::Null) => {
            return Err(RpcError::InvalidParams(
                "No 'to_address_format' field".into(),
            ))
        }
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            RpcError::InvalidParams(format!("Error on parse UTXO address format: {e}"))
        })?,
    };
    coins::convert_address(&conf, from, &to.format).map_err(RpcError::InvalidParams)
}

/// Legacy `convertaddress`: `{"result":{"address"}}`.
pub async fn convertaddress(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let address = convert(&ctx, &req)?;
    Ok(Reply::Json(json!({"result": {"address": address}})))
}

/// v2 `convert_utxo_address` (kdfd extension: KDF has it legacy-only): `{"address"}`.
pub async fn convert_utxo_address(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let address = convert(&ctx, &params)?;
    Ok(Reply::Json(json!({"address": address})))
}

fn prefix(coin: &UtxoCoin) -> Result<&str, RpcError> {
    coin.conf
        .sign_message_prefix
        .as_deref()
        .ok_or(RpcError::PrefixNotFound)
}

/// The coin of a message request; KDF names an inactive one `CoinIsNotFound` here.
fn message_coin(ctx: &Ctx, ticker: &str) -> Result<Arc<UtxoCoin>, RpcError> {
    ctx.coins
        .get(ticker)
        .ok_or_else(|| crate::rpc::kdf_errors::coin_is_not_found(ticker))
}

#[derive(Deserialize)]
struct SignReq {
    coin: String,
    message: String,
    #[serde(default)]
    address: Option<AddressSelector>,
}

/// v2 `sign_message`: `{"signature": base64}`.
pub async fn sign_message(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: SignReq = super::parse(params)?;
    let coin = message_coin(&ctx, &req.coin)?;
    let prefix = prefix(&coin)?;
    let s = signer(&ctx, &coin, req.address.as_ref(), "sign messages")?;
    let signature = message::sign_message(&s.key, prefix, &req.message);
    Ok(Reply::Json(json!({ "signature": signature })))
}

#[derive(Deserialize)]
struct VerifyReq {
    coin: String,
    message: String,
    signature: String,
    address: String,
}

/// v2 `verify_message`: `{"is_valid": bool}`.
pub async fn verify_message(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: VerifyReq = super::parse(params)?;
    let coin = message_coin(&ctx, &req.coin)?;
    let prefix = prefix(&coin)?;
    let kind = validate(&coin.conf, &req.address).map_err(RpcError::InvalidParams)?;
    let h160 = kind.hash160().ok_or_else(|| {
        RpcError::AddressDecoding(format!(
            "Address {} is a P2WSH address: no key hash to verify against",
            req.address
        ))
    })?;
    let ok = message::verify_message(prefix, &req.message, &req.signature, &h160)
        .map_err(|e| RpcError::SignatureDecoding(e.to_string()))?;
    Ok(Reply::Json(json!({ "is_valid": ok })))
}

fn identity(ctx: &Ctx) -> Result<&KeyPair, RpcError> {
    ctx.keys
        .as_ref()
        .map(WalletKeys::identity)
        .ok_or_else(|| RpcError::Internal("public_key not available".into()))
}

fn no_params(params: &Value, method: &str) -> Result<(), RpcError> {
    match params {
        Value::Null => Ok(()),
        Value::Object(m) if m.is_empty() => Ok(()),
        other => Err(RpcError::InvalidParams(format!(
            "{method} takes no params, got {other}"
        ))),
    }
}

/// v2 `get_public_key`: the wallet's identity key (iguana key or HD internal key).
pub async fn get_public_key(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    no_params(&params, "get_public_key")?;
    let pk = identity(&ctx)?.public_key();
    Ok(Reply::Json(
        json!({ "public_key": pk.to_lower_hex_string() }),
    ))
}

/// v2 `get_public_key_hash`: rmd160(sha256) of that key.
pub async fn get_public_key_hash(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    no_params(&params, "get_public_key_hash")?;
    let h = identity(&ctx)?.hash160();
    Ok(Reply::Json(
        json!({ "public_key_hash": h.to_lower_hex_string() }),
    ))
}

/// Legacy `show_priv_key`: the enabled address's key as WIF with the coin's `wiftype`.
pub async fn show_priv_key(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let coin = active_coin(&ctx, required_str(&req, "coin")?)?;
    let s = signer(&ctx, &coin, None, "show keys")?;
    Ok(Reply::Json(json!({
        "result": {"coin": coin.ticker(), "priv_key": s.key.wif(coin.conf.wiftype, coin.conf.checksum)}
    })))
}
