//! What can go wrong in `coins`: typed, so `rpc/error.rs` alone decides the wire shape.

use crate::electrum::ElectrumError;

/// An error from activating or using a coin.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoinError {
    /// The coin is not active.
    #[error("No such coin: {0}")]
    NoSuchCoin(String),
    /// Active, or being activated, already.
    #[error("Coin {0} already initialized")]
    AlreadyActive(String),
    /// Not in the coins file, wrong protocol, bad format for the coin.
    #[error("{0}")]
    Config(String),
    /// A request field with a bad value (e.g. a server entry).
    #[error("{0}")]
    InvalidParams(String),
    /// No wallet key: KDF's no-login mode.
    #[error("no wallet key")]
    NoKey,
    /// The first balance read failed, so the coin was not activated.
    #[error("Deactivated coin due to error in balance querying: {0}")]
    ActivationFailed(ElectrumError),
    /// A token's coins-file entry is missing (KDF's `TokenConfigIsNotFound`).
    #[error("Token {0} config is not found")]
    TokenConfigNotFound(String),
    /// A token's entry cannot be used: bad contract checksum, decimals (KDF's
    /// `UnexpectedTokenProtocol`).
    #[error("{message}")]
    TokenProtocol {
        /// The token.
        ticker: String,
        /// What is wrong, as the legacy answer words it.
        message: String,
    },
    /// The wallet's database failed.
    #[error("Wallet storage error: {0}")]
    Storage(String),
    /// An HD-only request that cannot be answered.
    #[error("{0:?}")]
    Hd(crate::coins::utxo::HdFailure),
    /// An upstream read failed.
    #[error("{0}")]
    Electrum(ElectrumError),
    /// An EVM node call failed (after failover).
    #[error("{0}")]
    Evm(crate::evm::EvmError),
    /// An EVM activation could not reach a node or found the wrong chain; nothing was activated.
    #[error("{0}")]
    EvmActivation(crate::evm::EvmError),
    /// `enable_erc20` for a token whose platform coin is not active.
    #[error("Platform coin {0} is not activated")]
    PlatformNotActive(String),
}
