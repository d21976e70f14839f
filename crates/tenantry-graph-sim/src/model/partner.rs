//! Partner mode in the directory: which registration a client id names from any tenant,
//! service principals and grants that exist only from a moment on (consent propagating),
//! admin consent creating them, and directory roles set on a service principal.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{App, ServicePrincipal, Tenant, World, activate_role, assignment_id, role_template};
use crate::scenario::SignInAudience;

impl ServicePrincipal {
    /// Whether Entra knows the service principal at `now`.
    pub fn exists_at(&self, now: DateTime<Utc>) -> bool {
        self.since <= now
    }

    /// The app role ids granted and propagated at `now` (what a token minted then carries).
    pub fn roles_at(&self, now: DateTime<Utc>) -> impl Iterator<Item = Uuid> + '_ {
        self.granted
            .iter()
            .filter(move |(_, _, created)| *created <= now)
            .map(|(_, role, _)| *role)
    }

    /// The Exchange Online app role ids granted and propagated at `now`.
    pub fn exchange_roles_at(&self, now: DateTime<Utc>) -> impl Iterator<Item = Uuid> + '_ {
        self.exchange_granted
            .iter()
            .filter(move |(_, _, created)| *created <= now)
            .map(|(_, role, _)| *role)
    }
}

impl App {
    /// The service principal, when it exists at `now`.
    pub fn sp_at(&self, now: DateTime<Utc>) -> Option<&ServicePrincipal> {
        self.sp.as_ref().filter(|sp| sp.exists_at(now))
    }

    /// Registered in this tenant (not only a service principal of another tenant's app).
    pub fn is_registered_here(&self) -> bool {
        self.home.is_none()
    }

    pub fn is_multi_tenant(&self) -> bool {
        self.sign_in_audience == SignInAudience::AzureADMultipleOrgs
    }

    /// Whether `uri` is one of the registered redirect URIs, "except that … it can have
    /// additional path segments" (graph-facts-next §1.4).
    pub fn accepts_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|registered| {
            uri == registered
                || uri
                    .strip_prefix(registered.trim_end_matches('/'))
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// Why a client id cannot sign in to a tenant.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    /// Unknown anywhere, or a single-tenant app of another tenant (AADSTS700016).
    #[error("application not found in the directory")]
    NotFound,
}

/// Where a client id lives, seen from one tenant.
pub struct Resolved<'w> {
    /// The app registration holding the credentials (maybe in another tenant).
    pub registration: &'w App,
    /// The registering tenant.
    pub home: usize,
    /// The entry in the asked tenant (its service principal), when there is one.
    pub local: Option<&'w App>,
}

impl World {
    /// The tenant an app is registered in, and its registration.
    pub fn registration(&self, client_id: Uuid) -> Option<(usize, &App)> {
        self.tenants.iter().enumerate().find_map(|(i, t)| {
            t.apps
                .iter()
                .find(|a| a.client_id == client_id && a.is_registered_here())
                .map(|a| (i, a))
        })
    }

    /// Which registration `client_id` names when used against tenant `tenant`: the
    /// tenant's own app, or a multi-tenant app of another tenant.
    pub fn resolve(&self, tenant: usize, client_id: Uuid) -> Result<Resolved<'_>, ClientError> {
        let local = self.tenants[tenant].app(client_id);
        if let Some(app) = local.filter(|a| a.is_registered_here()) {
            return Ok(Resolved {
                registration: app,
                home: tenant,
                local: Some(app),
            });
        }
        let (home, registration) = self.registration(client_id).ok_or(ClientError::NotFound)?;
        if !registration.is_multi_tenant() {
            return Err(ClientError::NotFound);
        }
        Ok(Resolved {
            registration,
            home,
            local,
        })
    }

    /// Fills what a foreign service principal shows of its registration (publisher,
    /// audience, name) from the registering tenant.
    pub(crate) fn describe_foreign_apps(&mut self) {
        let homes: Vec<(Uuid, Uuid, String, String, SignInAudience)> = self
            .tenants
            .iter()
            .flat_map(|t| {
                t.apps.iter().filter(|a| a.is_registered_here()).map(|a| {
                    (
                        t.id,
                        a.client_id,
                        t.display_name.clone(),
                        a.display_name.clone(),
                        a.sign_in_audience,
                    )
                })
            })
            .collect();
        for tenant in &mut self.tenants {
            for app in tenant.apps.iter_mut().filter(|a| !a.is_registered_here()) {
                if let Some((_, _, publisher, name, audience)) = homes
                    .iter()
                    .find(|(t, c, ..)| Some(*t) == app.home && *c == app.client_id)
                {
                    app.publisher = publisher.clone();
                    app.display_name = name.clone();
                    app.sign_in_audience = *audience;
                }
            }
        }
    }
}

/// What an accepted admin consent grants: the registration's declared permissions.
pub struct Grant {
    pub client_id: Uuid,
    pub home: Uuid,
    pub display_name: String,
    pub publisher: String,
    pub sign_in_audience: SignInAudience,
    pub roles: Vec<Uuid>,
    /// Exchange Online app roles the consent grants (on that resource's principal).
    pub exchange_roles: Vec<Uuid>,
}

impl Tenant {
    /// Applies an accepted admin consent at `now`: creates the app's service principal
    /// (existing for Entra after `sp_delay`) unless there is one, and grants each declared
    /// role not yet granted, propagated after `roles_delay`. Returns the principal's id.
    pub fn consent(
        &mut self,
        grant: &Grant,
        now: DateTime<Utc>,
        sp_delay: Duration,
        roles_delay: Duration,
    ) -> Uuid {
        let tenant_id = self.id;
        let position = match self
            .apps
            .iter()
            .position(|a| a.client_id == grant.client_id)
        {
            Some(position) => position,
            None => {
                self.apps.push(App {
                    client_id: grant.client_id,
                    object_id: super::ids::named(&format!(
                        "{}.{}.application",
                        self.name, grant.client_id
                    )),
                    display_name: grant.display_name.clone(),
                    secrets: Vec::new(),
                    certificates: Vec::new(),
                    sp: None,
                    sign_in_audience: grant.sign_in_audience,
                    redirect_uris: Vec::new(),
                    required: Vec::new(),
                    exchange_required: Vec::new(),
                    home: (grant.home != tenant_id).then_some(grant.home),
                    publisher: grant.publisher.clone(),
                });
                self.apps.len() - 1
            }
        };
        let name = self.name.clone();
        let app = &mut self.apps[position];
        let sp = app.sp.get_or_insert_with(|| ServicePrincipal {
            id: super::ids::named(&format!("{name}.{}.sp", grant.client_id)),
            since: now + sp_delay,
            granted: Vec::new(),
            exchange_granted: Vec::new(),
            directory_roles: Vec::new(),
            not_yet_in_graph: false,
        });
        let effective = now + roles_delay;
        for role in &grant.roles {
            if !sp.granted.iter().any(|(_, r, _)| r == role) {
                sp.granted
                    .push((assignment_id(sp.id, *role), *role, effective));
            }
        }
        for role in &grant.exchange_roles {
            if !sp.exchange_granted.iter().any(|(_, r, _)| r == role) {
                sp.exchange_granted
                    .push((assignment_id(sp.id, *role), *role, effective));
            }
        }
        sp.id
    }

    /// Makes the directory roles (names or template ids) of `client_id`'s service
    /// principal exactly `roles`, activating roles as needed. `Err` names the first
    /// unknown role; `Ok(false)` when the app has no service principal here.
    pub fn set_directory_roles(
        &mut self,
        client_id: Uuid,
        roles: &[String],
    ) -> Result<bool, String> {
        let mut templates = Vec::with_capacity(roles.len());
        for role in roles {
            templates.push(role_template(role).ok_or_else(|| role.clone())?);
        }
        let Some(sp_id) = self
            .app(client_id)
            .and_then(|a| a.sp.as_ref())
            .map(|sp| sp.id)
        else {
            return Ok(false);
        };
        for role in &mut self.roles {
            role.sp_members.retain(|m| *m != sp_id);
        }
        let prefix = self.prefix;
        let mut held = Vec::with_capacity(templates.len());
        for (index, template) in templates {
            let pos = activate_role(&mut self.roles, prefix, index);
            if !self.roles[pos].sp_members.contains(&sp_id) {
                self.roles[pos].sp_members.push(sp_id);
            }
            if !held.contains(&template) {
                held.push(template);
            }
        }
        if let Some(sp) = self
            .apps
            .iter_mut()
            .find_map(|a| a.sp.as_mut().filter(|sp| sp.id == sp_id))
        {
            sp.directory_roles = held;
        }
        Ok(true)
    }

    /// Deletes `client_id`'s service principal here (consent revoked; the enterprise
    /// application removed) and its directory roles. `false` when there was none.
    pub fn remove_service_principal(&mut self, client_id: Uuid) -> bool {
        let Some(position) = self
            .apps
            .iter()
            .position(|a| a.client_id == client_id && a.sp.is_some())
        else {
            return false;
        };
        let sp_id = self.apps[position].sp.take().map(|sp| sp.id);
        for role in &mut self.roles {
            role.sp_members.retain(|m| Some(*m) != sp_id);
        }
        if !self.apps[position].is_registered_here() {
            self.apps.remove(position);
        }
        true
    }
}
