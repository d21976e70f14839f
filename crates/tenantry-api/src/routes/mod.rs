//! Every route the API serves, each registered through `utoipa-axum` so it lands in the
//! OpenAPI document as well as the router.

pub(crate) mod actions;
mod api_keys;
mod audit;
mod certificates;
mod consent;
mod credential_input;
mod discovery;
mod exchange;
mod hooks;
mod jobs;
mod me;
mod operations;
mod organizations;
mod partner;
mod policies;
mod views;
mod webhooks;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;

pub fn all() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(operations::healthz))
        .routes(routes!(operations::readyz))
        .routes(routes!(operations::metrics))
        .routes(routes!(operations::openapi_json))
        .routes(routes!(operations::docs_page))
        .routes(routes!(me::get_me))
        .routes(routes!(api_keys::list_api_keys, api_keys::create_api_key))
        .routes(routes!(api_keys::get_api_key, api_keys::revoke_api_key))
        .routes(routes!(
            organizations::list_organizations,
            organizations::create_organization
        ))
        .routes(routes!(
            organizations::get_organization,
            organizations::update_organization,
            organizations::delete_organization
        ))
        .routes(routes!(organizations::validate_organization))
        .routes(routes!(organizations::get_validation))
        .routes(routes!(organizations::replace_credentials))
        .routes(routes!(organizations::download_certificate))
        .routes(routes!(certificates::generate_certificate))
        .routes(routes!(
            certificates::get_certificate,
            certificates::delete_certificate
        ))
        .routes(routes!(certificates::download_generated_certificate))
        .routes(routes!(
            partner::list_partner_connections,
            partner::create_partner_connection
        ))
        .routes(routes!(
            partner::get_partner_connection,
            partner::delete_partner_connection
        ))
        .routes(routes!(partner::replace_partner_credential))
        .routes(routes!(partner::download_partner_certificate))
        .routes(routes!(partner::sync_partner_connection))
        .routes(routes!(partner::list_customers))
        .routes(routes!(partner::get_customer))
        .routes(routes!(partner::create_consent_link))
        .routes(routes!(partner::create_consent_links))
        .routes(routes!(partner::verify_customer))
        .routes(routes!(partner::connect_customers))
        .routes(routes!(consent::consent_callback))
        .routes(routes!(discovery::list_runs, discovery::start_run))
        .routes(routes!(discovery::get_run))
        .routes(routes!(discovery::list_users))
        .routes(routes!(discovery::get_user))
        .routes(routes!(discovery::list_groups))
        .routes(routes!(discovery::list_group_members))
        .routes(routes!(discovery::list_directory_roles))
        .routes(routes!(discovery::list_licenses))
        .routes(routes!(discovery::list_applications))
        .routes(routes!(discovery::list_devices))
        .routes(routes!(discovery::list_mailboxes))
        .routes(routes!(discovery::get_mailbox))
        .routes(routes!(discovery::list_distribution_groups))
        .routes(routes!(discovery::list_distribution_group_members))
        .routes(routes!(exchange::list_inbox_rules))
        .routes(routes!(discovery::list_approver_proposals))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::retry_job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(actions::request_action))
        .routes(routes!(actions::list_actions))
        .routes(routes!(actions::get_action))
        .routes(routes!(actions::approve_action))
        .routes(routes!(actions::deny_action))
        .routes(routes!(actions::reveal_password))
        .routes(routes!(policies::list_policies))
        .routes(routes!(policies::get_policy, policies::put_policy))
        .routes(routes!(audit::list_audit_events))
        .routes(routes!(audit::export_audit_events))
        .routes(routes!(audit::verify_audit_events))
        .routes(routes!(webhooks::list_endpoints, webhooks::create_endpoint))
        .routes(routes!(webhooks::get_endpoint, webhooks::revoke_endpoint))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::list_webhook_events))
        .routes(routes!(hooks::receive))
        .routes(routes!(hooks::receive_graph))
        .routes(routes!(
            webhooks::get_change_notifications,
            webhooks::put_change_notifications
        ))
}
