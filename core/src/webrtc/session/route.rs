//! Routing advice: which session a datagram belongs to.
//!
//! str0m's own `Rtc::accepts` is a linear scan and refuses the first DTLS datagram from
//! a peer-reflexive address, so the meeting layer routes itself, in two maps:
//!
//! * a STUN binding request names its recipient in USERNAME (`recipient:sender`,
//!   RFC 8445 §7.2.2): [`ice_username_recipient`] gives the recipient's ufrag, which
//!   is one of our sessions' [`Session::ufrag`](super::Session::ufrag);
//! * everything else (STUN responses, DTLS) is routed by the remote address, which a
//!   session learns from the remote candidates and from the checks it receives
//!   ([`Session::accepts`](super::Session::accepts) answers for one session, from its
//!   [`RemoteAddrs`]).

use std::net::SocketAddr;

use str0m::Candidate;
use str0m::net::Protocol;

use super::types::{CandidateKind, IceCandidate};
use crate::stun::wire::{BINDING, Class, Message};

/// At most this many remote addresses are remembered for
/// [`Session::accepts`](super::Session::accepts).
pub const MAX_REMOTE_ADDRS: usize = 16;

/// RFC 8489 §14.3: USERNAME is at most 513 bytes.
const MAX_USERNAME: usize = 513;

/// The recipient's ufrag in the USERNAME of an ICE connectivity check (a STUN Binding
/// request), or `None` for anything else. Decoded by the core's one STUN decoder, so it
/// never panics, whatever the bytes.
pub fn ice_username_recipient(datagram: &[u8]) -> Option<&[u8]> {
    // RFC 7983: only 0–3 can start STUN. DTLS, the bulk of a session's datagrams, is
    // refused here without a decode attempt.
    if !matches!(datagram.first(), Some(0..=3)) {
        return None;
    }
    let msg = Message::decode(datagram).ok()?;
    if msg.class() != Class::Request || msg.method() != BINDING {
        return None;
    }
    let username = msg.username().filter(|u| u.len() <= MAX_USERNAME)?;
    let colon = username.iter().position(|&b| b == b':')?;
    Some(&username[..colon])
}

/// The peer's addresses a session knows: its signaled candidates and the sources of
/// the checks it sent us; at most [`MAX_REMOTE_ADDRS`].
#[derive(Debug, Default)]
pub(super) struct RemoteAddrs {
    addrs: Vec<SocketAddr>,
}

impl RemoteAddrs {
    /// Remembers `addr`, unless known already or the bound is reached.
    pub fn remember(&mut self, addr: SocketAddr) {
        if !self.addrs.contains(&addr) && self.addrs.len() < MAX_REMOTE_ADDRS {
            self.addrs.push(addr);
        }
    }

    pub fn contains(&self, addr: &SocketAddr) -> bool {
        self.addrs.contains(addr)
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }
}

/// A str0m candidate for a signaled remote candidate.
pub(super) fn remote_candidate(c: &IceCandidate) -> Option<Candidate> {
    match c.kind {
        CandidateKind::Host => Candidate::host(c.addr, Protocol::Udp).ok(),
        // The peer's base address is not signaled; str0m only uses it for priorities.
        CandidateKind::ServerReflexive => {
            Candidate::server_reflexive(c.addr, c.addr, Protocol::Udp).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
    const ATTR_USERNAME: u16 = 0x0006;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        // A PRIORITY attribute first, so the parser has to skip one.
        attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn finds_the_recipient_ufrag() {
        let m = binding_request(b"abcd1234:wxyz");
        assert_eq!(ice_username_recipient(&m), Some(&b"abcd1234"[..]));
        // A response (type 0x0101) is not routed by USERNAME.
        let mut r = m.clone();
        r[0] = 0x01;
        assert_eq!(ice_username_recipient(&r), None);
        assert_eq!(ice_username_recipient(&binding_request(b"nocolon")), None);
        assert_eq!(ice_username_recipient(&m[..m.len() - 3]), None);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        fn prop(mut bytes: Vec<u8>, as_stun: bool) -> bool {
            if as_stun && bytes.len() >= 20 {
                bytes[0..2].copy_from_slice(&BINDING_REQUEST);
                bytes[4..8].copy_from_slice(&MAGIC_COOKIE);
            }
            let _ = ice_username_recipient(&bytes);
            true
        }
        quickcheck::quickcheck(prop as fn(Vec<u8>, bool) -> bool);
    }
}
