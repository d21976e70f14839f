//! Decoding the domain's id newtypes from `uuid` columns. The domain knows no database:
//! a non-null column decodes with `#[sqlx(try_from = "Uuid")]` (every id is
//! `From<Uuid>`), a nullable one with `#[sqlx(try_from = "NullableUuid")]`.

use sqlx::postgres::{PgTypeInfo, PgValueRef, Postgres};
use sqlx::{Decode, Type};
use uuid::Uuid;

/// A nullable `uuid` column, decoded into an `Option` of an id. sqlx's `try_from` needs
/// `Option<Id>: TryFrom<Source>`, which no crate but std could implement for
/// `Source = Option<Uuid>` (both are foreign types here); this local source type can.
pub struct NullableUuid(Option<Uuid>);

impl Type<Postgres> for NullableUuid {
    fn type_info() -> PgTypeInfo {
        <Uuid as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Uuid as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for NullableUuid {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <Option<Uuid> as Decode<'r, Postgres>>::decode(value).map(Self)
    }
}

impl<T: From<Uuid>> From<NullableUuid> for Option<T> {
    fn from(id: NullableUuid) -> Self {
        id.0.map(T::from)
    }
}
