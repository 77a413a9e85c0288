//! YAML read into a plain tree in which every node and every mapping key knows where it came
//! from. Reading the manifest in two steps — YAML to this tree, then the tree to the app —
//! lets the second step report every mistake, not only the first, each at its place.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A place in a manifest file (1-based line and column).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

impl Value {
    /// What the value is, for messages: "a string (\"10x\")", "a list", …
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "nothing (null)".into(),
            Value::Bool(b) => format!("a boolean ({b})"),
            Value::Int(i) => format!("a number ({i})"),
            Value::Float(f) => format!("a number ({f})"),
            Value::Str(s) => {
                let shown: String = s.chars().take(40).collect();
                let cut = if shown.len() < s.len() { "…" } else { "" };
                format!("a string ({shown:?}{cut})")
            }
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

/// Parses one YAML document. Duplicate keys are kept in the tree, so that the reader can
/// report them with both places.
pub fn parse(text: &str) -> Result<Node, (Pos, String)> {
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    // YAML 1.2: `yes`, `no`, `on` and `off` are strings.
    options.strict_booleans = true;
    match serde_saphyr::from_str_with_options::<Option<Spanned<Tree>>>(text, options) {
        Ok(Some(root)) => Ok(node(root)),
        Ok(None) => Ok(Node {
            pos: Pos { line: 1, column: 1 },
            value: Value::Null,
        }),
        Err(e) => {
            let pos = e
                .location()
                .map(|l| Pos {
                    line: l.line(),
                    column: l.column(),
                })
                .unwrap_or_default();
            Err((pos, first_line(&e.to_string())))
        }
    }
}

/// The YAML library's message without its rendered snippet: the caller shows the place.
fn first_line(message: &str) -> String {
    message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid YAML")
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

fn node(spanned: Spanned<Tree>) -> Node {
    Node {
        pos: Pos {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        },
        value: spanned.value.0,
    }
}

/// The deserializer's view of a node; converted into [`Node`] with its place.
struct Tree(Value);

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor).map(Tree)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(TreeVisitor)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("the number is too large"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Tree>>()? {
            items.push(node(item));
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Tree>>()?;
            let key = Key {
                name: key.value,
                pos: Pos {
                    line: key.referenced.line(),
                    column: key.referenced.column(),
                },
            };
            entries.push((key, node(value)));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_places() {
        let root = parse("a: 1\nb:\n  - x\n  - {c: true}\n").unwrap();
        let Value::Map(entries) = root.value else {
            panic!("a map")
        };
        assert_eq!(entries[0].0.name, "a");
        assert_eq!(entries[0].0.pos, Pos { line: 1, column: 1 });
        assert_eq!(entries[0].1.value, Value::Int(1));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("a list")
        };
        assert_eq!(items[0].pos.line, 3);
        assert_eq!(items[1].pos.line, 4);
    }

    #[test]
    fn duplicate_keys_reach_the_reader() {
        let root = parse("a: 1\na: 2\n").unwrap();
        let Value::Map(entries) = root.value else {
            panic!("a map")
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn yaml_1_2_keeps_yes_a_string_and_reports_syntax_errors_with_a_place() {
        let root = parse("x: yes\n").unwrap();
        let Value::Map(entries) = root.value else {
            panic!("a map")
        };
        assert_eq!(entries[0].1.value, Value::Str("yes".into()));
        let (pos, message) = parse("a: [1, 2\n").unwrap_err();
        assert!(pos.line >= 1, "{pos:?} {message}");
        assert!(!message.is_empty());
        assert_eq!(parse("").unwrap().value, Value::Null);
    }
}
