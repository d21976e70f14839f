//! Deterministic, invertible object ids. A generated object's id encodes its kind and index
//! under a per-tenant prefix, so a tenant of 100,000 users needs no table to answer
//! `GET /users/{id}`: the id is parsed back to the index. Ids are valid RFC 4122 version-4
//! GUIDs, like Entra's.

use uuid::Uuid;

/// What kind of generated object an id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User = 1,
    Group = 2,
    Device = 3,
    Role = 4,
    Other = 5,
}

/// A 64-bit FNV-1a hash: stable across builds and platforms (std's hasher is not).
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The id of generated object `index` of `kind` in the tenant with `prefix`.
pub fn generated(prefix: u64, kind: Kind, index: u32) -> Uuid {
    let high = (prefix & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000;
    let low = 0x8000_0000_0000_0000 | ((kind as u64) << 32) | u64::from(index);
    Uuid::from_u64_pair(high, low)
}

/// The index of a generated object, when `id` is one of this tenant's of this kind.
pub fn index_of(prefix: u64, kind: Kind, id: Uuid) -> Option<u32> {
    let (high, low) = id.as_u64_pair();
    let expected_high = (prefix & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000;
    let kind_bits = (low >> 32) & 0x3FFF_FFFF;
    (high == expected_high && low >> 62 == 0b10 && kind_bits == kind as u64).then_some(low as u32)
}

/// A stable id for a named thing (tenants, apps, secrets in scenarios).
pub fn named(name: &str) -> Uuid {
    let hash = stable_hash(&[name.as_bytes()]);
    let hash2 = stable_hash(&[name.as_bytes(), b"2"]);
    Uuid::from_u64_pair(
        (hash & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000,
        (hash2 & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_invert_and_are_v4() {
        let prefix = stable_hash(&[b"contoso"]);
        let id = generated(prefix, Kind::User, 49_999);
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(index_of(prefix, Kind::User, id), Some(49_999));
        assert_eq!(index_of(prefix, Kind::Group, id), None);
        assert_eq!(index_of(stable_hash(&[b"fabrikam"]), Kind::User, id), None);
        assert_eq!(named("x"), named("x"));
        assert_ne!(named("x"), named("y"));
    }
}
