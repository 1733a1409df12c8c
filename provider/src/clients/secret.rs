//! A secret string that never prints itself, and the one redaction of vendor text: every
//! secret the process has held (API key, client secret, tokens, webhook passwords) is
//! replaced by `***` before an answer's text becomes an error or a log line.
use std::fmt;
use std::sync::RwLock;

/// Every secret made so far, longest first (so a secret containing another is blanked whole).
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shorter values are not searched for: blanking them would garble ordinary words.
const MIN_REDACTED: usize = 6;

fn remember(s: &str) {
    if s.len() < MIN_REDACTED {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == s) {
        known.push(s.to_string());
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// `text` with every known secret, as sent or as a server may echo it (JSON-escaped,
/// form-encoded), replaced by `***`.
pub fn redact(text: &str) -> String {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in known.iter() {
        let json = serde_json::to_string(secret).unwrap_or_default();
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for form in [secret.as_str(), json.trim_matches('"'), form.as_str()] {
            if !form.is_empty() && out.contains(form) {
                out = out.replace(form, "***");
            }
        }
    }
    out
}

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        let s = s.into();
        remember(&s);
        Secret(s)
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn redaction_blanks_every_known_secret_as_sent_or_echoed() {
        let _key = Secret::new("wb-key-0123456789");
        let _password = Secret::new("p@ss \"word\"/42");
        let text = r#"bad key wb-key-0123456789; variables {"password":"p@ss \"word\"/42"}; form password=p%40ss+%22word%22%2F42"#;
        let out = redact(text);
        assert_eq!(
            out,
            r#"bad key ***; variables {"password":"***"}; form password=***"#
        );
        let _short = Secret::new("abc");
        assert_eq!(redact("abc abcdef"), "abc abcdef", "short values stay");
    }
}
