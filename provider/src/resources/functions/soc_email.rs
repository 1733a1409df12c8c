//! Function `provider::expel::soc_email(org_name)`: the address the guides tell users to
//! invite for Expel's SOC, `soc+<organization>@expel.io`.
use tfplugin::provider::{Function, FunctionError, Parameter, Signature};
use tfplugin::value::{Type, Value};

pub struct SocEmail;

/// "Acme Corp" -> "soc+acme_corp@expel.io": lower case, every run of other characters one `_`.
pub fn soc_email(org_name: &str) -> Option<String> {
    let mut slug = String::new();
    for c in org_name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
    }
    let slug = slug.trim_end_matches('_');
    (!slug.is_empty()).then(|| format!("soc+{slug}@expel.io"))
}

impl Function for SocEmail {
    fn name(&self) -> &'static str {
        "soc_email"
    }

    fn signature(&self) -> Signature {
        Signature {
            parameters: vec![Parameter {
                name: "org_name",
                ty: Type::String,
                description: "Your organization's name as Expel knows it, e.g. `Acme Corp`. A name without letters or digits is an error on this argument.",
            }],
            returns: Type::String,
            summary: "The e-mail address of Expel's SOC for an organization",
            description: "Returns `soc+<organization>@expel.io`, the address the onboarding guides invite as a console user: the name in lower case, with every run of other characters replaced by one `_`. `soc_email(\"Acme Corp\")` is `\"soc+acme_corp@expel.io\"`.",
        }
    }

    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let name = args.first().and_then(Value::as_str).unwrap_or_default();
        soc_email(name).map(Value::string).ok_or(FunctionError {
            text: format!("org_name {name:?} has no letters or digits; pass the organization's name, e.g. \"Acme Corp\""),
            argument: Some(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::soc_email;

    #[test]
    fn derives_the_guides_address() {
        assert_eq!(
            soc_email("Acme Corp").as_deref(),
            Some("soc+acme_corp@expel.io")
        );
        assert_eq!(
            soc_email("  ACME, Inc. ").as_deref(),
            Some("soc+acme_inc@expel.io")
        );
        assert_eq!(soc_email("Org-42").as_deref(), Some("soc+org_42@expel.io"));
        assert_eq!(soc_email(" -- "), None);
    }
}
