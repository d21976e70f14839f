//! [`SimState`]'s partner-mode controls, as a customer's admin or Partner Center would act:
//! the admin's consent choice and delays, directory roles on an app's service principal,
//! revoking consent, GDAP relationships and an app's redirect URIs. Each changes the
//! running world only (a reset or reload goes back to the scenario).

use uuid::Uuid;

use crate::SimState;
use crate::model::World;
use crate::scenario::{ConsentSpec, RelationshipSpec};

/// Why a partner-mode control could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("no tenant {0}")]
    NoTenant(String),
    #[error("no service principal of app {client_id} in tenant {tenant}")]
    NoServicePrincipal { tenant: String, client_id: Uuid },
    #[error("no app registration {client_id} in tenant {tenant}")]
    NoApplication { tenant: String, client_id: Uuid },
    #[error("unknown directory role {0}")]
    UnknownRole(String),
    #[error("no GDAP relationship {0}")]
    NoRelationship(String),
}

/// A tenant by GUID, domain or scenario name.
fn tenant_position(world: &World, tenant: &str) -> Result<usize, ControlError> {
    world
        .tenant_index(tenant)
        .or_else(|| world.tenants.iter().position(|t| t.name == tenant))
        .ok_or_else(|| ControlError::NoTenant(tenant.to_owned()))
}

impl SimState {
    /// What `tenant`'s admin answers on `/adminconsent` from now on.
    pub fn set_consent(&self, tenant: &str, consent: ConsentSpec) -> Result<(), ControlError> {
        let mut world = self.world_mut();
        let index = tenant_position(&world, tenant)?;
        world.tenants[index].consent = consent;
        Ok(())
    }

    pub fn consent(&self, tenant: &str) -> Result<ConsentSpec, ControlError> {
        let world = self.world();
        let index = tenant_position(&world, tenant)?;
        Ok(world.tenants[index].consent)
    }

    /// Gives `client_id`'s service principal in `tenant` exactly these directory roles
    /// (display names or template ids), as an admin assigns them in Entra.
    pub fn set_directory_roles(
        &self,
        tenant: &str,
        client_id: Uuid,
        roles: &[String],
    ) -> Result<(), ControlError> {
        let mut world = self.world_mut();
        let index = tenant_position(&world, tenant)?;
        match world.tenants[index].set_directory_roles(client_id, roles) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ControlError::NoServicePrincipal {
                tenant: tenant.to_owned(),
                client_id,
            }),
            Err(role) => Err(ControlError::UnknownRole(role)),
        }
    }

    /// Deletes `client_id`'s service principal in `tenant` (consent revoked): its next
    /// token request answers AADSTS7000229; tokens already minted stay valid until expiry.
    pub fn remove_service_principal(
        &self,
        tenant: &str,
        client_id: Uuid,
    ) -> Result<(), ControlError> {
        let mut world = self.world_mut();
        let index = tenant_position(&world, tenant)?;
        if world.tenants[index].remove_service_principal(client_id) {
            Ok(())
        } else {
            Err(ControlError::NoServicePrincipal {
                tenant: tenant.to_owned(),
                client_id,
            })
        }
    }

    /// Adds or replaces (by id) a GDAP relationship of partner tenant `tenant`.
    pub fn put_relationship(
        &self,
        tenant: &str,
        relationship: RelationshipSpec,
    ) -> Result<(), ControlError> {
        let mut world = self.world_mut();
        let index = tenant_position(&world, tenant)?;
        let relationships = &mut world.tenants[index].relationships;
        match relationships.iter_mut().find(|r| r.id == relationship.id) {
            Some(existing) => *existing = relationship,
            None => relationships.push(relationship),
        }
        Ok(())
    }

    pub fn remove_relationship(&self, tenant: &str, id: &str) -> Result<(), ControlError> {
        let mut world = self.world_mut();
        let index = tenant_position(&world, tenant)?;
        let relationships = &mut world.tenants[index].relationships;
        let before = relationships.len();
        relationships.retain(|r| r.id != id);
        if relationships.len() < before {
            Ok(())
        } else {
            Err(ControlError::NoRelationship(id.to_owned()))
        }
    }

    /// The GDAP relationships of `tenant` as the scenario data holds them.
    pub fn relationships(&self, tenant: &str) -> Result<Vec<RelationshipSpec>, ControlError> {
        let world = self.world();
        let index = tenant_position(&world, tenant)?;
        Ok(world.tenants[index].relationships.clone())
    }

    /// Replaces the redirect URIs registered on app `client_id` of `tenant` (e.g. the
    /// callback of a service whose port is known only once it listens).
    pub fn set_redirect_uris(
        &self,
        tenant: &str,
        client_id: Uuid,
        uris: Vec<String>,
    ) -> Result<(), ControlError> {
        let mut world = self.world_mut();
        let index = tenant_position(&world, tenant)?;
        let app = world.tenants[index]
            .apps
            .iter_mut()
            .find(|a| a.client_id == client_id && a.is_registered_here())
            .ok_or(ControlError::NoApplication {
                tenant: tenant.to_owned(),
                client_id,
            })?;
        app.redirect_uris = uris;
        Ok(())
    }
}
