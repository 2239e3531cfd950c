//! The meeting topic: the 20-byte info-hash a meeting's members announce and look up,
//! derived from the invitation code with a domain-separated hash (never the raw code).

use sha2::{Digest, Sha256};

use super::id::InfoHash;

/// Domain separation for the topic hash; a different purpose (signaling keys) uses a
/// different label, so knowing the topic reveals nothing about the other derivations.
const TOPIC_LABEL: &[u8] = b"dhtmeet/topic/v1\0";

/// The normal form of an invitation code: surrounding whitespace removed, ASCII letters
/// lower-cased, and each run of whitespace, `-` or `_` turned into one `-`, so that
/// "Apple River  7" and "apple-river-7" are the same meeting.
pub fn normalize_code(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut pending_separator = false;
    for ch in code.trim().chars() {
        if ch.is_whitespace() || ch == '-' || ch == '_' {
            pending_separator = !out.is_empty();
            continue;
        }
        if pending_separator {
            out.push('-');
            pending_separator = false;
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// The DHT topic of the meeting with invitation `code`:
/// `SHA-256("dhtmeet/topic/v1\0" || normalize_code(code))[..20]`.
pub fn meeting_topic(code: &str) -> InfoHash {
    let mut h = Sha256::new();
    h.update(TOPIC_LABEL);
    h.update(normalize_code(code).as_bytes());
    let digest = h.finalize();
    let mut out = [0u8; 20];
    out.copy_from_slice(&digest[..20]);
    InfoHash(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_code_meet_and_different_codes_do_not() {
        assert_eq!(normalize_code("  Apple River\t 7 "), "apple-river-7");
        assert_eq!(normalize_code("apple--river_7"), "apple-river-7");
        assert_eq!(
            meeting_topic("Apple River 7"),
            meeting_topic("apple-river-7")
        );
        assert_ne!(
            meeting_topic("apple-river-7"),
            meeting_topic("apple-river-8")
        );
    }

    /// The test vector published in docs/PROTOCOL.md.
    #[test]
    fn topic_test_vector() {
        assert_eq!(
            meeting_topic("correct-horse-battery-staple").to_string(),
            TOPIC_VECTOR,
        );
    }

    pub(crate) const TOPIC_VECTOR: &str = "6c44aff98a0ca8a17623248ee387bc5acaa7c961";
}
