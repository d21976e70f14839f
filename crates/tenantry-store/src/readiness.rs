//! Readiness: the database answers and every migration this build carries is applied. A
//! replica started with a newer binary than the schema reports not ready instead of
//! failing requests.

use std::collections::HashSet;

use sqlx::PgPool;

use crate::MIGRATOR;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    DatabaseUnreachable,
    MigrationsPending { pending: usize },
}

pub(crate) async fn check(pool: &PgPool) -> Readiness {
    let applied: Result<Vec<i64>, sqlx::Error> =
        sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(pool)
            .await;
    let applied: HashSet<i64> = match applied {
        Ok(versions) => versions.into_iter().collect(),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => HashSet::new(),
        Err(error) => {
            tracing::warn!(%error, "readiness: database check failed");
            return Readiness::DatabaseUnreachable;
        }
    };
    let pending = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .count();
    if pending == 0 {
        Readiness::Ready
    } else {
        Readiness::MigrationsPending { pending }
    }
}
