//! `dhtmeet stun-server`: answer Binding requests until stopped.

use std::convert::Infallible;
use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;

use dhtmeet_core::stun::BindingServer;
use dhtmeet_smol::Driver;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on, e.g. 127.0.0.1:3478 (port 0 picks a free port).
    #[arg(long)]
    listen: SocketAddr,
}

/// Why `dhtmeet stun-server` stopped, each case saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StunServerError {
    /// The listen address cannot be bound.
    #[error(
        "cannot listen on {addr}: {source} (give another --listen address, or port 0 for a free one)"
    )]
    Listen { addr: SocketAddr, source: io::Error },
    /// The bound socket could not be set up for the driver.
    #[error("cannot set up the socket on {addr}: {source}")]
    Setup { addr: SocketAddr, source: io::Error },
    /// The socket failed while serving.
    #[error("socket error: {0} (start the server again)")]
    Socket(io::Error),
    /// The driver returned without an error (it only does on a socket error).
    #[error("the STUN server stopped (start it again)")]
    Stopped,
}

pub(crate) async fn run(args: Args) -> Result<(), StunServerError> {
    let addr = args.listen;
    let socket =
        UdpSocket::bind(addr).map_err(|source| StunServerError::Listen { addr, source })?;
    let mut driver = Driver::new(socket, BindingServer::new())
        .map_err(|source| StunServerError::Setup { addr, source })?;
    // One ready line on stdout, flushed, so scripts and tests learn the bound port.
    println!("stun-server listening on {}", driver.local_addr());
    let _ = std::io::stdout().flush();
    serve(&mut driver).await
}

/// Serves until a socket error; a responder has no events.
async fn serve(driver: &mut Driver<BindingServer>) -> Result<(), StunServerError> {
    let ran = driver.run(None, |_, never: Infallible| -> ControlFlow<()> {
        match never {}
    });
    match ran.await {
        // No deadline and no events: `run` only returns on a socket error.
        Ok(_) => Err(StunServerError::Stopped),
        Err(e) => Err(StunServerError::Socket(e)),
    }
}
