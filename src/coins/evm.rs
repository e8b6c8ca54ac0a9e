//! An activated EVM coin: an ETH-type platform or an ERC-20 token on one. A platform and the
//! tokens activated with it share one `EvmClient`, so their balance reads share JSON-RPC arrays.
//!
//! Activation reads everything it answers with (chain id, decimals, balances, block) before it
//! commits, so a failure leaves no coin half-active (KDF's legacy `enable` keeps a coin whose
//! first balance read failed; kdfd does not).

use super::{ActiveCoins, Coin, CoinConf, CoinError, Registry, Reservation};
use crate::crypto::hd::{Chain, CoinPath, HdPath};
use crate::crypto::{KeyPair, WalletKeys};
use crate::evm::{
    address, amount::format_units, ClientOptions, EvmClient, EvmConf, EvmError, Query,
};
use alloy_primitives::{Address, U256};
use serde_json::json;
use std::sync::Arc;

/// A coin ready to answer balance requests.
pub struct EvmCoin {
    /// The coin's registry entry.
    pub conf: Arc<CoinConf>,
    /// Its protocol data.
    pub evm: EvmConf,
    /// The nodes (shared by a platform and its tokens).
    pub client: EvmClient,
    /// The wallet address.
    pub address: Address,
    /// `04` + X‖Y in lowercase hex, as v2 activation answers show it.
    pub pubkey: String,
    /// 18 for platforms; the file's or the contract's for tokens.
    pub decimals: u8,
    /// Effective confirmations (request overrides the coin entry).
    pub required_confirmations: u64,
    /// Activation order, for listings.
    pub seq: u64,
    /// A token's platform ticker; `None` for a platform.
    pub platform: Option<String>,
}

impl EvmCoin {
    /// The EIP-55 address.
    pub fn display_address(&self) -> String {
        address::display(&self.address)
    }

    /// The balance read of this coin's wallet address.
    pub fn query(&self) -> Query {
        match &self.evm {
            EvmConf::Eth { .. } => Query::Eth(self.address),
            EvmConf::Erc20 { contract, .. } => Query::Token {
                contract: *contract,
                holder: self.address,
            },
        }
    }

    /// The token contract (`None` for a platform).
    pub fn contract(&self) -> Option<Address> {
        match &self.evm {
            EvmConf::Eth { .. } => None,
            EvmConf::Erc20 { contract, .. } => Some(*contract),
        }
    }

    /// Base units as KDF's decimal string.
    pub fn format(&self, units: U256) -> Result<String, CoinError> {
        format_units(units, u32::from(self.decimals)).map_err(|e| CoinError::Config(e.to_string()))
    }

    /// The spendable balance, as KDF's decimal string.
    pub async fn balance(&self) -> Result<String, CoinError> {
        let units = self
            .client
            .balance(self.query())
            .await
            .map_err(CoinError::Evm)?;
        self.format(units)
    }
}

/// What an ETH-type activation asks for.
#[derive(Debug, Clone, Default)]
pub struct EthActivation {
    /// Node URLs (http or https).
    pub urls: Vec<String>,
    /// Overrides the coin entry.
    pub required_confirmations: Option<u64>,
    /// Tokens to activate with the platform.
    pub tokens: Vec<TokenActivation>,
}

/// One token of an `enable_eth_with_tokens`.
#[derive(Debug, Clone)]
pub struct TokenActivation {
    /// The token's ticker.
    pub ticker: String,
    /// Overrides the token's entry.
    pub required_confirmations: Option<u64>,
}

/// Where a token's nodes come from.
pub enum Erc20Source {
    /// v2 `enable_erc20`: the active platform coin's nodes.
    Platform,
    /// Legacy `enable`: its own URLs (the platform need only be in the coins file).
    Urls(Vec<String>),
}

/// An activated platform with its tokens and what the activation read.
pub struct Activated {
    /// The platform.
    pub platform: Arc<EvmCoin>,
    /// Its tokens, in request order.
    pub tokens: Vec<Arc<EvmCoin>>,
    /// `eth_blockNumber` at activation.
    pub current_block: u64,
    /// Platform balance then token balances, when asked for.
    pub balances: Option<(String, Vec<String>)>,
}

/// The coin's protocol data from its entry.
pub fn evm_conf(conf: &CoinConf) -> Result<EvmConf, CoinError> {
    let decimals = conf.decimals_given.then(|| json!(conf.decimals));
    EvmConf::from_parts(
        &conf.protocol,
        conf.protocol_data.as_ref(),
        decimals.as_ref(),
    )
    .map_err(|e| CoinError::Config(format!("Coin {}: {e}", conf.ticker)))
}

/// The wallet's ETH key: the iguana key, or m/44'/60'/account'/0/0 in HD mode.
pub fn eth_key(keys: &WalletKeys) -> Result<KeyPair, CoinError> {
    match keys {
        WalletKeys::Iguana(k) => Ok(k.clone()),
        WalletKeys::Hd {
            seed, account_id, ..
        } => seed
            .key_at(&HdPath {
                coin: CoinPath {
                    purpose: 44,
                    coin_type: 60,
                },
                account: *account_id,
                chain: Chain::External,
                index: 0,
            })
            .map_err(|e| CoinError::Config(format!("ETH key derivation failed: {e}"))),
    }
}

/// Builds the client and checks the chain: `eth_chainId` is also the reachability probe.
/// kdfd difference: KDF never checks the chain id; kdfd refuses a node on another chain.
async fn connect(urls: Vec<String>, chain_id: u64) -> Result<EvmClient, CoinError> {
    let client = EvmClient::new(urls, ClientOptions::default()).map_err(|e| match e {
        EvmError::NoNodes => CoinError::InvalidParams(
            "Enable request for ETH coin must have at least 1 node URL".into(),
        ),
        other @ EvmError::BadUrl { .. } => CoinError::InvalidParams(other.to_string()),
        other => CoinError::EvmActivation(other),
    })?;
    client
        .check_chain_id(chain_id)
        .await
        .map_err(CoinError::EvmActivation)?;
    Ok(client)
}

/// A token's decimals: the entry's, else the contract's `decimals()`.
async fn token_decimals(client: &EvmClient, evm: &EvmConf) -> Result<u8, CoinError> {
    match evm {
        EvmConf::Erc20 {
            decimals: Some(d), ..
        } => Ok(*d),
        EvmConf::Erc20 { contract, .. } => client
            .token_decimals(*contract)
            .await
            .map_err(CoinError::EvmActivation),
        EvmConf::Eth { decimals, .. } => Ok(*decimals),
    }
}

fn reserve<'a>(coins: &'a ActiveCoins, ticker: &str) -> Result<Reservation<'a>, CoinError> {
    coins
        .reserve(ticker)
        .ok_or_else(|| CoinError::AlreadyActive(ticker.to_string()))
}

/// A token's EVM entry; an unusable one is KDF's `UnexpectedTokenProtocol`.
fn token_evm_conf(conf: &CoinConf) -> Result<EvmConf, CoinError> {
    evm_conf(conf).map_err(|e| match e {
        CoinError::Config(message) => CoinError::TokenProtocol {
            ticker: conf.ticker.clone(),
            message,
        },
        e => e,
    })
}

/// A token entry of `platform`, checked.
fn token_conf(
    registry: &Registry,
    ticker: &str,
    platform: &str,
) -> Result<(Arc<CoinConf>, EvmConf), CoinError> {
    if let Some(why) = registry.refusal(ticker) {
        return Err(CoinError::Config(format!(
            "Token {ticker} is listed in the coins file but not supported: {why}"
        )));
    }
    let conf = registry
        .get(ticker)
        .ok_or_else(|| CoinError::TokenConfigNotFound(ticker.to_string()))?;
    let evm = token_evm_conf(&conf)?;
    match &evm {
        EvmConf::Erc20 { platform: p, .. } if p == platform => Ok((conf, evm)),
        _ => Err(CoinError::Config(format!(
            "Coin {ticker} is not an ERC20 token of {platform}"
        ))),
    }
}

/// Activates an ETH-type platform and, together with it, its tokens: all or nothing.
pub async fn activate_eth(
    coins: &ActiveCoins,
    registry: &Registry,
    conf: Arc<CoinConf>,
    keys: &WalletKeys,
    req: EthActivation,
    get_balances: bool,
) -> Result<Activated, CoinError> {
    let ticker = conf.ticker.clone();
    let evm = evm_conf(&conf)?;
    let EvmConf::Eth { chain_id, decimals } = evm else {
        return Err(CoinError::Config(format!(
            "Coin {ticker} is not an ETH-type platform coin"
        )));
    };
    let reservation = reserve(coins, &ticker)?;
    let mut tokens = Vec::with_capacity(req.tokens.len());
    for t in &req.tokens {
        let (tconf, tevm) = token_conf(registry, &t.ticker, &ticker)?;
        tokens.push((
            reserve(coins, &t.ticker)?,
            tconf,
            tevm,
            t.required_confirmations,
        ));
    }
    let key = eth_key(keys)?;
    let client = connect(req.urls, chain_id).await?;
    let platform = Arc::new(EvmCoin {
        required_confirmations: req
            .required_confirmations
            .unwrap_or(conf.required_confirmations),
        conf,
        evm,
        client: client.clone(),
        address: address::eth_address(&key),
        pubkey: address::pubkey_hex(&key),
        decimals,
        seq: coins.next_seq(),
        platform: None,
    });
    let mut built = Vec::with_capacity(tokens.len());
    for (r, tconf, tevm, confirmations) in tokens {
        let decimals = token_decimals(&client, &tevm).await?;
        let coin = Arc::new(EvmCoin {
            required_confirmations: confirmations.unwrap_or(tconf.required_confirmations),
            conf: tconf,
            evm: tevm,
            client: client.clone(),
            address: platform.address,
            pubkey: platform.pubkey.clone(),
            decimals,
            seq: coins.next_seq(),
            platform: Some(ticker.clone()),
        });
        built.push((r, coin));
    }
    let current_block = client
        .block_number()
        .await
        .map_err(CoinError::EvmActivation)?;
    let balances = if get_balances {
        // One read for all: the client sends it as one JSON-RPC array.
        let queries: Vec<Query> = std::iter::once(platform.query())
            .chain(built.iter().map(|(_, c)| c.query()))
            .collect();
        let mut out = Vec::with_capacity(queries.len());
        let coins_in_order = std::iter::once(&platform).chain(built.iter().map(|(_, c)| c));
        for (res, coin) in client
            .balances(&queries)
            .await
            .into_iter()
            .zip(coins_in_order)
        {
            out.push(coin.format(res.map_err(CoinError::EvmActivation)?)?);
        }
        let first = out.remove(0);
        Some((first, out))
    } else {
        None
    };
    reservation.commit_evm(platform.clone());
    let mut token_coins = Vec::with_capacity(built.len());
    for (r, coin) in built {
        r.commit_evm(coin.clone());
        token_coins.push(coin);
    }
    tracing::info!(coin = %ticker, tokens = token_coins.len(), "EVM platform activated");
    Ok(Activated {
        platform,
        tokens: token_coins,
        current_block,
        balances,
    })
}

/// Activates one ERC-20 token; returns it with its balance.
pub async fn activate_erc20(
    coins: &ActiveCoins,
    registry: &Registry,
    conf: Arc<CoinConf>,
    keys: &WalletKeys,
    source: Erc20Source,
    required_confirmations: Option<u64>,
) -> Result<(Arc<EvmCoin>, String), CoinError> {
    let ticker = conf.ticker.clone();
    let evm = token_evm_conf(&conf)?;
    let EvmConf::Erc20 { platform, .. } = &evm else {
        return Err(CoinError::Config(format!(
            "Coin {ticker} is not an ERC20 token"
        )));
    };
    let platform = platform.clone();
    let reservation = reserve(coins, &ticker)?;
    let (client, key_addr, pubkey) = match source {
        Erc20Source::Platform => match coins.get_coin(&platform) {
            Some(Coin::Evm(p)) if p.platform.is_none() => {
                (p.client.clone(), p.address, p.pubkey.clone())
            }
            _ => return Err(CoinError::PlatformNotActive(platform)),
        },
        Erc20Source::Urls(urls) => {
            let pconf = registry.get(&platform).ok_or_else(|| {
                CoinError::Config(format!(
                    "Platform coin {platform} of {ticker} is not in the coins file"
                ))
            })?;
            let Some(chain_id) = evm_conf(&pconf)?.chain_id() else {
                return Err(CoinError::Config(format!(
                    "Platform coin {platform} of {ticker} is not an ETH-type coin"
                )));
            };
            let key = eth_key(keys)?;
            let client = connect(urls, chain_id).await?;
            (
                client,
                address::eth_address(&key),
                address::pubkey_hex(&key),
            )
        }
    };
    let decimals = token_decimals(&client, &evm).await?;
    let coin = Arc::new(EvmCoin {
        required_confirmations: required_confirmations.unwrap_or(conf.required_confirmations),
        conf,
        evm,
        client,
        address: key_addr,
        pubkey,
        decimals,
        seq: coins.next_seq(),
        platform: Some(platform),
    });
    let balance = match coin.client.balance(coin.query()).await {
        Ok(units) => coin.format(units)?,
        Err(e) => return Err(CoinError::EvmActivation(e)),
    };
    reservation.commit_evm(coin.clone());
    tracing::info!(coin = %ticker, "ERC20 token activated");
    Ok((coin, balance))
}

#[cfg(test)]
#[path = "evm_tests.rs"]
mod tests;
