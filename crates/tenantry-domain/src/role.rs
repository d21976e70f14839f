//! The roles an API key can hold inside its MSP: four from most to least powerful, and the
//! self-service gateway, which reads like a viewer and files requests for employees.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including other owners' keys.
    Owner,
    /// Manages keys below owner and everything operational.
    Admin,
    /// Runs identity operations on the organizations it may see.
    Technician,
    /// Reads only.
    Viewer,
    /// A trusted portal or bot acting for employees: reads like a viewer, and files
    /// self-service requests for the employee it names (never for anyone else).
    SelfServiceGateway,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected owner, admin, technician, viewer or self_service_gateway")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Technician,
        Role::Viewer,
        Role::SelfServiceGateway,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Technician => "technician",
            Role::Viewer => "viewer",
            Role::SelfServiceGateway => "self_service_gateway",
        }
    }

    /// Higher is more powerful; only used to compare roles.
    const fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Technician => 1,
            Role::Viewer | Role::SelfServiceGateway => 0,
        }
    }

    /// Whether this role carries at least the powers of `required`.
    pub const fn includes(self, required: Role) -> bool {
        self.rank() >= required.rank()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_owner_admin_technician_viewer() {
        assert!(Role::Owner.includes(Role::Admin));
        assert!(Role::Admin.includes(Role::Technician));
        assert!(Role::Technician.includes(Role::Viewer));
        assert!(!Role::Viewer.includes(Role::Technician));
        assert!(!Role::Admin.includes(Role::Owner));
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("Owner".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }
}
