//! File names: `<cookie name><key>` for sessions, `<cookie name><key>_out_<random>` for the
//! temporary files a write goes through (Django's `mkstemp(prefix=<file name> + "_out_")`).

use session_core::{KEY_ALPHABET, SessionKey, redact};

/// The marker between a session file's name and the random part of its temporary files.
pub(crate) const TEMP_MARKER: &str = "_out_";

/// The suffix of a session's lock file (`<file name>_lock`), which a compare-and-swap save
/// holds while it checks and replaces the session file.
pub(crate) const LOCK_SUFFIX: &str = "_lock";

/// Length of the random part of our temporary file names (a generated key's length).
const TEMP_SUFFIX_LEN: usize = session_core::GENERATED_KEY_LEN;

/// The longest file name most filesystems accept (`NAME_MAX`), in bytes.
const NAME_MAX: usize = 255;

/// The longest key the store accepts with cookie name `prefix`: the key's temporary files must
/// still fit in `NAME_MAX`.
pub(crate) fn max_key_len(prefix: &str) -> usize {
    NAME_MAX.saturating_sub(prefix.len() + TEMP_MARKER.len() + TEMP_SUFFIX_LEN)
}

/// Whether every byte is in Django's `VALID_KEY_CHARS` (and there is at least one).
fn is_key_chars(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| KEY_ALPHABET.contains(&b))
}

/// The session file name for `key`, or `None` when the key must never name a file: a character
/// outside `[a-z0-9]` (path separators, `..`, NUL, uppercase, ...) or too long for a file name.
pub(crate) fn session_file_name(prefix: &str, key: &SessionKey) -> Option<String> {
    (key.is_generated_form() && key.as_str().len() <= max_key_len(prefix))
        .then(|| format!("{prefix}{}", key.as_str()))
}

/// A new temporary file name for session file `file_name`.
pub(crate) fn temp_file_name(file_name: &str) -> Result<String, session_core::Error> {
    // A generated key is 32 characters from the OS CSPRNG: exactly the random part needed.
    let random = SessionKey::generate()?;
    Ok(format!("{file_name}{TEMP_MARKER}{}", random.as_str()))
}

/// The lock file name of session file `file_name`.
pub(crate) fn lock_file_name(file_name: &str) -> String {
    format!("{file_name}{LOCK_SUFFIX}")
}

/// How file name `name` is shown in messages and logs by a store whose cookie name is `prefix`,
/// or `None` when it is shown as is. Anything after the prefix may be a key (of a session file,
/// of a temporary file of one, or of a probe's scratch file), so it is shortened whether or not
/// the name is well formed: a credential must not reach a log because its file was odd.
pub(crate) fn shown_file_name(prefix: &str, name: &str) -> Option<String> {
    let rest = name.strip_prefix(prefix)?;
    Some(match rest.split_once(TEMP_MARKER) {
        // The marker is kept so a reader can tell a write's temporary file from the session.
        Some((key, random)) => format!("{prefix}{}{TEMP_MARKER}{}", redact(key), redact(random)),
        None => match rest.strip_suffix(LOCK_SUFFIX) {
            Some(key) => format!("{prefix}{}{LOCK_SUFFIX}", redact(key)),
            None => format!("{prefix}{}", redact(rest)),
        },
    })
}

/// What a directory entry is, judged by its name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry<'a> {
    /// A session file holding the session `key`.
    Session(&'a str),
    /// A temporary file of a write (ours or Django's), possibly left by a killed process.
    Temp,
    /// A session's lock file, held by a compare-and-swap save (or left by a killed process).
    Lock,
    /// Anything else: never touched.
    Foreign,
}

/// Classifies a directory entry of a store whose cookie name is `prefix`.
pub(crate) fn classify<'a>(prefix: &str, file_name: &'a str) -> Entry<'a> {
    let Some(rest) = file_name.strip_prefix(prefix) else {
        return Entry::Foreign;
    };
    if is_key_chars(rest) {
        return match SessionKey::from_client(rest) {
            Some(_) if rest.len() <= max_key_len(prefix) => Entry::Session(rest),
            _ => Entry::Foreign,
        };
    }
    if let Some(key) = rest.strip_suffix(LOCK_SUFFIX)
        && is_key_chars(key)
    {
        return Entry::Lock;
    }
    match rest.split_once(TEMP_MARKER) {
        // mkstemp's random part uses `[a-z0-9_]`; ours uses `[a-z0-9]`.
        Some((key, random))
            if is_key_chars(key)
                && !random.is_empty()
                && random
                    .bytes()
                    .all(|b| b == b'_' || KEY_ALPHABET.contains(&b)) =>
        {
            Entry::Temp
        }
        _ => Entry::Foreign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> SessionKey {
        SessionKey::new(text).unwrap()
    }

    #[test]
    fn session_files_are_named_like_djangos() {
        assert_eq!(
            session_file_name("sessionid", &key("9kb4paf7njryyw8w72lxnmwn32igkmu2")).as_deref(),
            Some("sessionid9kb4paf7njryyw8w72lxnmwn32igkmu2")
        );
    }

    #[test]
    fn keys_outside_the_alphabet_name_no_file() {
        for bad in [
            "a/b/c/defgh",
            "a\\b\\c\\defgh",
            "../../etc/passwd",
            "abcdefgh\0",
            "ABCDEFGHIJ",
            "abc_defghij",
            "abcdefgh.",
            "abcdéfghij",
            "abcd efghij",
        ] {
            assert_eq!(session_file_name("sessionid", &key(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_too_long_for_a_file_name_name_no_file() {
        let longest = max_key_len("sessionid");
        assert_eq!(longest, 255 - 9 - 5 - 32);
        assert!(session_file_name("sessionid", &key(&"a".repeat(longest))).is_some());
        assert!(session_file_name("sessionid", &key(&"a".repeat(longest + 1))).is_none());
    }

    #[test]
    fn temp_names_are_classified_as_temp_files_of_the_session() {
        let name = temp_file_name("sessionidabcdefgh12345678").unwrap();
        assert!(name.starts_with("sessionidabcdefgh12345678_out_"));
        assert_eq!(name.len(), "sessionidabcdefgh12345678_out_".len() + 32);
        assert_eq!(classify("sessionid", &name), Entry::Temp);
        assert_ne!(
            temp_file_name("sessionidx").unwrap(),
            temp_file_name("sessionidx").unwrap()
        );
    }

    #[test]
    fn keys_are_shortened_as_session_key_debug_shortens_them() {
        let key = key("9kb4paf7njryyw8w72lxnmwn32igkmu2");
        let shown = shown_file_name("sessionid", &format!("sessionid{}", key.as_str())).unwrap();
        assert_eq!(shown, "sessionid9kb4…");
        // The same head and ellipsis as the core's own rendering of the key.
        assert!(
            format!("{key:?}").starts_with("SessionKey(9kb4…"),
            "{key:?}"
        );
    }

    #[test]
    fn temp_names_show_the_marker_but_neither_key_nor_random_part() {
        let name = temp_file_name("sessionid9kb4paf7njryyw8w72lxnmwn32igkmu2").unwrap();
        let random = name.rsplit(TEMP_MARKER).next().unwrap();
        let shown = shown_file_name("sessionid", &name).unwrap();
        assert_eq!(shown, format!("sessionid9kb4…_out_{}…", &random[..4]));
        // Django's mkstemp names too.
        assert_eq!(
            shown_file_name("sessionid", "sessionidabcdefgh_out_k2j_h4g5").as_deref(),
            Some("sessionidabcd…_out_k2j_…")
        );
    }

    #[test]
    fn names_after_the_prefix_are_shortened_even_when_malformed() {
        for (name, shown) in [
            ("sessionidABCDEFGHIJ", "sessionidABCD…"),
            ("sessionidab", "sessionidab…"),
            ("sessionidabcdéfghij", "sessionidabcd…"),
        ] {
            assert_eq!(shown_file_name("sessionid", name).as_deref(), Some(shown));
        }
        for other in ["notes.txt", "othercookieabcdefghijkl"] {
            assert_eq!(shown_file_name("sessionid", other), None, "{other:?}");
        }
    }

    #[test]
    fn directory_entries_are_classified_by_name() {
        let p = "sessionid";
        assert_eq!(
            classify(p, "sessionidabcdefgh12345678"),
            Entry::Session("abcdefgh12345678")
        );
        // Django's mkstemp names, with `_` in the random part.
        assert_eq!(classify(p, "sessionidabcdefgh_out_k2j_h4g5"), Entry::Temp);
        assert_eq!(classify(p, "sessionidabcdefgh12345678_lock"), Entry::Lock);
        assert_eq!(
            shown_file_name(p, "sessionidabcdefgh12345678_lock").unwrap(),
            format!("sessionid{}_lock", redact("abcdefgh12345678"))
        );
        for foreign in [
            "sessionid_lock",
            "sessionidABCDEFGH_lock",
            "sessionidabcdefgh_lock_x",
            "other",
            "sessionid",
            "sessionidshort",
            "sessionidABCDEFGHIJ",
            "sessionidabcdefgh.bak",
            "sessionidabcdefgh_out_",
            "sessionid_out_abc",
            "sessionidabcdefgh_out_ABC",
            "xsessionidabcdefgh12345678",
        ] {
            assert_eq!(classify(p, foreign), Entry::Foreign, "{foreign:?}");
        }
    }
}
