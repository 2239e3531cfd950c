//! Why `dhtmeet webrtc` stopped, each case saying what to do about it.

use std::net::SocketAddr;
use std::path::PathBuf;

use dhtmeet_core::stun::StunConfigError;
use dhtmeet_core::webrtc::{PeerError, SignalError};

/// Why `dhtmeet webrtc offer|answer` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebrtcError {
    /// The local address cannot be bound.
    #[error("cannot listen on {addr}: {source} (give another --listen address)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A STUN server name did not resolve.
    #[error("{0} (check --stun / STUN_SERVERS)")]
    ResolveStun(std::io::Error),
    /// The STUN client refused its settings.
    #[error("STUN: {0}")]
    StunConfig(StunConfigError),
    /// No seed for the connection's keys and ICE credentials.
    #[error("no OS randomness: {0}")]
    Randomness(std::io::Error),
    /// The socket failed while running.
    #[error("socket error: {0}")]
    Socket(std::io::Error),
    /// Our own offer could not be made.
    #[error("cannot make an offer: {0}")]
    Offer(PeerError),
    /// The peer's offer is not one we can answer.
    #[error("cannot answer this offer: {0}")]
    BadOffer(PeerError),
    /// The peer's answer is not usable; the connection is closed.
    #[error("cannot use this answer: {0}")]
    BadAnswer(PeerError),
    /// Stdin ended (or Ctrl-C) before an offer came.
    #[error("no offer given: paste it on stdin or give --offer FILE")]
    NoOffer,
    /// The `--offer` file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadSignalFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The `--offer` file holds no offer (`error`: why its first bad line is not a
    /// signal).
    #[error("{}: {}", path.display(), match error {
        Some(e) => e.to_string(),
        None => "no offer in the file".to_owned(),
    })]
    NoOfferInFile {
        path: PathBuf,
        error: Option<SignalError>,
    },
    /// `--out` cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteSignalFile {
        path: PathBuf,
        source: std::io::Error,
    },
}
