//! Every job kind, with its arguments as a type: what the store enqueues and what a
//! worker reads back are one struct, so a renamed field cannot silently strand jobs.
//! A kind's name is stored in `job.kind`; the struct is `job.args`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tenantry_domain::{ActionId, DiscoveryRunId, OrganizationId};
use uuid::Uuid;

use crate::StoreError;
use crate::queue::{ClaimedJob, NewJob};

/// A job kind's arguments.
pub trait JobArgs: Serialize + DeserializeOwned + Send + 'static {
    /// The kind's name in `job.kind`; never renamed once shipped.
    const KIND: &'static str;

    /// At most one unfinished job per key (`None`: any number).
    fn unique_key(&self) -> Option<String>;
}

/// Reads one tenant into the inventory (the run row says how).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DiscoveryJob {
    pub run_id: DiscoveryRunId,
    pub organization_id: OrganizationId,
}

impl JobArgs for DiscoveryJob {
    const KIND: &'static str = "discovery";
    fn unique_key(&self) -> Option<String> {
        Some(format!("discovery:{}", self.organization_id))
    }
}

/// Re-validates an organization's credentials after a consent failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RevalidateJob {
    pub organization_id: OrganizationId,
}

impl JobArgs for RevalidateJob {
    const KIND: &'static str = "revalidate";
    fn unique_key(&self) -> Option<String> {
        Some(format!("revalidate:{}", self.organization_id))
    }
}

/// Executes an approved identity action, step by step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ActionJob {
    pub action_id: ActionId,
}

impl JobArgs for ActionJob {
    const KIND: &'static str = "action";
    fn unique_key(&self) -> Option<String> {
        Some(format!("action:{}", self.action_id))
    }
}

/// Advances a webhook event's playbook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WebhookJob {
    pub webhook_event_id: Uuid,
}

impl JobArgs for WebhookJob {
    const KIND: &'static str = "webhook_event";
    fn unique_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.webhook_event_id))
    }
}

/// Creates, renews or removes an organization's Graph change-notification subscriptions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SubscriptionsJob {
    pub organization_id: OrganizationId,
}

impl JobArgs for SubscriptionsJob {
    const KIND: &'static str = "graph_subscriptions";
    fn unique_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.organization_id))
    }
}

/// Reads a partner connection's GDAP relationships and customers, then verifies every
/// customer's consent and roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PartnerSyncJob {
    pub partner_connection_id: Uuid,
}

impl JobArgs for PartnerSyncJob {
    const KIND: &'static str = "partner_sync";
    fn unique_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.partner_connection_id))
    }
}

/// Verifies one customer of a partner connection (after a consent callback, or while a
/// consent propagates), on the re-validation backoff schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PartnerVerifyJob {
    pub partner_connection_id: Uuid,
    pub tenant_id: Uuid,
}

impl JobArgs for PartnerVerifyJob {
    const KIND: &'static str = "partner_verify";
    fn unique_key(&self) -> Option<String> {
        Some(format!(
            "{}:{}:{}",
            Self::KIND,
            self.partner_connection_id,
            self.tenant_id
        ))
    }
}

impl NewJob {
    /// A job of `args`'s kind for `organization`, with its uniqueness; one attempt budget
    /// and priority until set otherwise.
    pub fn of<A: JobArgs>(
        args: &A,
        msp: tenantry_domain::MspId,
        organization: Option<OrganizationId>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            kind: A::KIND.to_owned(),
            args: serde_json::to_value(args)
                .map_err(|e| StoreError::Corrupt(format!("{} job arguments: {e}", A::KIND)))?,
            msp_id: Some(msp),
            organization_id: organization,
            unique_key: args.unique_key(),
            max_attempts: 5,
            priority: 2,
            run_at: None,
        })
    }

    pub fn max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Lower runs first.
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    pub fn run_at(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Any number of unfinished jobs for the same arguments (a playbook queued again by
    /// its own step while its previous run is still finishing).
    pub fn not_unique(mut self) -> Self {
        self.unique_key = None;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BadArgs {
    #[error("a {found} job was handed to the {expected} handler")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error("{kind} job arguments: {cause}")]
    Shape {
        kind: &'static str,
        cause: serde_json::Error,
    },
}

impl ClaimedJob {
    /// The job's arguments as its kind's type.
    pub fn args<A: JobArgs>(&self) -> Result<A, BadArgs> {
        if self.kind != A::KIND {
            return Err(BadArgs::WrongKind {
                expected: A::KIND,
                found: self.kind.clone(),
            });
        }
        A::deserialize(&self.args).map_err(|cause| BadArgs::Shape {
            kind: A::KIND,
            cause,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip_and_keep_their_wire_names() {
        let organization = OrganizationId::new();
        let args = DiscoveryJob {
            run_id: DiscoveryRunId::new(),
            organization_id: organization,
        };
        let job = NewJob::of(&args, tenantry_domain::MspId::new(), Some(organization))
            .expect("serialises");
        assert_eq!(job.kind, "discovery");
        assert_eq!(
            job.args,
            serde_json::json!({"run_id": args.run_id, "organization_id": organization}),
            "the wire names stay what stored jobs carry"
        );
        assert_eq!(job.unique_key, Some(format!("discovery:{organization}")));
        let claimed = ClaimedJob {
            job_id: tenantry_domain::JobId::new(),
            kind: job.kind,
            args: job.args,
            msp_id: None,
            organization_id: None,
            attempt: 1,
            max_attempts: 5,
            snoozes: 0,
        };
        assert_eq!(claimed.args::<DiscoveryJob>().expect("reads back"), args);
        assert!(matches!(
            claimed.args::<ActionJob>(),
            Err(BadArgs::WrongKind { .. })
        ));
    }
}
