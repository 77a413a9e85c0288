//! Validated names. Every name that reaches storage passes through one of these newtypes, so the
//! rules live in one place and the rest of the code can rely on them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::InvalidName;

/// How much of a rejected value an error message quotes. Long hostile input (a 2,000-byte key)
/// must not turn into a 2,000-byte error message.
const QUOTE_LIMIT: usize = 64;

fn quote(value: &str) -> String {
    let mut shown: String = value.chars().take(QUOTE_LIMIT).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> InvalidName {
    InvalidName {
        what,
        value: quote(value),
        reason: reason.into(),
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidName> {
                let value = value.into();
                $check(&value).map_err(|reason| invalid($what, &value, reason))?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, InvalidName> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A bucket name under S3's rules for new buckets: 3–63 characters of lowercase letters,
    /// digits, `.` and `-`, starting and ending with a letter or digit, not shaped like an IP
    /// address. eddy also reserves `2015-03-31` (the Lambda API's path).
    BucketName,
    "bucket name",
    check_bucket_name
);

name_type!(
    /// An object key: any UTF-8 string of 1–1024 bytes except one containing NUL. Keys are
    /// opaque: they are never used as file paths.
    ObjectKey,
    "object key",
    check_object_key
);

name_type!(
    /// A table name: a lowercase letter, then up to 62 lowercase letters, digits or `_`.
    /// The pattern keeps user tables apart from the platform's own (`_eddy_…`, `sqlite_…`).
    TableName,
    "table name",
    check_table_name
);

name_type!(
    /// A column name: a letter, then up to 62 letters, digits or `_`. Column names are
    /// compared without regard to case (as SQLite does), so `Status` and `status` clash.
    ColumnName,
    "column name",
    check_column_name
);

name_type!(
    /// A function name under Lambda's rules: 1–64 letters, digits, `-` or `_`.
    FunctionName,
    "function name",
    check_function_name
);

fn check_bucket_name(s: &str) -> Result<(), String> {
    if !(3..=63).contains(&s.len()) {
        return Err(format!(
            "it is {} characters long; bucket names have 3 to 63",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(format!(
            "it contains {c:?}; bucket names use only lowercase letters, digits, '.' and '-'"
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(s.chars().next()) || !edge_ok(s.chars().last()) {
        return Err("bucket names start and end with a lowercase letter or digit".into());
    }
    if s.contains("..") || s.contains(".-") || s.contains("-.") {
        return Err("bucket names have no '..', '.-' or '-.'".into());
    }
    if s.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("bucket names must not look like an IP address".into());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if s.starts_with(prefix) {
            return Err(format!("bucket names must not start with {prefix:?}"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", "--x-s3", ".mrap"] {
        if s.ends_with(suffix) {
            return Err(format!("bucket names must not end with {suffix:?}"));
        }
    }
    if s == "2015-03-31" {
        return Err("it is reserved for the Lambda API".into());
    }
    Ok(())
}

/// The longest object key, in bytes of UTF-8, as in S3.
pub const MAX_KEY_BYTES: usize = 1024;

fn check_object_key(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("object keys are 1 to 1024 bytes of UTF-8; it is empty".into());
    }
    if s.len() > MAX_KEY_BYTES {
        return Err(format!(
            "it is {} bytes long; object keys are at most {MAX_KEY_BYTES} bytes of UTF-8",
            s.len()
        ));
    }
    if s.contains('\0') {
        return Err("object keys must not contain the NUL character".into());
    }
    Ok(())
}

fn check_identifier(
    s: &str,
    first_ok: fn(char) -> bool,
    rest_ok: fn(char) -> bool,
    rule: &str,
) -> Result<(), String> {
    let mut chars = s.chars();
    let valid = s.len() <= 63 && chars.next().is_some_and(first_ok) && chars.all(rest_ok);
    if valid { Ok(()) } else { Err(rule.to_string()) }
}

fn check_table_name(s: &str) -> Result<(), String> {
    if s.starts_with("sqlite_") {
        return Err("names starting with \"sqlite_\" are reserved by SQLite".into());
    }
    check_identifier(
        s,
        |c| c.is_ascii_lowercase(),
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
        "table names are a lowercase letter followed by up to 62 lowercase letters, digits or '_'",
    )
}

fn check_column_name(s: &str) -> Result<(), String> {
    check_identifier(
        s,
        |c| c.is_ascii_alphabetic(),
        |c| c.is_ascii_alphanumeric() || c == '_',
        "column names are a letter followed by up to 62 letters, digits or '_'",
    )
}

name_type!(
    /// A schedule name under EventBridge Scheduler's rules: 1–64 letters, digits, `-`, `_`
    /// or `.`.
    ScheduleName,
    "schedule name",
    check_schedule_name
);

fn check_schedule_name(s: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err("schedule names are 1 to 64 letters, digits, '-', '_' or '.'".into())
    }
}

fn check_function_name(s: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err("function names are 1 to 64 letters, digits, '-' or '_'".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "photos", "my.bucket-1", "a1b", &"a".repeat(63)] {
            BucketName::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Photos",
            "my_bucket",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "2015-03-31",
            "_eddy",
            "../etc",
            "a b c",
        ] {
            assert!(BucketName::new(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn object_keys_are_opaque_but_bounded() {
        for ok in [
            "a",
            "../../etc/passwd",
            "/abs/path",
            "red flower.jpg",
            "ключ/ü+%",
            &"k".repeat(1024),
        ] {
            ObjectKey::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let err = ObjectKey::new("k".repeat(1025)).unwrap_err();
        assert!(err.to_string().contains("1025 bytes"), "{err}");
        assert!(
            err.to_string().len() < 300,
            "error quotes a bounded part: {err}"
        );
        assert!(ObjectKey::new("").is_err());
        assert!(ObjectKey::new("a\0b").is_err());
        // 1024 bytes counts bytes, not characters.
        assert!(ObjectKey::new("é".repeat(513)).is_err());
    }

    #[test]
    fn identifiers_refuse_sql_and_quotes() {
        for bad in [
            "orders; DROP TABLE x",
            "a\"b",
            "a b",
            "Orders",
            "_eddy_journal",
            "sqlite_master",
            "1abc",
            "",
        ] {
            assert!(TableName::new(bad).is_err(), "{bad:?} should be refused");
        }
        TableName::new("orders_2026").unwrap();
        ColumnName::new("customerId").unwrap();
        assert!(ColumnName::new("x'--").is_err());
        assert!(ColumnName::new("a".repeat(64)).is_err());
        FunctionName::new("make-thumbnail_2").unwrap();
        assert!(FunctionName::new("make thumbnail").is_err());
        ScheduleName::new("nightly.report-2").unwrap();
        assert!(ScheduleName::new("../x").is_err());
        assert!(ScheduleName::new("").is_err());
    }

    #[test]
    fn names_deserialize_through_validation() {
        let ok: BucketName = serde_json::from_str("\"photos\"").unwrap();
        assert_eq!(ok.as_str(), "photos");
        let err = serde_json::from_str::<BucketName>("\"No\"").unwrap_err();
        assert!(err.to_string().contains("bucket name"), "{err}");
    }
}
