//! `protocol_data` of ETH and ERC20 entries of KDF's coins file.

use super::address::parse_checksummed;
use super::amount::MAX_DECIMALS;
use alloy_primitives::Address;
use serde_json::Value;

/// KDF's ETH-type decimals (`ETH_DECIMALS`); the entry's `decimals` is not read for them.
pub const ETH_DECIMALS: u8 = 18;

/// What an EVM entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvmConf {
    /// A platform coin (ETH, BNB, MATIC, …).
    Eth {
        /// `protocol.protocol_data.chain_id`, required since KDF v2.5.0-beta.
        chain_id: u64,
        /// Always 18.
        decimals: u8,
    },
    /// A token on a platform coin.
    Erc20 {
        /// The platform coin's ticker.
        platform: String,
        /// The token contract, given in exact EIP-55 form.
        contract: Address,
        /// The entry's `decimals`; `None` when absent or 0, in which case KDF asks the
        /// contract's `decimals()` at activation.
        decimals: Option<u8>,
    },
}

/// Why an entry is not a usable EVM coin; the texts say which field is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    /// `protocol.type` is neither ETH nor ERC20.
    #[error("protocol type '{0}' is not an EVM protocol")]
    NotEvm(String),
    /// `protocol_data` is missing or not an object.
    #[error("protocol_data of {0} must be an object")]
    NoProtocolData(&'static str),
    /// `protocol_data.chain_id` is missing or not an unsigned integer.
    #[error("protocol_data.chain_id must be an unsigned integer")]
    ChainId,
    /// `protocol_data.platform` is missing or not a non-empty string.
    #[error("protocol_data.platform must be a non-empty string")]
    Platform,
    /// `protocol_data.contract_address` is missing or not a string.
    #[error("protocol_data.contract_address must be a string")]
    ContractMissing,
    /// The contract address is not `0x` + 40 hex in EIP-55 form (KDF's texts).
    #[error("contract_address {addr}: {reason}")]
    Contract {
        /// As written in the entry.
        addr: String,
        /// `Invalid address checksum`, `Address must be prefixed with 0x`, …
        reason: String,
    },
    /// `decimals` is not an integer in 0..=77.
    #[error("'decimals' must be an integer from 0 to {MAX_DECIMALS}")]
    Decimals,
}

impl EvmConf {
    /// From a coins-file entry (the JSON object).
    pub fn from_entry(entry: &Value) -> Result<EvmConf, ConfError> {
        let protocol = entry.get("protocol");
        let kind = protocol
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        EvmConf::from_parts(
            kind,
            protocol.and_then(|p| p.get("protocol_data")),
            entry.get("decimals"),
        )
    }

    /// From `protocol.type`, `protocol.protocol_data` and the entry's raw `decimals` (kept raw
    /// because "absent" and "0" both mean "ask the chain" for a token).
    pub fn from_parts(
        kind: &str,
        data: Option<&Value>,
        decimals: Option<&Value>,
    ) -> Result<EvmConf, ConfError> {
        match kind {
            "ETH" => {
                let data = data
                    .filter(|d| d.is_object())
                    .ok_or(ConfError::NoProtocolData("ETH"))?;
                let chain_id = data
                    .get("chain_id")
                    .and_then(Value::as_u64)
                    .ok_or(ConfError::ChainId)?;
                Ok(EvmConf::Eth {
                    chain_id,
                    decimals: ETH_DECIMALS,
                })
            }
            "ERC20" => {
                let data = data
                    .filter(|d| d.is_object())
                    .ok_or(ConfError::NoProtocolData("ERC20"))?;
                let platform = data
                    .get("platform")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or(ConfError::Platform)?
                    .to_string();
                let addr = data
                    .get("contract_address")
                    .and_then(Value::as_str)
                    .ok_or(ConfError::ContractMissing)?;
                let contract = parse_checksummed(addr).map_err(|reason| ConfError::Contract {
                    addr: addr.to_string(),
                    reason,
                })?;
                let decimals = match decimals {
                    None | Some(Value::Null) => None,
                    Some(v) => match v.as_u64() {
                        Some(0) => None,
                        Some(d) if d <= u64::from(MAX_DECIMALS) => Some(d as u8),
                        _ => return Err(ConfError::Decimals),
                    },
                };
                Ok(EvmConf::Erc20 {
                    platform,
                    contract,
                    decimals,
                })
            }
            other => Err(ConfError::NotEvm(other.to_string())),
        }
    }

    /// The chain id of a platform entry (`None` for tokens: theirs is the platform's).
    pub fn chain_id(&self) -> Option<u64> {
        match self {
            EvmConf::Eth { chain_id, .. } => Some(*chain_id),
            EvmConf::Erc20 { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn eth_entry() {
        let e = json!({"coin":"ETH","chain_id":1,"mm2":1,"decimals":6,
            "protocol":{"type":"ETH","protocol_data":{"chain_id":1}}});
        // decimals in the entry is ignored for ETH-type coins.
        assert_eq!(
            EvmConf::from_entry(&e).unwrap(),
            EvmConf::Eth {
                chain_id: 1,
                decimals: 18
            }
        );
        let bare = json!({"coin":"ETH","chain_id":1,"protocol":{"type":"ETH"}});
        assert_eq!(
            EvmConf::from_entry(&bare).unwrap_err(),
            ConfError::NoProtocolData("ETH")
        );
        let bad = json!({"protocol":{"type":"ETH","protocol_data":{"chain_id":"1"}}});
        assert_eq!(EvmConf::from_entry(&bad).unwrap_err(), ConfError::ChainId);
    }

    #[test]
    fn erc20_entry() {
        let e = json!({"coin":"USDC-BASE","chain_id":8453,"decimals":6,"protocol":{"type":"ERC20",
            "protocol_data":{"platform":"ETH-BASE","contract_address":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}}});
        let c = EvmConf::from_entry(&e).unwrap();
        let EvmConf::Erc20 {
            platform,
            contract,
            decimals,
        } = &c
        else {
            panic!("{c:?}")
        };
        assert_eq!(platform, "ETH-BASE");
        assert_eq!(
            contract.to_checksum(None),
            "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
        );
        assert_eq!(*decimals, Some(6));
        assert_eq!(c.chain_id(), None);
        // Absent or 0: ask the chain.
        for d in [json!(null), json!(0)] {
            let mut e = e.clone();
            e["decimals"] = d;
            assert!(matches!(
                EvmConf::from_entry(&e).unwrap(),
                EvmConf::Erc20 { decimals: None, .. }
            ));
        }
        for d in [json!(78), json!(-1), json!("6"), json!(6.5)] {
            let mut e = e.clone();
            e["decimals"] = d;
            assert_eq!(EvmConf::from_entry(&e).unwrap_err(), ConfError::Decimals);
        }
    }

    #[test]
    fn beamx_avx20_is_refused() {
        // The one ERC20 entry of coins@519e6a3 whose contract is not in EIP-55 form.
        let e = json!({"coin":"BEAMX-AVX20","decimals":18,"protocol":{"type":"ERC20",
            "protocol_data":{"platform":"AVAX","contract_address":"0x62d0a8458ed7719fdaf978fe5929c6d342b0bfce"}}});
        let err = EvmConf::from_entry(&e).unwrap_err();
        assert_eq!(
            err,
            ConfError::Contract {
                addr: "0x62d0a8458ed7719fdaf978fe5929c6d342b0bfce".into(),
                reason: "Invalid address checksum".into()
            }
        );
        assert!(err.to_string().ends_with("Invalid address checksum"));
    }

    #[test]
    fn other_refusals() {
        let no_prefix = json!({"protocol":{"type":"ERC20","protocol_data":
            {"platform":"ETH","contract_address":"833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}}});
        assert!(EvmConf::from_entry(&no_prefix)
            .unwrap_err()
            .to_string()
            .ends_with("Address must be prefixed with 0x"));
        let no_platform = json!({"protocol":{"type":"ERC20","protocol_data":
            {"contract_address":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}}});
        assert_eq!(
            EvmConf::from_entry(&no_platform).unwrap_err(),
            ConfError::Platform
        );
        let no_contract = json!({"protocol":{"type":"ERC20","protocol_data":{"platform":"ETH"}}});
        assert_eq!(
            EvmConf::from_entry(&no_contract).unwrap_err(),
            ConfError::ContractMissing
        );
        let utxo = json!({"protocol":{"type":"UTXO"}});
        assert_eq!(
            EvmConf::from_entry(&utxo).unwrap_err(),
            ConfError::NotEvm("UTXO".into())
        );
    }
}
