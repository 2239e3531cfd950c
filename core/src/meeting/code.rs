//! Invitation codes: generated with 96 bits from the seeded RNG (80 of entropy plus a
//! 16-bit check), written as six pronounceable five-letter words that a person can read
//! aloud: `lusab-babad-gutih-tugad-mudof-rapin`.
//!
//! Each word encodes 16 bits as consonant–vowel–consonant–vowel–consonant (16 consonants,
//! 4 vowels: 4 + 2 + 4 + 2 + 4 bits). The first five words are the secret; the sixth is a
//! check over them, so a mistyped generated code is caught before anyone joins the wrong
//! meeting. Codes a person makes up are accepted too, but their strength is estimated and
//! weak ones are refused unless explicitly allowed (see `docs/meetings.md`).

use rand_core::Rng as _;
use sha2::{Digest, Sha256};

use crate::dht::normalize_code;
use crate::seed::Rng;

const CONSONANTS: &[u8; 16] = b"bdfghjklmnprstvz";
const VOWELS: &[u8; 4] = b"aiou";
/// Words of entropy in a generated code.
pub const SECRET_WORDS: usize = 5;
/// Entropy of a generated code, in bits.
pub const GENERATED_BITS: u32 = 16 * SECRET_WORDS as u32;
/// Estimated bits below which a typed code is refused unless allowed explicitly.
pub const MIN_BITS: u32 = 40;
/// Estimated bits below which a typed code is accepted with a loud warning.
pub const RECOMMENDED_BITS: u32 = 80;

/// How strong a code is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeStrength {
    /// A code in our generated format with a valid check word: 80 bits.
    Generated,
    /// A code a person typed: an estimate (an upper bound) of its entropy.
    Custom {
        /// Estimated bits.
        estimated_bits: u32,
    },
}

impl CodeStrength {
    /// The entropy in bits (exact for generated codes, an upper bound otherwise).
    pub fn bits(self) -> u32 {
        match self {
            CodeStrength::Generated => GENERATED_BITS,
            CodeStrength::Custom { estimated_bits } => estimated_bits,
        }
    }
}

/// Why a code is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Nothing but separators.
    #[error("the meeting code is empty")]
    Empty,
    /// It looks like a generated code but its check word is wrong: a typo.
    #[error("the meeting code looks mistyped: its last word does not match the others")]
    BadCheckWord,
    /// Too weak to protect a meeting against offline guessing.
    #[error(
        "the meeting code is too weak (about {0} bits; at least {MIN_BITS} are needed, {RECOMMENDED_BITS} recommended): use a generated code"
    )]
    TooWeak(u32),
}

fn word(bits: u16) -> [u8; 5] {
    let c = |shift: u16| CONSONANTS[usize::from((bits >> shift) & 0xF)];
    let v = |shift: u16| VOWELS[usize::from((bits >> shift) & 0x3)];
    [c(12), v(10), c(6), v(4), c(0)]
}

fn parse_word(w: &[u8]) -> Option<u16> {
    let c = |b: u8| CONSONANTS.iter().position(|&x| x == b).map(|p| p as u16);
    let v = |b: u8| VOWELS.iter().position(|&x| x == b).map(|p| p as u16);
    match w {
        [a, b, d, e, f] => {
            Some((c(*a)? << 12) | (v(*b)? << 10) | (c(*d)? << 6) | (v(*e)? << 4) | c(*f)?)
        }
        _ => None,
    }
}

fn check_word(secret: &[u16]) -> u16 {
    let mut h = Sha256::new();
    h.update(b"dhtmeet/code-check/v1\0");
    for w in secret {
        h.update(w.to_be_bytes());
    }
    let d = h.finalize();
    u16::from_be_bytes([d[0], d[1]])
}

/// A new invitation code from `rng` (the runtime seeds it from the OS).
pub fn generate(rng: &mut Rng) -> String {
    let mut secret = [0u16; SECRET_WORDS];
    for w in &mut secret {
        *w = (rng.next_u32() & 0xFFFF) as u16;
    }
    let mut words: Vec<String> = secret
        .iter()
        .map(|w| String::from_utf8_lossy(&word(*w)).into_owned())
        .collect();
    words.push(String::from_utf8_lossy(&word(check_word(&secret))).into_owned());
    words.join("-")
}

/// Judges a code: generated (check word valid), mistyped generated, or custom with an
/// estimated strength. Refuses empty, mistyped and (unless `allow_weak`) weak codes.
pub fn check(code: &str, allow_weak: bool) -> Result<CodeStrength, CodeError> {
    let normal = normalize_code(code);
    if normal.is_empty() {
        return Err(CodeError::Empty);
    }
    let parsed: Option<Vec<u16>> = normal
        .split('-')
        .map(|w| parse_word(w.as_bytes()))
        .collect();
    if let Some(words) = parsed {
        if words.len() == SECRET_WORDS + 1 {
            let (secret, check) = words.split_at(SECRET_WORDS);
            return if check[0] == check_word(secret) {
                Ok(CodeStrength::Generated)
            } else {
                Err(CodeError::BadCheckWord)
            };
        }
    }
    let bits = estimate_bits(&normal);
    if bits < MIN_BITS && !allow_weak {
        return Err(CodeError::TooWeak(bits));
    }
    Ok(CodeStrength::Custom {
        estimated_bits: bits,
    })
}

/// An upper-bound estimate of a typed code's entropy: its length times the bits of the
/// smallest character pool that contains it, with repeated characters counted once
/// per distinct character beyond the first few. Real human choices are weaker; the
/// estimate only ever errs towards accepting, so the refusal threshold is low and the
/// warning threshold high.
pub fn estimate_bits(normal: &str) -> u32 {
    let chars: Vec<char> = normal.chars().filter(|c| *c != '-').collect();
    if chars.is_empty() {
        return 0;
    }
    let mut pool = 0u32;
    if chars.iter().any(|c| c.is_ascii_lowercase()) {
        pool += 26;
    }
    if chars.iter().any(|c| c.is_ascii_digit()) {
        pool += 10;
    }
    if chars.iter().any(|c| !c.is_ascii_alphanumeric()) {
        pool += 33;
    }
    let mut distinct: Vec<char> = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    // "aaaaaaaaaaaa" is not 12 characters of entropy.
    let effective = chars.len().min(distinct.len() * 2) as f64;
    let bits = effective * f64::from(pool.max(2)).log2();
    bits.floor() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Seed;

    #[test]
    fn generated_codes_are_six_pronounceable_words_and_check_out() {
        let mut rng = Seed::from_u64(1).rng();
        for _ in 0..200 {
            let code = generate(&mut rng);
            let words: Vec<&str> = code.split('-').collect();
            assert_eq!(words.len(), 6, "{code}");
            assert!(words.iter().all(|w| w.len() == 5), "{code}");
            assert_eq!(check(&code, false), Ok(CodeStrength::Generated), "{code}");
            assert_eq!(
                check(&code.to_uppercase().replace('-', " "), false),
                Ok(CodeStrength::Generated)
            );
        }
        assert_ne!(
            generate(&mut Seed::from_u64(1).rng()),
            generate(&mut Seed::from_u64(2).rng())
        );
    }

    #[test]
    fn every_word_round_trips() {
        for bits in 0..=u16::MAX {
            assert_eq!(parse_word(&word(bits)), Some(bits));
        }
    }

    #[test]
    fn a_typo_in_a_generated_code_is_caught() {
        let code = generate(&mut Seed::from_u64(3).rng());
        let mut typo = code.clone().into_bytes();
        // Swap one consonant for another in the second word.
        let at = 6;
        typo[at] = if typo[at] == b'b' { b'd' } else { b'b' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(
            check(&typo, false),
            Err(CodeError::BadCheckWord),
            "{code} → {typo}"
        );
    }

    #[test]
    fn weak_typed_codes_are_refused_unless_allowed() {
        assert_eq!(check("  - ", false), Err(CodeError::Empty));
        assert!(matches!(check("1234", false), Err(CodeError::TooWeak(_))));
        assert!(matches!(
            check("aaaaaaaaaaaaaaaaaaaa", false),
            Err(CodeError::TooWeak(_))
        ));
        assert!(matches!(
            check("password", false),
            Err(CodeError::TooWeak(_))
        ));
        assert!(matches!(
            check("1234", true),
            Ok(CodeStrength::Custom { .. })
        ));
        let long = check("purple-elephant-dances-under-seven-moons-42", false).unwrap();
        assert!(long.bits() >= MIN_BITS, "{long:?}");
    }
}
