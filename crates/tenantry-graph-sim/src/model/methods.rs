//! Authentication methods per user: a generated default set (password always; an
//! authenticator app, phone or OATH token depending on the user), changed by deletes.
//! Microsoft's rules hold (graph-facts §6.3): the default MFA method cannot be deleted
//! while other MFA methods remain, a mobile phone cannot be deleted while an
//! alternateMobile one remains ("A user can't have an alternateMobile number without a
//! mobile number"), and the password method has no delete at all.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::ids::stable_hash;

/// The password method's id, the same for every user (graph-facts §6.3).
pub const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";
pub const MOBILE_PHONE_ID: &str = "3179e48a-750b-4051-897c-87b9720928f7";
/// The alternateMobile phone method's id (graph-facts §6.3).
pub const ALTERNATE_MOBILE_PHONE_ID: &str = "b6332ec1-7057-4abe-9331-3d72feddfe41";
const PHONE_TYPE: &str = "#microsoft.graph.phoneAuthenticationMethod";

/// The per-type collections that support DELETE, with the `@odata.type` each holds.
pub const DELETABLE: [(&str, &str); 7] = [
    (
        "microsoftAuthenticatorMethods",
        "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
    ),
    ("phoneMethods", "#microsoft.graph.phoneAuthenticationMethod"),
    (
        "softwareOathMethods",
        "#microsoft.graph.softwareOathAuthenticationMethod",
    ),
    ("fido2Methods", "#microsoft.graph.fido2AuthenticationMethod"),
    ("emailMethods", "#microsoft.graph.emailAuthenticationMethod"),
    (
        "temporaryAccessPassMethods",
        "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
    ),
    (
        "windowsHelloForBusinessMethods",
        "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
    ),
];

#[derive(Clone, Debug)]
pub struct Method {
    pub body: Map<String, Value>,
    /// The user's default MFA method (internal; Graph shows it elsewhere).
    pub is_default: bool,
}

impl Method {
    /// A method as Graph lists it (`@odata.type`, `id`, …).
    pub fn new(body: Value, is_default: bool) -> Self {
        Self {
            body: object(body),
            is_default,
        }
    }

    pub fn id(&self) -> &str {
        self.body.get("id").and_then(Value::as_str).unwrap_or("")
    }

    pub fn odata_type(&self) -> &str {
        self.body
            .get("@odata.type")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn is_password(&self) -> bool {
        self.id() == PASSWORD_METHOD_ID
    }

    fn is_phone(&self, phone_type: &str) -> bool {
        self.odata_type() == PHONE_TYPE
            && self.body.get("phoneType").and_then(Value::as_str) == Some(phone_type)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum DeleteError {
    NotFound,
    DefaultWithOthers,
    /// A mobile phone while an alternateMobile one remains.
    AlternateMobileNeedsMobile,
}

#[derive(Default)]
pub struct AuthMethods {
    changed: HashMap<u32, Vec<Method>>,
}

impl AuthMethods {
    pub fn list(&self, prefix: u64, user: u32) -> Vec<Method> {
        self.changed
            .get(&user)
            .cloned()
            .unwrap_or_else(|| generate(prefix, user))
    }

    /// Replaces the methods of `user` (as the user would register them).
    pub fn set(&mut self, user: u32, methods: Vec<Method>) {
        self.changed.insert(user, methods);
    }

    /// Deletes method `id` from the `segment` collection of `user`.
    pub fn delete(
        &mut self,
        prefix: u64,
        user: u32,
        segment: &str,
        id: &str,
    ) -> Result<(), DeleteError> {
        let odata_type = DELETABLE
            .iter()
            .find(|(s, _)| *s == segment)
            .map(|(_, t)| *t)
            .ok_or(DeleteError::NotFound)?;
        let mut methods = self.list(prefix, user);
        let position = methods
            .iter()
            .position(|m| m.id() == id && m.odata_type() == odata_type)
            .ok_or(DeleteError::NotFound)?;
        let others = methods
            .iter()
            .filter(|m| !m.is_password() && m.id() != id)
            .count();
        if methods[position].is_default && others > 0 {
            return Err(DeleteError::DefaultWithOthers);
        }
        if methods[position].is_phone("mobile")
            && methods.iter().any(|m| m.is_phone("alternateMobile"))
        {
            return Err(DeleteError::AlternateMobileNeedsMobile);
        }
        methods.remove(position);
        self.changed.insert(user, methods);
        Ok(())
    }
}

fn generate(prefix: u64, user: u32) -> Vec<Method> {
    let h = stable_hash(&[&prefix.to_le_bytes(), &user.to_le_bytes(), b"methods"]);
    let method_id = |salt: &str| {
        let a = stable_hash(&[&h.to_le_bytes(), salt.as_bytes()]);
        let b = stable_hash(&[&a.to_le_bytes()]);
        uuid::Uuid::from_u64_pair(
            (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000,
            (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000,
        )
        .to_string()
    };
    let mut methods = vec![Method {
        body: object(json!({
            "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
            "id": PASSWORD_METHOD_ID,
            "password": null,
            "createdDateTime": "2023-09-18T10:38:07Z"
        })),
        is_default: false,
    }];
    let authenticator = || Method {
        body: object(json!({
            "@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
            "id": method_id("authenticator"),
            "displayName": "iPhone 15",
            "deviceTag": "SoftwareTokenActivated",
            "phoneAppVersion": "6.8.7",
            "createdDateTime": "2024-03-11T08:21:14Z"
        })),
        is_default: false,
    };
    let phone = || Method {
        body: object(json!({
            "@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
            "id": MOBILE_PHONE_ID,
            "phoneNumber": format!("+1 206555{:04}", user % 10_000),
            "phoneType": "mobile",
            "smsSignInState": "notAllowedByPolicy"
        })),
        is_default: false,
    };
    let oath = || Method {
        body: object(json!({
            "@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod",
            "id": method_id("oath"),
            "secretKey": null
        })),
        is_default: false,
    };
    let mut mfa = match user % 4 {
        0 => vec![authenticator(), phone()],
        1 => vec![phone()],
        2 => vec![authenticator(), oath()],
        _ => Vec::new(),
    };
    if let Some(first) = mfa.first_mut() {
        first.is_default = true;
    }
    methods.extend(mfa);
    methods
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mobile_phone_stays_while_an_alternate_mobile_one_remains() {
        let mut methods = AuthMethods::default();
        let phone = |id: &str, kind: &str| {
            Method::new(
                json!({"@odata.type": PHONE_TYPE, "id": id, "phoneNumber": "+1 2065550100", "phoneType": kind}),
                false,
            )
        };
        methods.set(
            1,
            vec![
                phone(MOBILE_PHONE_ID, "mobile"),
                phone(ALTERNATE_MOBILE_PHONE_ID, "alternateMobile"),
            ],
        );
        assert_eq!(
            methods.delete(7, 1, "phoneMethods", MOBILE_PHONE_ID),
            Err(DeleteError::AlternateMobileNeedsMobile)
        );
        assert_eq!(
            methods.delete(7, 1, "phoneMethods", ALTERNATE_MOBILE_PHONE_ID),
            Ok(())
        );
        assert_eq!(
            methods.delete(7, 1, "phoneMethods", MOBILE_PHONE_ID),
            Ok(())
        );
    }

    #[test]
    fn the_default_method_goes_last_and_the_password_stays() {
        let mut methods = AuthMethods::default();
        let listed = methods.list(7, 0);
        assert_eq!(listed.len(), 3, "password, authenticator (default), phone");
        let authenticator = listed[1].id().to_owned();
        assert_eq!(
            methods.delete(7, 0, "microsoftAuthenticatorMethods", &authenticator),
            Err(DeleteError::DefaultWithOthers)
        );
        assert_eq!(
            methods.delete(7, 0, "phoneMethods", MOBILE_PHONE_ID),
            Ok(())
        );
        assert_eq!(
            methods.delete(7, 0, "microsoftAuthenticatorMethods", &authenticator),
            Ok(())
        );
        assert_eq!(methods.list(7, 0).len(), 1);
        assert_eq!(
            methods.delete(7, 0, "phoneMethods", PASSWORD_METHOD_ID),
            Err(DeleteError::NotFound)
        );
    }
}
