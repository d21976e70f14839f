//! End-to-end tests of the HTTP API: a real server on a random port, a real PostgreSQL
//! database per test (`#[sqlx::test]`, from the cluster `scripts/test` starts).

mod actions;
mod api_keys;
mod auth;
mod certificates;
mod change_notifications;
mod discovery;
mod exchange;
mod exchange_actions;
mod helpers;
mod http_conventions;
mod isolation;
mod licences;
mod operations;
mod operators;
mod organizations;
mod partner;
mod python;
mod python_client;
mod schemathesis;
mod webhooks;
