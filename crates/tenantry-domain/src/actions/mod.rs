//! The identity actions Tenantry carries out, declared as data: what each is called, the
//! capability (permissions and directory roles) it needs, whether an employee may ask for
//! it on themselves, how its parameters are checked, and the Graph calls it makes
//! (graph-facts §6). The executor and the dry run both work from [`plan`], so what a dry
//! run shows is what execution sends.
//!
//! [`kind`] is the catalogue, [`parameters`] checks what a request asks, [`plan`] turns
//! a checked request into Graph calls.

mod kind;
mod parameters;
mod plan;

pub use kind::*;
pub use parameters::*;
pub use plan::*;

/// Roles Microsoft itself treats as non-administrators for profile writes (graph-facts
/// §6.6): holding only these does not make an account privileged. Every other directory
/// role does. Template ids of the last three are from Entra's built-in roles reference
/// and not in graph-facts (UNVERIFIED).
const UNPRIVILEGED_ROLES: [&str; 4] = [
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b", // Directory Readers
    "95e79109-95c0-4d8e-aee3-d01accf2d47b", // Guest Inviter
    "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b", // Message Center Reader
    "4a5d8f65-41da-4de4-8968-e035b65339cf", // Reports Reader
];

/// Whether holding the role with this template id makes an account privileged.
pub fn is_privileged_role(template_id: &str) -> bool {
    !UNPRIVILEGED_ROLES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(template_id))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn every_action_round_trips_its_name() {
        for kind in ActionKind::ALL {
            assert_eq!(kind.as_str().parse::<ActionKind>(), Ok(kind));
        }
        assert!("format_disk".parse::<ActionKind>().is_err());
    }

    #[test]
    fn profile_parameters_map_to_graph_properties_and_reject_strangers() {
        let parsed = parse_parameters(
            ActionKind::UpdateUserProfile,
            &json!({"job_title": " Buyer ", "usage_location": "gb", "business_phone": "+44 20 7946 0000", "department": null}),
        )
        .expect("valid");
        let Parameters::Profile { changes, manager } = parsed else {
            panic!("profile");
        };
        assert_eq!(changes["jobTitle"], "Buyer");
        assert_eq!(changes["usageLocation"], "GB");
        assert_eq!(changes["businessPhones"], json!(["+44 20 7946 0000"]));
        assert_eq!(changes["department"], Value::Null);
        assert_eq!(manager, None);

        let errors = parse_parameters(
            ActionKind::UpdateUserProfile,
            &json!({"birthday": "2000-01-01", "usage_location": "GBR"}),
        )
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["parameters.birthday", "parameters.usage_location"],
            "{errors:?}"
        );
        assert!(parse_parameters(ActionKind::UpdateUserProfile, &json!({})).is_err());
        assert!(parse_parameters(ActionKind::PasswordReset, &json!({"password": "x"})).is_err());
        assert_eq!(
            parse_parameters(ActionKind::PasswordReset, &Value::Null),
            Ok(Parameters::None)
        );
    }

    #[test]
    fn a_licence_needs_a_usage_location() {
        let errors = parse_parameters(
            ActionKind::CreateUser,
            &json!({"display_name": "Ana", "license_sku_id": "c7df2760-2c81-4ef7-b578-5b5392b571df"}),
        )
        .expect_err("no usage location");
        assert_eq!(errors[0].field, "parameters.usage_location");
        assert!(parse_new_upn("ana@contoso.example").is_ok());
        assert!(parse_new_upn("ana@localhost").is_err());
        assert!(parse_new_upn("a na@contoso.example").is_err());
    }

    #[test]
    fn a_password_never_appears_in_a_plan() {
        let target = Target {
            id: Some(uuid::Uuid::nil()),
            user_principal_name: None,
            display_name: None,
        };
        let steps = plan(
            ActionKind::PasswordReset,
            &[target],
            &Parameters::None,
            &Resolved::default(),
            "https://graph.microsoft.com/v1.0",
        );
        assert_eq!(steps.len(), 1);
        assert!(!steps[0].idempotent, "a password is set once");
        assert_eq!(
            steps[0].body.as_ref().expect("body")["passwordProfile"]["password"],
            PASSWORD_PLACEHOLDER
        );
    }

    #[test]
    fn an_alternate_mobile_phone_is_deleted_before_the_mobile_one() {
        let phone = |id: &str, kind: &str| json!({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": id, "phoneType": kind});
        let methods = [
            phone("m", "mobile"),
            json!({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490"}),
            phone("a", "alternateMobile"),
            json!({"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": "x"}),
        ];
        let paths: Vec<String> = mfa_delete_steps("u", &methods)
            .into_iter()
            .map(|s| s.path)
            .collect();
        assert_eq!(
            paths,
            [
                "/users/u/authentication/phoneMethods/a",
                "/users/u/authentication/phoneMethods/m",
                "/users/u/authentication/microsoftAuthenticatorMethods/x",
            ]
        );
    }

    #[test]
    fn mfa_deletes_skip_the_password_method() {
        let methods = [
            json!({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490"}),
            json!({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "3179e48a-750b-4051-897c-87b9720928f7"}),
        ];
        let steps = mfa_delete_steps("u", &methods);
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].path,
            "/users/u/authentication/phoneMethods/3179e48a-750b-4051-897c-87b9720928f7"
        );
    }

    #[test]
    fn reader_roles_are_not_privileged() {
        assert!(!is_privileged_role("88d8e3e3-8f55-4a1e-953a-9b9898b8876b"));
        assert!(is_privileged_role("62e90394-69f5-4237-9190-012177145e10"));
        assert!(is_privileged_role("729827e3-9c14-49f7-bb1b-9608f156bbb8"));
    }
}
