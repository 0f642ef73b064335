//! Znode path validation (the same rules as Java's `PathUtils.validatePath`) and chroot
//! helpers, shared by client and server.
//!
//! A valid path:
//!
//! * is not empty and starts with `/`;
//! * is `/` itself, or does not end with `/`;
//! * has no empty segment (`//`) and no `.` or `..` segment (`/a/./b`; `/a/.b` and `/...` are
//!   fine);
//! * contains none of: U+0000; U+0001–U+001F; U+007F–U+009F; U+D800–U+F8FF; U+FFF0–U+FFFF.
//!
//! Java checks UTF-16 code units, so the surrogate range U+D800–U+DFFF rejects **every
//! character outside the Basic Multilingual Plane** (they are surrogate pairs in Java). Rust
//! strings have no lone surrogates, so here those characters (above U+FFFF) are rejected
//! explicitly, which keeps both sides in agreement.
//!
//! Errors name the rule and the **byte** offset into the `&str` (Java reports a UTF-16 index).
//! When several rules are broken, the one Java reports is returned: first empty / leading
//! slash / trailing slash, then the leftmost bad character.
//!
//! ```
//! use zk_proto::path::{validate_path, validate_sequential, Chroot, PathError};
//!
//! assert!(validate_path("/app/config").is_ok());
//! assert_eq!(validate_path("/app//x"), Err(PathError::EmptySegment { at: 5 }));
//! // Sequential creates may end in '/': the server appends the sequence number.
//! assert!(validate_sequential("/queue/").is_ok());
//!
//! let chroot = Chroot::parse("/app")?;
//! assert_eq!(chroot.prefix("/lock"), "/app/lock");
//! assert_eq!(chroot.strip("/app/lock"), Some("/lock"));
//! assert_eq!(chroot.strip("/app"), Some("/"));
//! assert_eq!(chroot.strip("/apple"), None);
//! # Ok::<(), PathError>(())
//! ```

/// Why a path is not a valid znode path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is the empty string.
    #[error("path must not be empty")]
    Empty,
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NoLeadingSlash,
    /// The path ends with `/` and is not the root.
    #[error("path must not end with '/'")]
    TrailingSlash,
    /// Two slashes in a row: an empty node name.
    #[error("empty node name at byte {at}")]
    EmptySegment {
        /// Byte offset of the second slash.
        at: usize,
    },
    /// A `.` or `..` segment.
    #[error("relative path segment ('.' or '..') at byte {at}")]
    RelativeSegment {
        /// Byte offset of the segment's last dot.
        at: usize,
    },
    /// A U+0000 character.
    #[error("null character at byte {at}")]
    NullChar {
        /// Byte offset of the character.
        at: usize,
    },
    /// A character ZooKeeper does not allow in paths.
    #[error("invalid character {ch:?} at byte {at}")]
    InvalidChar {
        /// Byte offset of the character.
        at: usize,
        /// The character.
        ch: char,
    },
}

/// Characters Java's `PathUtils` rejects (besides U+0000, which has its own error).
fn is_forbidden_char(c: char) -> bool {
    matches!(c,
        '\u{1}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        // U+D800–U+DFFF (surrogates) cannot occur in a Rust `char`.
        | '\u{e000}'..='\u{f8ff}'
        | '\u{fff0}'..='\u{ffff}')
        // Outside the BMP: a surrogate pair in Java, so rejected there too.
        || u32::from(c) > 0xffff
}

/// Checks `path` with the rules of Java's `PathUtils.validatePath(path)`.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if !path.starts_with('/') {
        return Err(PathError::NoLeadingSlash);
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    let bytes = path.as_bytes();
    let mut prev = '/';
    let mut segment_start = 1;
    for (at, c) in path.char_indices().skip(1) {
        if c == '\0' {
            return Err(PathError::NullChar { at });
        } else if c == '/' && prev == '/' {
            return Err(PathError::EmptySegment { at });
        } else if c == '.' {
            // The segment so far is "" or "." and it ends right after this dot.
            let before = &path[segment_start..at];
            let ends_here = matches!(bytes.get(at + 1), None | Some(b'/'));
            if (before.is_empty() || before == ".") && ends_here {
                return Err(PathError::RelativeSegment { at });
            }
        } else if is_forbidden_char(c) {
            return Err(PathError::InvalidChar { at, ch: c });
        }
        if c == '/' {
            segment_start = at + 1;
        }
        prev = c;
    }
    Ok(())
}

/// Checks the path of a sequential create, as Java does: the path with a `1` appended must be
/// valid (so `/queue/` and `/queue/item-` are fine).
pub fn validate_sequential(path: &str) -> Result<(), PathError> {
    let mut with_suffix = String::with_capacity(path.len() + 1);
    with_suffix.push_str(path);
    with_suffix.push('1');
    validate_path(&with_suffix)
}

/// Checks a path for a create with the given sequential flag.
pub fn validate_create_path(path: &str, sequential: bool) -> Result<(), PathError> {
    if sequential {
        validate_sequential(path)
    } else {
        validate_path(path)
    }
}

/// A client's chroot: the server subtree that the client sees as `/`.
///
/// Client paths are prefixed with the chroot before they go on the wire, and server paths
/// (created names, watch event paths) are stripped of it on the way back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Chroot {
    root: Option<String>,
}

impl Chroot {
    /// No chroot: paths pass through unchanged.
    pub const fn none() -> Chroot {
        Chroot { root: None }
    }

    /// Parses the chroot part of a connect string (`"/app"` in `"host:2181/app"`).
    ///
    /// `""` and `"/"` mean no chroot; anything else must be a valid path.
    pub fn parse(chroot: &str) -> Result<Chroot, PathError> {
        if chroot.is_empty() || chroot == "/" {
            return Ok(Chroot::none());
        }
        validate_path(chroot)?;
        Ok(Chroot {
            root: Some(chroot.to_owned()),
        })
    }

    /// The chroot path, or `None` when there is no chroot.
    pub fn as_str(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// `true` when there is no chroot.
    pub fn is_none(&self) -> bool {
        self.root.is_none()
    }

    /// The server path for a client path: `/` maps to the chroot itself, `/x` to
    /// `<chroot>/x`.
    pub fn prefix(&self, client_path: &str) -> String {
        match &self.root {
            None => client_path.to_owned(),
            Some(root) if client_path == "/" => root.clone(),
            Some(root) => {
                let mut path = String::with_capacity(root.len() + client_path.len());
                path.push_str(root);
                path.push_str(client_path);
                path
            }
        }
    }

    /// The client path for a server path: the chroot maps to `/`, `<chroot>/x` to `/x`.
    ///
    /// Returns `None` for paths outside the chroot, including siblings that merely share the
    /// prefix (`/apple` is outside `/app`; Java's client would strip it to `ple`).
    pub fn strip<'a>(&self, server_path: &'a str) -> Option<&'a str> {
        let Some(root) = &self.root else {
            return Some(server_path);
        };
        let rest = server_path.strip_prefix(root.as_str())?;
        if rest.is_empty() {
            Some("/")
        } else if rest.starts_with('/') {
            Some(rest)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(path: &str) -> PathError {
        match validate_path(path) {
            Err(e) => e,
            Ok(()) => panic!("{path:?} should be invalid"),
        }
    }

    #[test]
    fn valid_paths() {
        for p in [
            "/",
            "/a",
            "/a/b/c",
            "/zookeeper/config",
            "/a.b",
            "/.a",
            "/a.",
            "/...",
            "/a/..b",
            "/b../c",
            "/ü/日本",
            "/with space",
            "/\u{a0}",
            "/\u{f900}",
            "/\u{ffef}",
        ] {
            assert_eq!(validate_path(p), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn empty() {
        assert_eq!(err(""), PathError::Empty);
    }

    #[test]
    fn no_leading_slash() {
        assert_eq!(err("a"), PathError::NoLeadingSlash);
        assert_eq!(err("a/b"), PathError::NoLeadingSlash);
        assert_eq!(err(" /a"), PathError::NoLeadingSlash);
    }

    #[test]
    fn trailing_slash() {
        assert_eq!(err("/a/"), PathError::TrailingSlash);
        // Checked before the scan, as in Java.
        assert_eq!(err("//"), PathError::TrailingSlash);
    }

    #[test]
    fn empty_segment() {
        assert_eq!(err("//a"), PathError::EmptySegment { at: 1 });
        assert_eq!(err("/a//b"), PathError::EmptySegment { at: 3 });
    }

    #[test]
    fn relative_segments() {
        assert_eq!(err("/."), PathError::RelativeSegment { at: 1 });
        assert_eq!(err("/.."), PathError::RelativeSegment { at: 2 });
        assert_eq!(err("/a/./b"), PathError::RelativeSegment { at: 3 });
        assert_eq!(err("/a/../b"), PathError::RelativeSegment { at: 4 });
        assert_eq!(err("/a/.."), PathError::RelativeSegment { at: 4 });
    }

    #[test]
    fn null_char() {
        assert_eq!(err("/a\0b"), PathError::NullChar { at: 2 });
    }

    #[test]
    fn control_chars() {
        assert_eq!(
            err("/a\u{1}"),
            PathError::InvalidChar { at: 2, ch: '\u{1}' }
        );
        assert_eq!(
            err("/\u{1f}"),
            PathError::InvalidChar {
                at: 1,
                ch: '\u{1f}'
            }
        );
        assert_eq!(err("/\n"), PathError::InvalidChar { at: 1, ch: '\n' });
    }

    #[test]
    fn del_and_c1_controls() {
        assert_eq!(
            err("/\u{7f}"),
            PathError::InvalidChar {
                at: 1,
                ch: '\u{7f}'
            }
        );
        assert_eq!(
            err("/x\u{9f}"),
            PathError::InvalidChar {
                at: 2,
                ch: '\u{9f}'
            }
        );
    }

    #[test]
    fn surrogate_and_private_use_range() {
        assert_eq!(
            err("/\u{e000}"),
            PathError::InvalidChar {
                at: 1,
                ch: '\u{e000}'
            }
        );
        assert_eq!(
            err("/\u{f8ff}"),
            PathError::InvalidChar {
                at: 1,
                ch: '\u{f8ff}'
            }
        );
        // Non-BMP characters are surrogate pairs in Java, hence rejected.
        assert_eq!(err("/a😀"), PathError::InvalidChar { at: 2, ch: '😀' });
    }

    #[test]
    fn specials_range() {
        assert_eq!(
            err("/\u{fff0}"),
            PathError::InvalidChar {
                at: 1,
                ch: '\u{fff0}'
            }
        );
        assert_eq!(
            err("/ab\u{ffff}"),
            PathError::InvalidChar {
                at: 3,
                ch: '\u{ffff}'
            }
        );
        // Offsets are bytes: 'ü' takes two.
        assert_eq!(
            err("/ü\u{fffd}"),
            PathError::InvalidChar {
                at: 3,
                ch: '\u{fffd}'
            }
        );
    }

    #[test]
    fn leftmost_problem_wins() {
        assert_eq!(
            err("/a\u{1}//b"),
            PathError::InvalidChar { at: 2, ch: '\u{1}' }
        );
        assert_eq!(err("/a//\u{1}"), PathError::EmptySegment { at: 3 });
    }

    #[test]
    fn sequential() {
        assert_eq!(validate_sequential("/q/"), Ok(()));
        assert_eq!(validate_sequential("/q/item-"), Ok(()));
        assert_eq!(validate_sequential("/"), Ok(()));
        assert_eq!(validate_sequential("/q/."), Ok(()));
        assert_eq!(validate_sequential("q"), Err(PathError::NoLeadingSlash));
        assert_eq!(
            validate_sequential("/a//"),
            Err(PathError::EmptySegment { at: 3 })
        );
        assert_eq!(validate_create_path("/q/", true), Ok(()));
        assert_eq!(
            validate_create_path("/q/", false),
            Err(PathError::TrailingSlash)
        );
    }

    #[test]
    fn chroot_parse() {
        assert_eq!(Chroot::parse("/"), Ok(Chroot::none()));
        assert_eq!(Chroot::parse(""), Ok(Chroot::none()));
        assert_eq!(
            Chroot::parse("/a/b").map(|c| c.as_str().map(str::to_owned)),
            Ok(Some("/a/b".to_owned()))
        );
        assert_eq!(Chroot::parse("/a/"), Err(PathError::TrailingSlash));
        assert_eq!(Chroot::parse("a"), Err(PathError::NoLeadingSlash));
    }

    #[test]
    fn chroot_prefix_and_strip() {
        let none = Chroot::none();
        assert_eq!(none.prefix("/x"), "/x");
        assert_eq!(none.strip("/x"), Some("/x"));

        let Ok(app) = Chroot::parse("/app") else {
            panic!("valid chroot")
        };
        assert_eq!(app.prefix("/"), "/app");
        assert_eq!(app.prefix("/x/y"), "/app/x/y");
        assert_eq!(app.strip("/app"), Some("/"));
        assert_eq!(app.strip("/app/x/y"), Some("/x/y"));
        assert_eq!(app.strip("/apple"), None);
        assert_eq!(app.strip("/other"), None);
        assert_eq!(app.strip("/"), None);
        for p in ["/", "/a", "/a/b"] {
            assert_eq!(app.strip(&app.prefix(p)), Some(p));
        }
    }
}
