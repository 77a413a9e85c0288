//! What checking manifests found: errors, which stop an app from loading, and warnings, which
//! do not. Each finding says where, what was wrong, and what would be accepted.

use std::fmt;

use crate::app::Origin;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub at: Origin,
    pub message: String,
    /// Further lines: what was found, what is accepted, a suggestion.
    pub notes: Vec<String>,
}

impl Finding {
    pub fn note(&mut self, note: impl Into<String>) -> &mut Self {
        self.notes.push(note.into());
        self
    }

    /// Adds "did you mean …?" when there is a close match (from [`did_you_mean`]).
    pub fn suggest(&mut self, close_match: Option<impl std::fmt::Display>) -> &mut Self {
        if let Some(s) = close_match {
            self.notes.push(format!("help: did you mean `{s}`?"));
        }
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{label}: {}", self.message)?;
        write!(f, "  --> {}", self.at)?;
        for note in &self.notes {
            write!(f, "\n  = {note}")?;
        }
        Ok(())
    }
}

/// The findings of one check, in the order of the files and places they concern.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings(Vec<Finding>);

impl Findings {
    pub fn push(
        &mut self,
        severity: Severity,
        at: Origin,
        message: impl Into<String>,
    ) -> &mut Finding {
        self.0.push(Finding {
            severity,
            at,
            message: message.into(),
            notes: Vec::new(),
        });
        self.0.last_mut().expect("just pushed")
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.0.iter().filter(|f| f.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.0.iter().filter(|f| f.severity == Severity::Warning)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn extend(&mut self, other: Findings) {
        self.0.extend(other.0);
    }

    pub(crate) fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (&a.at, a.severity).cmp(&(&b.at, b.severity)));
    }
}

impl fmt::Display for Findings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.0 {
            writeln!(f, "{finding}")?;
        }
        let (errors, warnings) = (self.errors().count(), self.warnings().count());
        write!(
            f,
            "{} and {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The accepted word closest to `found`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    found: &str,
    accepted: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let found = found.to_ascii_lowercase();
    accepted
        .into_iter()
        .map(|a| (edit_distance(&found, &a.to_ascii_lowercase()), a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4) && *d < a.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_matches_only() {
        let fields = ["memory_mb", "timeout", "concurrency", "runtime"];
        assert_eq!(did_you_mean("memroy_mb", fields), Some("memory_mb"));
        assert_eq!(did_you_mean("Timeout", fields), Some("timeout"));
        assert_eq!(did_you_mean("concurency", fields), Some("concurrency"));
        assert_eq!(did_you_mean("colour", fields), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
