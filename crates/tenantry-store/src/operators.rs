//! Operators: the people who hold an MSP's API keys. Four eyes compares operators, not
//! keys, so a person who mints a second key is still one person. A key minted by a key
//! belongs to the minting key's operator unless an owner names a new person for it; the
//! operator CLI names (or defaults) one for each key it mints.
//!
//! Not the service operator of [`crate::Operator`], who stands outside every MSP.

use serde::Serialize;
use sqlx::PgConnection;
use tenantry_domain::{ApiKeyRecordId, DisplayName, MspId, OperatorId};
use uuid::Uuid;

use crate::error::StoreError;

/// A person holding keys, as listings, `/me` and the audit log name them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OperatorRecord {
    pub id: OperatorId,
    pub name: String,
}

/// Whose key a new key is.
#[derive(Clone, Debug)]
pub enum KeyHolder {
    /// The person holding the minting key (through the API), or, from the operator CLI, a
    /// new person named after the key.
    Minter,
    /// An operator who already holds keys of the MSP.
    Existing(OperatorId),
    /// A new person (an owner adding a technician to the MSP, or the operator CLI).
    New(DisplayName),
}

/// Inserts a new operator of `msp` in the caller's transaction.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    msp: MspId,
    name: &DisplayName,
    created_by: Option<ApiKeyRecordId>,
) -> Result<OperatorRecord, StoreError> {
    let id = OperatorId::new();
    sqlx::query(
        "insert into operator (operator_id, msp_id, name, created_by_key) values ($1, $2, $3, $4)",
    )
    .bind(id.as_uuid())
    .bind(msp.as_uuid())
    .bind(name.as_str())
    .bind(created_by.map(|k| k.as_uuid()))
    .execute(&mut *conn)
    .await?;
    Ok(OperatorRecord {
        id,
        name: name.as_str().to_owned(),
    })
}

/// An operator of `msp`; `NotFound` for another MSP's or an unknown id.
pub(crate) async fn find(
    conn: &mut PgConnection,
    msp: MspId,
    id: OperatorId,
) -> Result<OperatorRecord, StoreError> {
    let name: Option<String> =
        sqlx::query_scalar("select name from operator where msp_id = $1 and operator_id = $2")
            .bind(msp.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(OperatorRecord {
        id,
        name: name.ok_or(StoreError::NotFound)?,
    })
}

/// Builds a record from a joined row.
pub(crate) fn record(id: Uuid, name: String) -> OperatorRecord {
    OperatorRecord {
        id: OperatorId::from_uuid(id),
        name,
    }
}
