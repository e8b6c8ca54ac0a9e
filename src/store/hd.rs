//! Typed access to `hd_account` (KDF's HD account storage: xpub and known address counts).

use super::{Store, StoreError};
use rusqlite::{params, Connection};

/// One HD account of one coin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HdAccountRow {
    pub account_id: u32,
    pub xpub: String,
    /// Known addresses on the external chain (0).
    pub external: u32,
    /// Known addresses on the internal (change) chain (1).
    pub internal: u32,
}

/// SQLite stores INTEGER as i64; a value outside u32 means a corrupt row.
fn u32_col(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u32> {
    let v: i64 = row.get(i)?;
    u32::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

fn read_accounts(c: &Connection, coin: &str) -> rusqlite::Result<Vec<HdAccountRow>> {
    let mut st = c.prepare_cached(
        "SELECT account_id, account_xpub, external_addresses_number, internal_addresses_number
         FROM hd_account WHERE coin = ?1 ORDER BY account_id",
    )?;
    let rows = st.query_map([coin], |r| {
        Ok(HdAccountRow {
            account_id: u32_col(r, 0)?,
            xpub: r.get(1)?,
            external: u32_col(r, 2)?,
            internal: u32_col(r, 3)?,
        })
    })?;
    rows.collect()
}

impl Store {
    /// The coin's accounts, by account id.
    pub async fn hd_accounts(&self, coin: &str) -> Result<Vec<HdAccountRow>, StoreError> {
        let coin = coin.to_string();
        self.call(move |c| Ok(read_accounts(c, &coin)?)).await
    }

    /// Inserts or updates one account (one transaction). For the same xpub the address counts
    /// only grow, as in `set_address_count` (an activation's scan that started before a
    /// `get_new_address` must not undo it); a new xpub replaces the row.
    pub async fn upsert_hd_account(
        &self,
        coin: &str,
        row: &HdAccountRow,
    ) -> Result<(), StoreError> {
        let (coin, row) = (coin.to_string(), row.clone());
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO hd_account (coin, account_id, account_xpub,
                     external_addresses_number, internal_addresses_number)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (coin, account_id) DO UPDATE SET
                     external_addresses_number = CASE WHEN account_xpub = excluded.account_xpub
                         THEN MAX(external_addresses_number, excluded.external_addresses_number)
                         ELSE excluded.external_addresses_number END,
                     internal_addresses_number = CASE WHEN account_xpub = excluded.account_xpub
                         THEN MAX(internal_addresses_number, excluded.internal_addresses_number)
                         ELSE excluded.internal_addresses_number END,
                     account_xpub = excluded.account_xpub",
                params![coin, row.account_id, row.xpub, row.external, row.internal],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Raises the known address count of one chain of an existing account to `n` (one
    /// transaction). Counts only grow (`MAX(old, new)`): a slower writer holding an older count
    /// must not hide addresses the user was already shown.
    pub async fn set_address_count(
        &self,
        coin: &str,
        account_id: u32,
        chain_internal: bool,
        n: u32,
    ) -> Result<(), StoreError> {
        let coin = coin.to_string();
        self.call(move |c| {
            // Column names cannot be bound; pick one of two fixed statements.
            let sql = if chain_internal {
                "UPDATE hd_account SET internal_addresses_number = MAX(internal_addresses_number, ?3) WHERE coin = ?1 AND account_id = ?2"
            } else {
                "UPDATE hd_account SET external_addresses_number = MAX(external_addresses_number, ?3) WHERE coin = ?1 AND account_id = ?2"
            };
            let tx = c.transaction()?;
            let changed = tx.execute(sql, params![coin, account_id, n])?;
            if changed == 0 {
                return Err(StoreError::Invalid(format!(
                    "no HD account {account_id} for {coin}"
                )));
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
