//! Identifier newtypes, so an MSP id can never be passed where an organization id is
//! expected. All ids are UUIDv7: they sort by creation time, which keyset pagination uses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        /// Lets stores decode an id column with `#[sqlx(try_from = "Uuid")]` (the domain
        /// knows no database).
        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

uuid_id!(
    /// An MSP: a customer of Tenantry, the unit of isolation.
    MspId
);
uuid_id!(
    /// One customer organization of an MSP, bound to one Microsoft 365 tenant.
    OrganizationId
);
uuid_id!(
    /// The database id of an API key record (not the visible key id prefix).
    ApiKeyRecordId
);
uuid_id!(
    /// A person who holds API keys of an MSP (four eyes compares operators, not keys).
    OperatorId
);
uuid_id!(
    /// A job in the durable queue.
    JobId
);
uuid_id!(
    /// One discovery run of one organization.
    DiscoveryRunId
);
uuid_id!(
    /// One requested identity action.
    ActionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_sort_by_creation() {
        let first = MspId::new();
        let second = MspId::new();
        assert!(first < second);
        let parsed: MspId = first.to_string().parse().expect("an id parses back");
        assert_eq!(parsed, first);
        assert!("not-a-uuid".parse::<MspId>().is_err());
    }
}
