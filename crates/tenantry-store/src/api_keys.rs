//! API key records: issuing, authenticating and reading them. Scoping to an MSP happens
//! in [`crate::MspScope`] and [`crate::Operator`]; the functions here take the MSP id
//! explicitly and are private to the crate.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Postgres, Transaction};
use tenantry_domain::api_key::KEY_PREFIX;
use tenantry_domain::{
    ApiKeyRecordId, ApiKeyToken, DisplayName, KeyId, MspId, OperatorId, OrganizationId,
    OrganizationLimit, Role,
};
use uuid::Uuid;

use crate::error::{AuthError, StoreError};
use crate::ids::NullableUuid;
use crate::key_cache::{KeyCache, KnownKey};
use crate::key_hash::ApiKeyPepper;
use crate::operator::MspRecord;
use crate::operators::{self, KeyHolder, OperatorRecord};
use crate::principal::Principal;

/// A key as the API shows it: never the secret, never the digest.
#[derive(Clone, Debug)]
pub struct ApiKeyRecord {
    pub id: ApiKeyRecordId,
    pub msp_id: MspId,
    pub key_id: KeyId,
    pub name: String,
    pub role: Role,
    pub organizations: OrganizationLimit,
    /// The person who holds the key.
    pub operator: OperatorRecord,
    pub created_by: Option<ApiKeyRecordId>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a caller asks for when creating a key.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub name: DisplayName,
    pub role: Role,
    pub organizations: OrganizationLimit,
    /// Whose key it is.
    pub operator: KeyHolder,
}

/// The full key, returned exactly once at creation. Not `Debug`, not `Clone`.
pub struct IssuedKey(SecretString);

impl IssuedKey {
    /// The key to hand to the caller, once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Keyset pagination: up to `limit` rows with an id greater than `after`.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub limit: u32,
    pub after: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    #[sqlx(try_from = "Uuid")]
    api_key_id: ApiKeyRecordId,
    #[sqlx(try_from = "Uuid")]
    msp_id: MspId,
    key_id: String,
    name: String,
    role: String,
    limited: bool,
    organization_ids: Vec<Uuid>,
    operator_id: Uuid,
    operator_name: String,
    #[sqlx(try_from = "NullableUuid")]
    created_by: Option<ApiKeyRecordId>,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<KeyRow> for ApiKeyRecord {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<Self, Self::Error> {
        let role = row
            .role
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("api_key.role: {e}")))?;
        let key_id = KeyId::parse(&row.key_id)
            .ok_or_else(|| StoreError::Corrupt("api_key.key_id".into()))?;
        Ok(Self {
            id: row.api_key_id,
            msp_id: row.msp_id,
            key_id,
            name: row.name,
            role,
            organizations: organization_limit(row.limited, row.organization_ids),
            operator: operators::record(row.operator_id, row.operator_name),
            created_by: row.created_by,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }
}

fn organization_limit(limited: bool, ids: Vec<Uuid>) -> OrganizationLimit {
    if limited {
        OrganizationLimit::Only(ids.into_iter().map(OrganizationId::from_uuid).collect())
    } else {
        OrganizationLimit::All
    }
}

/// A key's columns with its organization list, read from [`key_from!`].
macro_rules! key_columns {
    () => {
        "k.api_key_id, k.msp_id, k.key_id, k.name, k.role, k.limited,
        coalesce((select array_agg(o.organization_id order by o.organization_id)
                  from api_key_organization o where o.api_key_id = k.api_key_id), '{}') as organization_ids,
        k.operator_id, p.name as operator_name,
        k.created_by, k.created_at, k.last_used_at, k.revoked_at"
    };
}

/// A key with the person holding it.
macro_rules! key_from {
    () => {
        "from api_key k join operator p on p.msp_id = k.msp_id and p.operator_id = k.operator_id"
    };
}

/// Selects a key with its organization list; callers append the `where` clause.
const SELECT_KEY: &str = concat!("select ", key_columns!(), " ", key_from!());

/// A key with its MSP's row (`GET /api/v1/me`).
const SELECT_KEY_AND_MSP: &str = concat!(
    "select ",
    key_columns!(),
    ", m.name as msp_name, m.created_at as msp_created_at ",
    key_from!(),
    " join msp m on m.msp_id = k.msp_id"
);

/// What authentication reads: the key, its digest and its MSP's row, by public id.
const SELECT_KEY_TO_VERIFY: &str = concat!(
    "select ",
    key_columns!(),
    ", k.secret_hmac, m.name as msp_name, m.created_at as msp_created_at ",
    key_from!(),
    " join msp m on m.msp_id = k.msp_id where k.key_id = $1"
);

pub(crate) async fn find(
    db: &PgPool,
    msp_id: MspId,
    id: ApiKeyRecordId,
) -> Result<ApiKeyRecord, StoreError> {
    let sql = format!("{SELECT_KEY} where k.msp_id = $1 and k.api_key_id = $2");
    sqlx::query_as::<_, KeyRow>(sqlx::AssertSqlSafe(sql))
        .bind(msp_id.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

/// A key and its MSP's row, as [`SELECT_KEY_AND_MSP`] and authentication read them.
#[derive(sqlx::FromRow)]
struct KeyWithMspRow {
    #[sqlx(flatten)]
    key: KeyRow,
    msp_name: String,
    msp_created_at: DateTime<Utc>,
}

impl TryFrom<KeyWithMspRow> for (MspRecord, ApiKeyRecord) {
    type Error = StoreError;

    fn try_from(row: KeyWithMspRow) -> Result<Self, Self::Error> {
        let msp = MspRecord {
            id: row.key.msp_id,
            name: row.msp_name,
            created_at: row.msp_created_at,
        };
        Ok((msp, row.key.try_into()?))
    }
}

/// A key with its MSP's row, in one statement (`GET /api/v1/me`).
pub(crate) async fn find_with_msp(
    db: &PgPool,
    msp_id: MspId,
    id: ApiKeyRecordId,
) -> Result<(MspRecord, ApiKeyRecord), StoreError> {
    let sql = format!("{SELECT_KEY_AND_MSP} where k.msp_id = $1 and k.api_key_id = $2");
    sqlx::query_as::<_, KeyWithMspRow>(sqlx::AssertSqlSafe(sql))
        .bind(msp_id.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

pub(crate) async fn list(
    db: &PgPool,
    msp_id: MspId,
    page: Page,
) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let sql = format!(
        "{SELECT_KEY} where k.msp_id = $1 and ($2::uuid is null or k.api_key_id > $2)
         order by k.api_key_id limit $3"
    );
    sqlx::query_as::<_, KeyRow>(sqlx::AssertSqlSafe(sql))
        .bind(msp_id.as_uuid())
        .bind(page.after)
        .bind(i64::from(page.limit))
        .fetch_all(db)
        .await?
        .into_iter()
        .map(ApiKeyRecord::try_from)
        .collect()
}

/// The operator a new key of the operator CLI belongs to (no minting key: `Minter` means
/// a new person named after the key).
pub(crate) async fn cli_holder(
    tx: &mut Transaction<'_, Postgres>,
    msp_id: MspId,
    new: &NewApiKey,
) -> Result<OperatorId, StoreError> {
    Ok(match &new.operator {
        KeyHolder::Existing(id) => operators::find(tx, msp_id, *id).await?.id,
        KeyHolder::New(name) => operators::insert(tx, msp_id, name, None).await?.id,
        KeyHolder::Minter => {
            let name = DisplayName::parse(&format!("holder of {}", new.name.as_str()))
                .or_else(|_| DisplayName::parse(new.name.as_str()))
                .map_err(|e| StoreError::Corrupt(format!("operator name: {e}")))?;
            operators::insert(tx, msp_id, &name, None).await?.id
        }
    })
}

/// Inserts a key of `operator` inside the caller's transaction and returns it with its
/// one-time secret. `new.operator` was resolved to `operator` by the caller.
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    pepper: &ApiKeyPepper,
    msp_id: MspId,
    new: &NewApiKey,
    operator: OperatorId,
    created_by: Option<ApiKeyRecordId>,
) -> Result<(ApiKeyRecord, IssuedKey), StoreError> {
    if let OrganizationLimit::Only(ids) = &new.organizations {
        ensure_organizations_belong(tx, msp_id, ids).await?;
    }
    let (key_id, secret) = generate_key_material()?;
    let id = ApiKeyRecordId::new();
    let limited = matches!(new.organizations, OrganizationLimit::Only(_));
    sqlx::query(
        "insert into api_key (api_key_id, msp_id, key_id, secret_hmac, name, role, limited, created_by, operator_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id.as_uuid())
    .bind(msp_id.as_uuid())
    .bind(key_id.as_str())
    .bind(pepper.digest(&key_id, secret.expose_secret()))
    .bind(new.name.as_str())
    .bind(new.role.as_str())
    .bind(limited)
    .bind(created_by.map(|id| id.as_uuid()))
    .bind(operator.as_uuid())
    .execute(&mut **tx)
    .await?;
    if let OrganizationLimit::Only(ids) = &new.organizations {
        let ids: Vec<Uuid> = ids.iter().map(OrganizationId::as_uuid).collect();
        sqlx::query(
            "insert into api_key_organization (msp_id, api_key_id, organization_id)
             select $1, $2, unnest($3::uuid[])",
        )
        .bind(msp_id.as_uuid())
        .bind(id.as_uuid())
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
    }
    let sql = format!("{SELECT_KEY} where k.api_key_id = $1");
    let record: ApiKeyRecord = sqlx::query_as::<_, KeyRow>(sqlx::AssertSqlSafe(sql))
        .bind(id.as_uuid())
        .fetch_one(&mut **tx)
        .await?
        .try_into()?;
    let full = format!("{KEY_PREFIX}{key_id}_{}", secret.expose_secret());
    Ok((record, IssuedKey(SecretString::from(full))))
}

async fn ensure_organizations_belong(
    tx: &mut Transaction<'_, Postgres>,
    msp_id: MspId,
    ids: &BTreeSet<OrganizationId>,
) -> Result<(), StoreError> {
    let wanted: Vec<Uuid> = ids.iter().map(OrganizationId::as_uuid).collect();
    let found: Vec<Uuid> = sqlx::query_scalar(
        "select organization_id from organization where msp_id = $1 and organization_id = any($2)",
    )
    .bind(msp_id.as_uuid())
    .bind(&wanted)
    .fetch_all(&mut **tx)
    .await?;
    match ids.iter().find(|id| !found.contains(&id.as_uuid())) {
        Some(missing) => Err(StoreError::UnknownOrganization(*missing)),
        None => Ok(()),
    }
}

/// 64 random bits of public key id and 256 random bits of secret, from the OS.
fn generate_key_material() -> Result<(KeyId, SecretString), StoreError> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id)
        .and_then(|()| getrandom::fill(&mut secret))
        .map_err(|e| StoreError::Corrupt(format!("the OS random source failed: {e}")))?;
    let key_id = KeyId::parse(&hex::encode(id))
        .ok_or_else(|| StoreError::Corrupt("generated key id".into()))?;
    Ok((key_id, SecretString::from(hex::encode(secret))))
}

#[derive(sqlx::FromRow)]
struct AuthRow {
    #[sqlx(flatten)]
    shown: KeyWithMspRow,
    secret_hmac: Vec<u8>,
}

/// A digest that matches nothing, verified against when the key id is unknown so that
/// unknown and known ids cost the same time.
const DECOY_DIGEST: [u8; 32] = [0; 32];

/// Verifies a presented key against its row, from `cache` when it holds the row (no
/// database round trip), else read in one statement. Uses are written to `last_used_at`
/// at a minute's precision: in the background when the cache is live, else here.
pub(crate) async fn authenticate(
    db: &PgPool,
    pepper: &ApiKeyPepper,
    cache: &KeyCache,
    presented: &str,
) -> Result<Principal, AuthError> {
    let token = ApiKeyToken::parse(presented).map_err(|_| AuthError::Malformed)?;
    let known = match cache.get(token.key_id()) {
        Some(known) => known,
        None => {
            let generation = cache.generation();
            let Some(known) = read_key(db, token.key_id()).await? else {
                let _ = pepper.verify(token.key_id(), token.secret(), &DECOY_DIGEST);
                return Err(AuthError::UnknownKey);
            };
            let known = Arc::new(known);
            cache.insert(token.key_id().clone(), known.clone(), generation);
            known
        }
    };
    if !pepper.verify(token.key_id(), token.secret(), &known.secret_hmac) {
        return Err(AuthError::WrongSecret);
    }
    if known.revoked {
        return Err(AuthError::Revoked);
    }
    let (id, now) = (known.principal.api_key_id(), Utc::now());
    if cache.note_use(id, now) && !cache.is_live() {
        record_uses(db, &[(id, now)]).await?;
    }
    Ok(known.principal.clone())
}

async fn read_key(db: &PgPool, key_id: &KeyId) -> Result<Option<KnownKey>, AuthError> {
    let row: Option<AuthRow> = sqlx::query_as(SELECT_KEY_TO_VERIFY)
        .bind(key_id.as_str())
        .fetch_optional(db)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let (msp, key): (MspRecord, ApiKeyRecord) = row
        .shown
        .try_into()
        .map_err(|_| AuthError::Corrupt("api_key"))?;
    Ok(Some(KnownKey {
        secret_hmac: row.secret_hmac,
        revoked: key.revoked_at.is_some(),
        principal: Principal::new(
            key.msp_id,
            key.id,
            key_id.clone(),
            key.role,
            key.organizations.clone(),
            key.operator.clone(),
        ),
        shown: (msp, key),
    }))
}

/// Writes keys' last uses in one statement; a row already within a minute of its use is
/// left alone, so a batch from several processes writes each key at most once a minute.
pub(crate) async fn record_uses(
    db: &PgPool,
    uses: &[(ApiKeyRecordId, DateTime<Utc>)],
) -> Result<u64, sqlx::Error> {
    let ids: Vec<Uuid> = uses.iter().map(|(id, _)| id.as_uuid()).collect();
    let times: Vec<DateTime<Utc>> = uses.iter().map(|(_, at)| *at).collect();
    let written = sqlx::query(
        "update api_key k set last_used_at = u.used_at
         from unnest($1::uuid[], $2::timestamptz[]) as u(api_key_id, used_at)
         where k.api_key_id = u.api_key_id
           and (k.last_used_at is null or k.last_used_at < u.used_at - interval '1 minute')",
    )
    .bind(&ids)
    .bind(&times)
    .execute(db)
    .await?;
    Ok(written.rows_affected())
}
