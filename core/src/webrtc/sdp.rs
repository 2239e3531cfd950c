//! A first pass over a remote SDP, before str0m parses it: bounds the input, checks what
//! a data-channel session needs (an application m-line, ICE credentials, a fingerprint
//! str0m can verify, a DTLS role), and removes what real stacks send that str0m would
//! misread or cannot use, with a clear log line for each:
//!
//! * several `a=fingerprint` lines (sha-1/224/256/384/512): every line must be
//!   well-formed; the sha-256 one is kept (str0m verifies sha-256 and sha-1 only);
//! * mDNS host candidates (`<uuid>.local`): skipped, never resolved (a sans-IO core does
//!   no name resolution, and a browser hides its address this way only when it has a
//!   better candidate or none is reachable anyway);
//! * TCP candidates, candidates of other components, unparsable candidates: skipped;
//! * `a=max-message-size:0` ("no limit", RFC 8841 §6) becomes our own bound;
//! * `a=end-of-candidates` is noted.
//!
//! IPv6 candidates and `a=setup:actpass|active|passive` pass through; `holdconn` and
//! unknown roles are refused. Nothing here panics, whatever the text.

use std::net::{IpAddr, SocketAddr};

use str0m::Candidate;

use super::MAX_MESSAGE_SIZE;

/// The longest SDP accepted, in bytes.
pub const MAX_SDP_LEN: usize = 32 * 1024;
/// The most lines an SDP may have.
pub const MAX_SDP_LINES: usize = 512;
/// At most this many remote candidates are kept (from the SDP and trickled together).
pub const MAX_SDP_CANDIDATES: usize = 16;
/// The SDP attribute by which two dhtmeet peers agree to frame messages (both must send it).
pub const FRAMING_ATTRIBUTE: &str = "a=x-dhtmeet-framing:1";
/// `a=max-message-size` when the SDP has none (RFC 8841 §6.1).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Why a remote SDP was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Longer than [`MAX_SDP_LEN`] or [`MAX_SDP_LINES`].
    #[error("SDP too long")]
    TooLong,
    /// Does not start with `v=0`, or has a line that is not `x=…`.
    #[error("not an SDP description")]
    NotSdp,
    /// No `m=application … webrtc-datachannel` line with a non-zero port.
    #[error("the SDP has no data channel (m=application … webrtc-datachannel)")]
    NoDataChannel,
    /// No `a=ice-ufrag` or `a=ice-pwd`.
    #[error("the SDP has no ICE credentials (a=ice-ufrag, a=ice-pwd)")]
    MissingIceCredentials,
    /// No `a=fingerprint`.
    #[error("the SDP has no DTLS fingerprint (a=fingerprint)")]
    MissingFingerprint,
    /// An `a=fingerprint` line that is not `hash-func XX:XX:…` of the right length.
    #[error("malformed a=fingerprint line")]
    BadFingerprint,
    /// Fingerprints, but none in sha-256 (sha-1 is refused as too weak).
    #[error("no sha-256 DTLS fingerprint (only sha-256 can be verified)")]
    UnsupportedFingerprint,
    /// Two different sha-256 fingerprints: one certificate has one.
    #[error("conflicting sha-256 fingerprints")]
    ConflictingFingerprints,
    /// `a=setup` other than `actpass`, `active` or `passive`, or two that disagree.
    #[error("unsupported DTLS role (a=setup must be actpass, active or passive)")]
    UnsupportedSetup,
    /// str0m could not parse the description.
    #[error("the SDP could not be parsed")]
    Unparsable,
}

/// The DTLS role an SDP announces (RFC 5763 §5, `a=setup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Either (offers).
    ActPass,
    /// The sender is the DTLS client.
    Active,
    /// The sender is the DTLS server.
    Passive,
}

/// What the first pass learned, and the SDP to hand to str0m.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSdp {
    /// The description without the lines str0m should not see, CRLF line ends.
    pub cleaned: String,
    /// `a=setup`, if present.
    pub setup: Option<Setup>,
    /// The ICE ufrag.
    pub ufrag: String,
    /// The largest message the sender accepts.
    pub max_message_size: usize,
    /// The sender is a dhtmeet peer that frames messages ([`FRAMING_ATTRIBUTE`]).
    pub framing: bool,
    /// The UDP candidates kept.
    pub candidates: Vec<SocketAddr>,
    /// mDNS (`.local`) candidates skipped.
    pub skipped_mdns: usize,
    /// Other candidates skipped (TCP, other components, unparsable, beyond the bound).
    pub skipped_other: usize,
    /// `a=end-of-candidates` was present.
    pub end_of_candidates: bool,
}

/// What became of one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateCheck {
    /// A UDP candidate of component 1 that str0m parses.
    Usable(Box<Candidate>),
    /// An mDNS name (`….local`): skipped.
    Mdns,
    /// TCP, another component, or an unparsable line: skipped.
    Unusable,
}

/// Checks one `candidate:…` attribute value (without `a=`).
pub fn check_candidate(value: &str) -> CandidateCheck {
    let fields: Vec<&str> = value.split_ascii_whitespace().take(8).collect();
    // candidate:foundation component transport priority address port typ kind
    if fields.len() < 8 || fields[6] != "typ" {
        return CandidateCheck::Unusable;
    }
    if fields[4].to_ascii_lowercase().ends_with(".local") {
        return CandidateCheck::Mdns;
    }
    if fields[1] != "1" || !fields[2].eq_ignore_ascii_case("udp") {
        return CandidateCheck::Unusable;
    }
    if fields[4].parse::<IpAddr>().is_err() {
        return CandidateCheck::Unusable;
    }
    match Candidate::from_sdp_string(value) {
        Ok(c) => CandidateCheck::Usable(Box::new(c)),
        Err(_) => CandidateCheck::Unusable,
    }
}

/// A fingerprint line's hash function and digest length in bytes (RFC 8122 §5).
fn digest_len(hash_func: &str) -> Option<usize> {
    match hash_func.to_ascii_lowercase().as_str() {
        "sha-1" => Some(20),
        "sha-224" => Some(28),
        "sha-256" => Some(32),
        "sha-384" => Some(48),
        "sha-512" => Some(64),
        _ => None,
    }
}

/// Parses `sha-256 AB:CD:…` into the hash function and the digest.
fn parse_fingerprint(value: &str) -> Result<(String, Vec<u8>), SdpError> {
    let mut parts = value.split_ascii_whitespace();
    let (Some(func), Some(hex), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SdpError::BadFingerprint);
    };
    let mut digest = Vec::with_capacity(64);
    for pair in hex.split(':') {
        if pair.len() != 2 {
            return Err(SdpError::BadFingerprint);
        }
        digest.push(u8::from_str_radix(pair, 16).map_err(|_| SdpError::BadFingerprint)?);
    }
    // An unknown hash function is tolerated (and ignored) as long as it is well-formed.
    if digest_len(func).is_some_and(|n| n != digest.len()) || digest.is_empty() {
        return Err(SdpError::BadFingerprint);
    }
    Ok((func.to_ascii_lowercase(), digest))
}

/// The first pass over a remote SDP (see the module docs).
pub fn inspect(sdp: &str) -> Result<RemoteSdp, SdpError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLong);
    }
    let lines: Vec<&str> = sdp
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > MAX_SDP_LINES {
        return Err(SdpError::TooLong);
    }
    if lines.first() != Some(&"v=0") {
        return Err(SdpError::NotSdp);
    }
    let mut cleaned = String::with_capacity(sdp.len() + 32);
    let mut setup = None;
    let mut ufrag = None;
    let mut pwd = false;
    let mut data_channel = false;
    let mut max_message_size = None;
    let mut framing = false;
    let mut candidates = Vec::new();
    let (mut skipped_mdns, mut skipped_other) = (0, 0);
    let mut end_of_candidates = false;
    let mut sha256: Option<Vec<u8>> = None;
    let mut any_fingerprint = false;

    for line in lines {
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(SdpError::NotSdp);
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(SdpError::NotSdp);
        }
        let mut keep = true;
        if let Some(m) = line.strip_prefix("m=") {
            let f: Vec<&str> = m.split_ascii_whitespace().collect();
            if f.len() >= 4
                && f[0] == "application"
                && f[1] != "0"
                && f[2].contains("DTLS/SCTP")
                && f[3..].contains(&"webrtc-datachannel")
            {
                data_channel = true;
            }
        } else if let Some(v) = line.strip_prefix("a=fingerprint:") {
            let (func, digest) = parse_fingerprint(v)?;
            any_fingerprint = true;
            keep = false;
            if func == "sha-256" {
                match &sha256 {
                    Some(d) if *d != digest => return Err(SdpError::ConflictingFingerprints),
                    Some(_) => {}
                    None => {
                        sha256 = Some(digest);
                        keep = true;
                    }
                }
            }
        } else if let Some(v) = line.strip_prefix("a=setup:") {
            let s = match v.trim() {
                "actpass" => Setup::ActPass,
                "active" => Setup::Active,
                "passive" => Setup::Passive,
                _ => return Err(SdpError::UnsupportedSetup),
            };
            if setup.is_some_and(|old| old != s) {
                return Err(SdpError::UnsupportedSetup);
            }
            setup = Some(s);
        } else if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
            ufrag = Some(v.trim().to_owned());
        } else if line.starts_with("a=ice-pwd:") {
            pwd = true;
        } else if let Some(v) = line.strip_prefix("a=max-message-size:") {
            match v.trim().parse::<u64>() {
                Ok(0) => {
                    max_message_size = Some(MAX_MESSAGE_SIZE);
                    cleaned.push_str(&format!("a=max-message-size:{MAX_MESSAGE_SIZE}\r\n"));
                    keep = false;
                }
                Ok(n) => max_message_size = Some((n as usize).min(MAX_MESSAGE_SIZE)),
                Err(_) => {
                    tracing::debug!(line, "ignoring a malformed a=max-message-size");
                    keep = false;
                }
            }
        } else if line == FRAMING_ATTRIBUTE {
            framing = true;
            keep = false;
        } else if line == "a=end-of-candidates" {
            end_of_candidates = true;
        } else if let Some(v) = line.strip_prefix("a=") {
            if v.starts_with("candidate:") {
                keep = false;
                match check_candidate(v) {
                    CandidateCheck::Usable(c) if candidates.len() < MAX_SDP_CANDIDATES => {
                        candidates.push(c.addr());
                        keep = true;
                    }
                    CandidateCheck::Mdns => {
                        skipped_mdns += 1;
                        tracing::warn!(
                            candidate = v,
                            "skipping an mDNS (.local) candidate: names are not resolved; \
                             start the browser with mDNS candidates off to use its host address"
                        );
                    }
                    _ => {
                        skipped_other += 1;
                        tracing::debug!(candidate = v, "skipping an unusable or surplus candidate");
                    }
                }
            }
        }
        if keep {
            cleaned.push_str(line);
            cleaned.push_str("\r\n");
        }
    }
    if !data_channel {
        return Err(SdpError::NoDataChannel);
    }
    let (Some(ufrag), true) = (ufrag, pwd) else {
        return Err(SdpError::MissingIceCredentials);
    };
    if sha256.is_none() {
        return Err(if any_fingerprint {
            SdpError::UnsupportedFingerprint
        } else {
            SdpError::MissingFingerprint
        });
    }
    Ok(RemoteSdp {
        cleaned,
        setup,
        ufrag,
        max_message_size: max_message_size.unwrap_or(DEFAULT_MAX_MESSAGE_SIZE),
        framing,
        candidates,
        skipped_mdns,
        skipped_other,
        end_of_candidates,
    })
}

#[cfg(test)]
#[path = "sdp_tests.rs"]
mod tests;
