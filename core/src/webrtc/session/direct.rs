//! The direct path (meetings): a [`Session`] made from a seed, whose parameters travel
//! in the meeting's own signaling instead of SDP; `set_remote` starts ICE, DTLS and
//! SCTP (with SNAP if both sides offer it) on str0m's direct API.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::channel::{ChannelConfig, Reliability, SctpInitData};
use str0m::config::{DtlsVersion, Fingerprint};
use str0m::ice::IceCreds;
use str0m::net::Protocol;
use str0m::{Candidate, Input};

use super::liveness::Phase;
use super::route::remote_candidate;
use super::sdp_path::MessageMode;
use super::{
    CandidateKind, DisconnectReason, DtlsChoice, ICE_CHARS, IceCandidate, MAX_REMOTE_CANDIDATES,
    NewSessionError, SeededRtc, Session, SessionConfig, SessionParameters, SetRemoteError,
};
use crate::Seed;

/// The SCTP stream id of the one pre-negotiated data channel.
const CHANNEL_STREAM_ID: u16 = 0;
/// Longest accepted remote ufrag or pwd, in bytes.
const MAX_CREDENTIAL_LEN: usize = 256;
/// Longest accepted remote SCTP INIT chunk (SNAP), in bytes.
const MAX_SCTP_INIT_LEN: usize = 512;

impl Session {
    /// A session on our socket address `local` (our host candidate). `controlling` is
    /// our ICE role; the controlling side is also the DTLS client and the SCTP client.
    /// ICE credentials derive from `seed`.
    pub fn new(
        now: Instant,
        config: SessionConfig,
        controlling: bool,
        local: SocketAddr,
        seed: Seed,
    ) -> Result<Session, NewSessionError> {
        config.validate()?;
        let dtls_version = match (controlling, config.dtls) {
            // The passive side follows the client's ClientHello.
            (false, _) => DtlsVersion::Auto,
            (true, DtlsChoice::Dtls12) => DtlsVersion::Dtls12,
            (true, DtlsChoice::Dtls13) => DtlsVersion::Dtls13,
        };
        let mut built = SeededRtc::build(now, &seed, "session", |c| {
            c.set_dtls_version(dtls_version)
                .set_sctp_max_buffered_amount(config.sctp_buffer)
        });
        let host =
            Candidate::host(local, Protocol::Udp).map_err(|_| NewSessionError::BadLocalAddress)?;
        built
            .rtc
            .call(|rtc| rtc.add_local_candidate(host).is_some());
        let snap_wanted = config.snap;
        let parts = built
            .into_parts(now, config, controlling, local)
            .ok_or(NewSessionError::Fingerprint)?;
        let (snap, sctp_init) = if snap_wanted {
            let mut data = SctpInitData::new();
            let init = data.local_init_chunk().map_err(|_| NewSessionError::Snap)?;
            (Some(data), Some(init))
        } else {
            (None, None)
        };
        let mut session = Session::assemble(parts, snap, sctp_init, false, MessageMode::Framed);
        // A new Rtc must be kicked at once, or it starts late (field notes).
        session.rtc_input(Input::Timeout(now));
        session.settle();
        Ok(session)
    }

    /// Adds one of our server-reflexive addresses (from STUN, or as DHT nodes saw us)
    /// as a candidate; call before sending [`Session::local_parameters`]. Returns
    /// `false` if str0m refused it (a duplicate, an unusable address).
    pub fn add_local_candidate(&mut self, addr: SocketAddr) -> bool {
        if self.liveness.is_closed() || self.local_params.candidates.len() >= MAX_REMOTE_CANDIDATES
        {
            return false;
        }
        let Ok(c) = Candidate::server_reflexive(addr, self.local, Protocol::Udp) else {
            return false;
        };
        let added = self.rtc.call(|rtc| rtc.add_local_candidate(c).is_some());
        self.settle();
        if added {
            self.local_params.candidates.push(IceCandidate {
                kind: CandidateKind::ServerReflexive,
                addr,
            });
        }
        added
    }

    /// Starts connecting to the peer described by `remote` (from its signaling).
    pub fn set_remote(&mut self, remote: &SessionParameters) -> Result<(), SetRemoteError> {
        match self.liveness.phase() {
            Phase::New => {}
            Phase::Closed => return Err(SetRemoteError::Closed),
            _ => return Err(SetRemoteError::AlreadySet),
        }
        let credential_ok = |s: &str, min: usize| {
            (min..=MAX_CREDENTIAL_LEN).contains(&s.len())
                && s.bytes().all(|b| ICE_CHARS.contains(&b))
        };
        if !credential_ok(&remote.ufrag, 4) || !credential_ok(&remote.pwd, 22) {
            return Err(SetRemoteError::BadCredentials);
        }
        if remote.candidates.is_empty() || remote.candidates.len() > MAX_REMOTE_CANDIDATES {
            return Err(SetRemoteError::BadCandidates);
        }
        let candidates = remote
            .candidates
            .iter()
            .map(|c| remote_candidate(c).ok_or(SetRemoteError::BadCandidates))
            .collect::<Result<Vec<_>, _>>()?;
        if remote
            .sctp_init
            .as_ref()
            .is_some_and(|i| i.len() > MAX_SCTP_INIT_LEN)
        {
            return Err(SetRemoteError::BadSctpInit);
        }
        let snap = match (self.snap.take(), &remote.sctp_init) {
            (Some(mut data), Some(init)) => {
                data.set_remote_init_chunk(init.clone());
                Some(data)
            }
            _ => None,
        };
        for c in &remote.candidates {
            self.remote_addrs.remember(c.addr);
        }
        let controlling = self.controlling;
        let creds = IceCreds {
            ufrag: remote.ufrag.clone(),
            pass: remote.pwd.clone(),
        };
        let fingerprint = Fingerprint {
            hash_func: "sha-256".into(),
            bytes: remote.fingerprint.to_vec(),
        };
        let started = self.rtc.call(move |rtc| {
            for c in candidates {
                rtc.add_remote_candidate(c);
            }
            let mut api = rtc.direct_api();
            api.set_ice_controlling(controlling);
            api.set_remote_ice_credentials(creds);
            api.set_remote_fingerprint(fingerprint);
            api.start_dtls(controlling)?;
            match snap {
                Some(data) => api.start_sctp_with_snap(controlling, data)?,
                None => api.start_sctp(controlling),
            }
            let channel = api.create_data_channel(ChannelConfig {
                label: "dhtmeet".into(),
                ordered: true,
                reliability: Reliability::Reliable,
                negotiated: Some(CHANNEL_STREAM_ID),
                protocol: String::new(),
            });
            Ok::<_, str0m::RtcError>(channel)
        });
        let channel = match started {
            Ok(c) => c,
            Err(_) => {
                self.close_with(DisconnectReason::HandshakeFailed);
                return Err(SetRemoteError::Start);
            }
        };
        self.channel = Some(channel);
        let now = self.now;
        self.liveness.start_connecting(now);
        self.rtc_input(Input::Timeout(now));
        self.settle();
        Ok(())
    }

    /// Adds a candidate the peer signaled later (trickle). The candidate is ignored if
    /// the session already holds [`MAX_REMOTE_CANDIDATES`] remote addresses.
    pub fn add_remote_candidate(&mut self, candidate: IceCandidate) -> Result<(), SetRemoteError> {
        if self.liveness.is_closed() {
            return Err(SetRemoteError::Closed);
        }
        let c = remote_candidate(&candidate).ok_or(SetRemoteError::BadCandidates)?;
        if self.remote_addrs.len() >= MAX_REMOTE_CANDIDATES {
            return Err(SetRemoteError::BadCandidates);
        }
        self.remote_addrs.remember(candidate.addr);
        self.rtc.call(|rtc| rtc.add_remote_candidate(c));
        self.settle();
        Ok(())
    }
}
