//! Microsoft Graph change notifications: the opt-in per organization, its sealed
//! clientState, the subscriptions Graph gave us and when to renew them, and the
//! notifications received. A notification whose clientState matches is recorded and
//! queues a delta discovery of its organization in one transaction; while one is queued,
//! more notifications join it instead of queueing another.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use tenantry_domain::{MspId, OrganizationId};
use uuid::Uuid;

use crate::discovery::{self, Mode, Trigger};
use crate::error::StoreError;
use crate::jobs::{JobArgs, SubscriptionsJob};
use crate::organizations;
use crate::queue::{self, NewJob};
use crate::sealing::{Keyring, Purpose};

/// What the clientState is sealed as (the organization's data key, this object name).
const CLIENT_STATE_OBJECT: &str = "graph-client-state";

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct SubscriptionRecord {
    pub subscription_id: String,
    pub resource: String,
    pub expires_at: DateTime<Utc>,
    pub renew_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub renewed_at: Option<DateTime<Utc>>,
}

/// Store for the receiver and the subscriptions job (not MSP-scoped: Graph names the
/// organization in the URL, the job in its arguments).
#[derive(Clone)]
pub struct ChangeNotificationStore {
    pool: PgPool,
    keyring: Option<std::sync::Arc<Keyring>>,
}

/// What the subscriptions job needs to know about an organization.
pub struct SubscriptionState {
    pub msp_id: MspId,
    pub enabled: bool,
    pub client_state: Option<SecretString>,
    pub subscriptions: Vec<SubscriptionRecord>,
}

/// A notification as received, before its clientState is checked.
pub struct Received<'a> {
    pub subscription_id: &'a str,
    pub client_state: &'a str,
    pub change_type: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub lifecycle_event: Option<&'a str>,
}

/// What the receiver did with a batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    pub recorded: usize,
    pub ignored: usize,
    pub discovery_queued: bool,
    pub resubscribe_queued: bool,
}

pub(crate) fn subscriptions_job(
    msp: MspId,
    organization: OrganizationId,
) -> Result<NewJob, StoreError> {
    Ok(NewJob::of(
        &SubscriptionsJob {
            organization_id: organization,
        },
        msp,
        Some(organization),
    )?
    .max_attempts(8)
    .priority(2))
}

/// Turns change notifications on or off for an organization and queues the job that
/// makes Graph agree. A clientState is made the first time.
pub(crate) async fn set_enabled(
    db: &PgPool,
    keyring: &Keyring,
    msp: MspId,
    organization: OrganizationId,
    enabled: bool,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "update organization set change_notifications = $3 where msp_id = $1 and organization_id = $2",
    )
    .bind(msp.as_uuid())
    .bind(organization.as_uuid())
    .bind(enabled)
    .execute(&mut *tx)
    .await?;
    if enabled {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|_| StoreError::Sealing(crate::sealing::SealError::Random))?;
        let key = organizations::data_key(&mut tx, keyring, organization).await?;
        let sealed = key.seal(
            &hex::encode(bytes),
            organization,
            Purpose::WebhookSigningSecret,
            CLIENT_STATE_OBJECT,
        )?;
        sqlx::query(
            "insert into graph_notification_secret (organization_id, sealed_client_state) values ($1, $2)
             on conflict (organization_id) do nothing",
        )
        .bind(organization.as_uuid())
        .bind(sealed)
        .execute(&mut *tx)
        .await?;
    }
    queue::enqueue(&mut tx, &subscriptions_job(msp, organization)?).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn subscriptions(
    db: &PgPool,
    organization: OrganizationId,
) -> Result<Vec<SubscriptionRecord>, StoreError> {
    Ok(sqlx::query_as(
        "select subscription_id, resource, expires_at, renew_at, created_at, renewed_at
         from graph_subscription where organization_id = $1 order by resource",
    )
    .bind(organization.as_uuid())
    .fetch_all(db)
    .await?)
}

/// A uniformly random offset up to `max_minutes`, from the CSPRNG (jitter only).
fn jitter_minutes(max_minutes: u16) -> i64 {
    let mut bytes = [0u8; 2];
    let _ = getrandom::fill(&mut bytes);
    i64::from(u16::from_le_bytes(bytes) % max_minutes.max(1))
}

impl ChangeNotificationStore {
    pub(crate) fn new(pool: PgPool, keyring: Option<std::sync::Arc<Keyring>>) -> Self {
        Self { pool, keyring }
    }

    fn keyring(&self) -> Result<&Keyring, StoreError> {
        self.keyring.as_deref().ok_or(StoreError::NoMasterKey)
    }

    async fn client_state(
        &self,
        organization: OrganizationId,
    ) -> Result<Option<SecretString>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let sealed: Option<Vec<u8>> = sqlx::query_scalar(
            "select sealed_client_state from graph_notification_secret where organization_id = $1",
        )
        .bind(organization.as_uuid())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let key = organizations::data_key(&mut conn, self.keyring()?, organization).await?;
        Ok(Some(key.open(
            &sealed,
            organization,
            Purpose::WebhookSigningSecret,
            CLIENT_STATE_OBJECT,
        )?))
    }

    /// The organization's credentials, for the subscriptions job's Graph calls.
    pub async fn credential(
        &self,
        organization: OrganizationId,
    ) -> Result<organizations::StoredCredential, StoreError> {
        organizations::stored_credential(&self.pool, self.keyring.as_deref(), organization).await
    }

    pub async fn state(
        &self,
        organization: OrganizationId,
    ) -> Result<SubscriptionState, StoreError> {
        let row: Option<(Uuid, bool)> = sqlx::query_as(
            "select msp_id, change_notifications from organization where organization_id = $1",
        )
        .bind(organization.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        let (msp, enabled) = row.ok_or(StoreError::NotFound)?;
        Ok(SubscriptionState {
            msp_id: MspId::from_uuid(msp),
            enabled,
            client_state: self.client_state(organization).await?,
            subscriptions: subscriptions(&self.pool, organization).await?,
        })
    }

    /// Records a subscription Graph created or renewed; renewal is due a day before it
    /// expires, minus up to two hours of jitter so renewals of many tenants spread out.
    pub async fn save_subscription(
        &self,
        organization: OrganizationId,
        resource: &str,
        subscription_id: &str,
        expires_at: DateTime<Utc>,
        renewed: bool,
    ) -> Result<(), StoreError> {
        let renew_at = expires_at
            - chrono::Duration::hours(24)
            - chrono::Duration::minutes(jitter_minutes(120));
        sqlx::query(
            "insert into graph_subscription (subscription_id, organization_id, resource, expires_at, renew_at)
             values ($1, $2, $3, $4, $5)
             on conflict (organization_id, resource) do update set subscription_id = excluded.subscription_id,
                 expires_at = excluded.expires_at, renew_at = excluded.renew_at,
                 renewed_at = case when $6 then now() else graph_subscription.renewed_at end",
        )
        .bind(subscription_id)
        .bind(organization.as_uuid())
        .bind(resource)
        .bind(expires_at)
        .bind(renew_at)
        .bind(renewed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn forget_subscription(&self, subscription_id: &str) -> Result<(), StoreError> {
        sqlx::query("delete from graph_subscription where subscription_id = $1")
            .bind(subscription_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether `organization` answers Graph's validation handshake: it exists and has
    /// change notifications on.
    pub async fn accepts(&self, organization: Uuid) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "select exists (select 1 from organization where organization_id = $1 and change_notifications)",
        )
        .bind(organization)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Checks each notification's clientState (constant time) and subscription, records
    /// those that match, and queues a delta discovery (or a resubscription, for lifecycle
    /// events) in one transaction. Mismatches are counted and otherwise ignored.
    pub async fn receive(
        &self,
        organization: Uuid,
        notifications: &[Received<'_>],
    ) -> Result<Accepted, StoreError> {
        let organization = OrganizationId::from_uuid(organization);
        let mut accepted = Accepted::default();
        // The organization (opted in), its sealed clientState and its subscriptions, in
        // one round trip; then its data key opens the clientState.
        let row: Option<(Uuid, Vec<u8>, Vec<String>)> = sqlx::query_as(
            "select o.msp_id, s.sealed_client_state,
                    array(select g.subscription_id from graph_subscription g
                          where g.organization_id = o.organization_id)
             from organization o join graph_notification_secret s using (organization_id)
             where o.organization_id = $1 and o.change_notifications",
        )
        .bind(organization.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        let Some((msp, sealed, ours)) = row else {
            accepted.ignored = notifications.len();
            return Ok(accepted);
        };
        let msp = MspId::from_uuid(msp);
        let mut tx = self.pool.begin().await?;
        let key = organizations::data_key(&mut tx, self.keyring()?, organization).await?;
        let expected = key.open(
            &sealed,
            organization,
            Purpose::WebhookSigningSecret,
            CLIENT_STATE_OBJECT,
        )?;
        let (mut discover, mut resubscribe) = (false, false);
        for n in notifications {
            let state_matches: bool = n
                .client_state
                .as_bytes()
                .ct_eq(expected.expose_secret().as_bytes())
                .into();
            if !state_matches || !ours.iter().any(|s| s == n.subscription_id) {
                accepted.ignored += 1;
                continue;
            }
            sqlx::query(
                "insert into graph_notification (notification_id, organization_id, subscription_id, change_type,
                     resource, lifecycle_event) values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(Uuid::now_v7())
            .bind(organization.as_uuid())
            .bind(n.subscription_id)
            .bind(n.change_type)
            .bind(n.resource)
            .bind(n.lifecycle_event)
            .execute(&mut *tx)
            .await?;
            accepted.recorded += 1;
            match n.lifecycle_event {
                None => discover = true,
                // Notifications were lost: catch up, and make sure the subscription is
                // sound (the job renews or recreates it only if needed).
                Some("missed") => {
                    discover = true;
                    resubscribe = true;
                    renew_now(&mut tx, n.subscription_id).await?;
                }
                Some("subscriptionRemoved") => {
                    sqlx::query("delete from graph_subscription where subscription_id = $1")
                        .bind(n.subscription_id)
                        .execute(&mut *tx)
                        .await?;
                    // Changes may have been lost while it was gone.
                    discover = true;
                    resubscribe = true;
                }
                // reauthorizationRequired: renew now, or Graph removes it.
                Some(_) => {
                    resubscribe = true;
                    renew_now(&mut tx, n.subscription_id).await?;
                }
            }
        }
        if discover {
            // Remembered, so a run already past the changed section is followed by
            // another (the leader sees to it); queued now for the common case.
            sqlx::query("update organization set notified_at = now() where organization_id = $1")
                .bind(organization.as_uuid())
                .execute(&mut *tx)
                .await?;
            discovery::queue_run(&mut tx, msp, organization, Trigger::Webhook, Mode::Delta).await?;
            accepted.discovery_queued = true;
        }
        if resubscribe {
            queue::enqueue(&mut tx, &subscriptions_job(msp, organization)?).await?;
            accepted.resubscribe_queued = true;
        }
        tx.commit().await?;
        Ok(accepted)
    }
}

async fn renew_now(conn: &mut sqlx::PgConnection, subscription: &str) -> Result<(), StoreError> {
    sqlx::query("update graph_subscription set renew_at = now() where subscription_id = $1")
        .bind(subscription)
        .execute(conn)
        .await?;
    Ok(())
}

/// Queues the subscriptions job of every organization whose renewal is due, most overdue
/// first (the leader calls this). An organization whose job is still pending, or failed
/// for good in the last 15 minutes, is left alone, so one whose renewal keeps failing
/// neither loops nor crowds out others.
pub async fn queue_due_renewals(db: &PgPool) -> Result<u64, StoreError> {
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select o.msp_id, o.organization_id from graph_subscription s
         join organization o on o.organization_id = s.organization_id
         where s.renew_at <= now()
           and not exists (select 1 from job j where j.organization_id = o.organization_id and j.kind = $1
                           and (j.state in ('available', 'scheduled', 'retryable', 'running')
                                or (j.state in ('discarded', 'cancelled')
                                    and j.finalized_at > now() - interval '15 minutes')))
         group by o.msp_id, o.organization_id order by min(s.renew_at) limit 100",
    )
    .bind(SubscriptionsJob::KIND)
    .fetch_all(db)
    .await?;
    let mut queued = 0;
    for (msp, organization) in due {
        let mut conn = db.acquire().await?;
        let job = subscriptions_job(
            MspId::from_uuid(msp),
            OrganizationId::from_uuid(organization),
        )?;
        if let queue::Enqueued::Inserted(_) = queue::enqueue(&mut conn, &job).await? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// Queues a delta discovery for organizations Graph notified of a change after their
/// last run started (the leader calls this): the notification's run may have been one
/// already under way.
pub async fn queue_notified_scans(db: &PgPool) -> Result<u64, StoreError> {
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select o.msp_id, o.organization_id from organization o
         where o.notified_at is not null and o.change_notifications
           and not exists (select 1 from discovery_run r where r.organization_id = o.organization_id
                           and (r.state in ('queued', 'running') or r.started_at >= o.notified_at))
         order by o.notified_at limit 100",
    )
    .fetch_all(db)
    .await?;
    let mut queued = 0;
    for (msp, organization) in due {
        let mut tx = db.begin().await?;
        let (_, created) = discovery::queue_run(
            &mut tx,
            MspId::from_uuid(msp),
            OrganizationId::from_uuid(organization),
            Trigger::Webhook,
            Mode::Delta,
        )
        .await?;
        tx.commit().await?;
        queued += u64::from(created);
    }
    Ok(queued)
}
