//! `dhtmeet stun-server`: answer Binding requests until stopped.

use std::convert::Infallible;
use std::io::Write;
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

pub(crate) async fn run(args: Args) -> Result<(), String> {
    let socket = UdpSocket::bind(args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let mut driver = Driver::new(socket, BindingServer::new()).map_err(|e| e.to_string())?;
    // One ready line on stdout, flushed, so scripts and tests learn the bound port.
    println!("stun-server listening on {}", driver.local_addr());
    let _ = std::io::stdout().flush();
    serve(&mut driver).await
}

/// Serves until a socket error; a responder has no events.
pub(crate) async fn serve(driver: &mut Driver<BindingServer>) -> Result<(), String> {
    let ran = driver.run(None, |_, never: Infallible| -> ControlFlow<()> {
        match never {}
    });
    match ran.await {
        // No deadline and no events: `run` only returns on a socket error.
        Ok(_) => Err("the STUN server stopped".into()),
        Err(e) => Err(format!("socket error: {e}")),
    }
}
