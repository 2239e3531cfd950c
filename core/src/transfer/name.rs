//! File names on the wire: what a receiver accepts ([`FileName::parse`]) and what a
//! sender makes of a local name ([`FileName::sanitize`]), so that an honest sender is
//! never refused and a name can never leave the receiver's directory.

use super::NAME_MAX;

/// A file name safe to create inside a directory: one path component of 1 to
/// [`NAME_MAX`] bytes of UTF-8, with no `/`, `\` or `:`, no control character, not
/// hidden (no leading `.`, so never `.` or `..`), not only white space.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileName(String);

/// Why a name a peer sent is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// No characters, or only white space.
    #[error("the file name is empty")]
    Empty,
    /// Longer than [`NAME_MAX`] bytes.
    #[error("the file name is {len} bytes, over the {NAME_MAX}-byte limit")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// `/`, `\` or `:`: a path (or a Windows drive or stream), not a name.
    #[error("the file name contains a path separator")]
    Separator,
    /// A control character (a newline, an escape sequence, NUL).
    #[error("the file name contains a control character")]
    Control,
    /// A leading `.`: hidden, or `.` / `..` themselves.
    #[error("the file name starts with a dot")]
    Hidden,
}

fn is_separator(c: char) -> bool {
    matches!(c, '/' | '\\' | ':')
}

impl FileName {
    /// The name a peer offered, if it is safe as it is (nothing is rewritten: a name
    /// that needs rewriting was not made by [`FileName::sanitize`], so it is refused).
    pub fn parse(name: &str) -> Result<FileName, NameError> {
        if name.trim().is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > NAME_MAX {
            return Err(NameError::TooLong { len: name.len() });
        }
        if name.chars().any(is_separator) {
            return Err(NameError::Separator);
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::Control);
        }
        if name.starts_with('.') {
            return Err(NameError::Hidden);
        }
        Ok(FileName(name.to_owned()))
    }

    /// A local file's name made acceptable to [`FileName::parse`]: the last path
    /// component, control characters dropped, `:` as `_`, leading dots dropped, cut to
    /// [`NAME_MAX`] bytes on a character boundary; `file` if nothing (but white space) is
    /// left. A name [`FileName::parse`] accepts is kept as it is.
    pub fn sanitize(name: &str) -> FileName {
        let last = name.rsplit(['/', '\\']).next().unwrap_or("");
        let clean: String = last
            .chars()
            .filter(|c| !c.is_control())
            .map(|c| if is_separator(c) { '_' } else { c })
            .collect();
        let mut clean = clean.trim_start_matches('.');
        if clean.len() > NAME_MAX {
            let mut cut = NAME_MAX;
            while !clean.is_char_boundary(cut) {
                cut -= 1;
            }
            clean = &clean[..cut];
        }
        if clean.trim().is_empty() {
            FileName("file".into())
        } else {
            FileName(clean.to_owned())
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FileName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for FileName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
