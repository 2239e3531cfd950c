//! What an invitation code derives: the DHT topic and the signaling key. Each derivation
//! has its own domain-separation label, so one output tells nothing about the other.
//!
//! Anyone who sees the topic in the DHT, or one signaling message, can test guesses of
//! the code offline: a meeting is exactly as safe as its code is hard to guess. Generated
//! codes carry 80 bits (see `code.rs`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::dht::{InfoHash, meeting_topic, normalize_code};

/// The HMAC key label for the signaling key.
const SIGNALING_LABEL: &[u8] = b"dhtmeet/signaling/v1";

/// The keys of one meeting.
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingKeys {
    /// The DHT info-hash members announce and look up.
    pub topic: InfoHash,
    /// The key that authenticates signaling between members.
    pub signaling: [u8; 32],
}

impl std::fmt::Debug for MeetingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the signaling key.
        f.debug_struct("MeetingKeys")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl MeetingKeys {
    /// Derives the meeting's keys from its invitation code:
    /// `topic = SHA-256("dhtmeet/topic/v1\0" || code)[..20]` and
    /// `signaling = HMAC-SHA256(key = "dhtmeet/signaling/v1", code)`, over the normalized
    /// code.
    pub fn derive(code: &str) -> Self {
        let normal = normalize_code(code);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SIGNALING_LABEL)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(normal.as_bytes());
        let signaling: [u8; 32] = mac.finalize().into_bytes().into();
        MeetingKeys {
            topic: meeting_topic(&normal),
            signaling,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_normalized_code_and_differ_per_purpose() {
        let a = MeetingKeys::derive("Correct Horse battery_staple");
        let b = MeetingKeys::derive("correct-horse-battery-staple");
        assert_eq!(a, b);
        assert_ne!(a.signaling[..20], a.topic.0[..]);
        assert_ne!(MeetingKeys::derive("correct-horse-battery-stapler"), a);
        let shown = format!("{a:?}");
        let key_hex: String = a.signaling.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !shown.contains(&key_hex[..8]),
            "the key must not be printed: {shown}"
        );
    }

    /// The test vector published in docs/PROTOCOL.md (computed independently there).
    #[test]
    fn signaling_key_test_vector() {
        let k = MeetingKeys::derive("correct-horse-battery-staple");
        let hex: String = k.signaling.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, SIGNALING_VECTOR);
        assert_eq!(
            k.topic.to_string(),
            "6c44aff98a0ca8a17623248ee387bc5acaa7c961"
        );
    }

    const SIGNALING_VECTOR: &str =
        "6f3c731062c6b686aa0bd3fd619b9b9c76f75f88e4cb4dcf0f6bafa851205143";
}
