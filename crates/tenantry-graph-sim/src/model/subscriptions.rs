//! Change-notification subscriptions of one tenant (graph-facts §8) and the notifications
//! waiting for delivery. Pure data: the HTTP side (validation handshake, delivery) is in
//! `notify.rs`, the Graph routes in `graph/subscriptions.rs`.

use std::collections::VecDeque;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::ChangeKind;

/// Longest lifetime of a user or group subscription: "41,760 minutes (under 29 days)"
/// (DOCS `resources/subscription.md`).
pub const MAX_LIFETIME_MINUTES: i64 = 41_760;

/// Notifications kept per tenant while no one delivers them (the oldest go first).
pub const MAX_PENDING: usize = 100_000;

/// The change types a subscription may ask for.
pub const CHANGE_TYPES: [&str; 3] = ["created", "updated", "deleted"];

/// What a subscription watches: the simulator supports `users` and `groups`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Users,
    Groups,
}

impl Resource {
    /// `users`, `/users`, `groups`, `/groups` (any case).
    pub fn parse(raw: &str) -> Option<Self> {
        let name = raw.trim().trim_start_matches('/');
        if name.eq_ignore_ascii_case("users") {
            Some(Resource::Users)
        } else if name.eq_ignore_ascii_case("groups") {
            Some(Resource::Groups)
        } else {
            None
        }
    }

    /// The name Graph answers in `resource`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Users => "users",
            Resource::Groups => "groups",
        }
    }

    /// The entity set in a notification's `resource` and `@odata.id` (`Users/{id}`).
    fn entity_set(self) -> &'static str {
        match self {
            Resource::Users => "Users",
            Resource::Groups => "Groups",
        }
    }

    fn odata_type(self) -> &'static str {
        match self {
            Resource::Users => "#Microsoft.Graph.User",
            Resource::Groups => "#Microsoft.Graph.Group",
        }
    }

    fn of(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::User => Resource::Users,
            ChangeKind::Group => Resource::Groups,
        }
    }
}

/// One subscription, as stored.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The client id of the app that created it.
    pub application_id: Uuid,
    /// The creating app's service principal.
    pub creator_id: Uuid,
    pub resource: Resource,
    /// Normalised comma list, e.g. `updated,deleted`.
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_notification_url: Option<String>,
    pub client_state: String,
    pub expiration_date_time: DateTime<Utc>,
}

impl Subscription {
    pub fn wants(&self, change_type: &str) -> bool {
        self.change_type.split(',').any(|c| c == change_type)
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expiration_date_time > now
    }

    /// Where lifecycle notifications go: `lifecycleNotificationUrl`, else `notificationUrl`.
    pub fn lifecycle_url(&self) -> &str {
        self.lifecycle_notification_url
            .as_deref()
            .unwrap_or(&self.notification_url)
    }

    pub fn expiration_text(&self) -> String {
        timestamp(self.expiration_date_time)
    }

    /// The documented subscription resource (DOCS `subscription-post-subscriptions.md`
    /// plus the newer `null` properties), without `@odata.context`.
    pub fn to_graph(&self) -> Value {
        json!({
            "id": self.id,
            "resource": self.resource.name(),
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": null,
            "lifecycleNotificationUrl": self.lifecycle_notification_url,
            "expirationDateTime": self.expiration_text(),
            "creatorId": self.creator_id,
            "includeResourceData": false,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": null,
            "encryptionCertificateId": null,
            "notificationUrlAppId": null,
            "notificationContentType": "application/json",
        })
    }

    /// One item of a change notification's `value` (graph-facts §8; the user/group
    /// `resourceData` shape is UNVERIFIED).
    fn notification(&self, change_type: &str, object: Uuid) -> Value {
        let path = format!("{}/{object}", self.resource.entity_set());
        json!({
            "subscriptionId": self.id,
            "subscriptionExpirationDateTime": self.expiration_text(),
            "clientState": self.client_state,
            "changeType": change_type,
            "resource": path,
            "tenantId": self.tenant_id,
            "resourceData": {
                "@odata.type": self.resource.odata_type(),
                "@odata.id": path,
                "id": object,
                "organizationId": self.tenant_id,
            },
        })
    }

    /// The body of a lifecycle notification (graph-facts §8, verbatim shape).
    pub fn lifecycle_notification(&self, event: &str) -> Value {
        json!({"value": [{
            "lifecycleEvent": event,
            "subscriptionId": self.id,
            "subscriptionExpirationDateTime": self.expiration_text(),
            "clientState": self.client_state,
            "tenantId": self.tenant_id,
        }]})
    }
}

/// Graph's rendering of a subscription time, e.g. `2026-11-20T18:23:45.935Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A change notification waiting for delivery.
#[derive(Clone, Debug)]
pub struct Pending {
    pub subscription: Uuid,
    pub url: String,
    pub item: Value,
}

/// A tenant's subscriptions and its queue of undelivered notifications.
#[derive(Default)]
pub struct Subscriptions {
    list: Vec<Subscription>,
    outbox: VecDeque<Pending>,
}

impl Subscriptions {
    pub fn add(&mut self, subscription: Subscription) {
        self.list.push(subscription);
    }

    pub fn all(&self) -> &[Subscription] {
        &self.list
    }

    /// A subscription of `app` (another app's is not found).
    pub fn get(&self, app: Uuid, id: Uuid) -> Option<&Subscription> {
        self.list
            .iter()
            .find(|s| s.id == id && s.application_id == app)
    }

    pub fn get_mut(&mut self, app: Uuid, id: Uuid) -> Option<&mut Subscription> {
        self.list
            .iter_mut()
            .find(|s| s.id == id && s.application_id == app)
    }

    /// Any app's subscription (for the control API).
    pub fn find_mut(&mut self, id: Uuid) -> Option<&mut Subscription> {
        self.list.iter_mut().find(|s| s.id == id)
    }

    /// Removes a subscription (any app's) and its undelivered notifications.
    pub fn remove(&mut self, id: Uuid) -> Option<Subscription> {
        let position = self.list.iter().position(|s| s.id == id)?;
        self.outbox.retain(|p| p.subscription != id);
        Some(self.list.remove(position))
    }

    pub fn for_app(&self, app: Uuid) -> impl Iterator<Item = &Subscription> {
        self.list.iter().filter(move |s| s.application_id == app)
    }

    /// Queues a notification for every active subscription on the changed object's
    /// resource that asks for the change's type. Creations and updates arrive as `updated`
    /// (third-party note, UNVERIFIED), removals as `deleted` (UNVERIFIED).
    pub fn queue(&mut self, kind: ChangeKind, object: Uuid, removed: bool) {
        let change_type = if removed { "deleted" } else { "updated" };
        let resource = Resource::of(kind);
        let now = Utc::now();
        for subscription in &self.list {
            if subscription.resource == resource
                && subscription.is_active(now)
                && subscription.wants(change_type)
            {
                self.outbox.push_back(Pending {
                    subscription: subscription.id,
                    url: subscription.notification_url.clone(),
                    item: subscription.notification(change_type, object),
                });
            }
        }
        while self.outbox.len() > MAX_PENDING {
            self.outbox.pop_front();
        }
    }

    /// Everything waiting for delivery, oldest first.
    pub fn take_pending(&mut self) -> Vec<Pending> {
        self.outbox.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(change_type: &str) -> Subscription {
        Subscription {
            id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            application_id: Uuid::new_v4(),
            creator_id: Uuid::new_v4(),
            resource: Resource::Users,
            change_type: change_type.to_owned(),
            notification_url: "http://127.0.0.1:1/hook".to_owned(),
            lifecycle_notification_url: None,
            client_state: "secret".to_owned(),
            expiration_date_time: Utc::now() + chrono::Duration::hours(1),
        }
    }

    #[test]
    fn only_matching_active_subscriptions_get_notifications() {
        let mut subscriptions = Subscriptions::default();
        let updated = subscription("updated");
        let created_only = subscription("created");
        let mut expired = subscription("updated,deleted");
        expired.expiration_date_time = Utc::now() - chrono::Duration::minutes(1);
        let mut groups = subscription("updated");
        groups.resource = Resource::Groups;
        for s in [&updated, &created_only, &expired, &groups] {
            subscriptions.add(s.clone());
        }
        let user = Uuid::new_v4();
        subscriptions.queue(ChangeKind::User, user, false);
        let pending = subscriptions.take_pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].subscription, updated.id);
        assert_eq!(pending[0].item["resource"], format!("Users/{user}"));
        assert_eq!(
            pending[0].item["resourceData"]["@odata.type"],
            "#Microsoft.Graph.User"
        );
        assert!(subscriptions.take_pending().is_empty());
    }

    #[test]
    fn resource_names_accept_a_leading_slash() {
        assert_eq!(Resource::parse("/users"), Some(Resource::Users));
        assert_eq!(Resource::parse("Groups"), Some(Resource::Groups));
        assert_eq!(Resource::parse("me/messages"), None);
    }
}
