//! `dhtmeet demo`: the offline main job. Two STUN servers run in this process on
//! loopback; a client asks both and reports its address and the mapping type, as
//! `dhtmeet stun` would on the Internet. Nothing leaves the machine.

use std::net::UdpSocket;
use std::time::Duration;

use dhtmeet_core::stun::BindingServer;
use dhtmeet_smol::Driver;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: Args) -> Result<(), String> {
    let mut servers = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let socket =
            UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("cannot bind loopback: {e}"))?;
        let mut driver = Driver::new(socket, BindingServer::new()).map_err(|e| e.to_string())?;
        servers.push(driver.local_addr());
        tasks.push(smol::spawn(async move {
            crate::stun_server::serve(&mut driver).await
        }));
    }
    if !args.json {
        eprintln!("demo: STUN servers on {} and {}", servers[0], servers[1]);
    }
    let discovered = crate::stun::discover(
        servers,
        Some("127.0.0.1:0".parse().expect("literal")),
        Duration::from_secs(5),
    );
    // The servers run on smol's executor threads while the client awaits its answer.
    let (report, local) = discovered.await?;
    drop(tasks);
    if args.json {
        println!("{}", crate::stun::report_json(&report, local));
    } else {
        println!("local address:  {local}");
        println!(
            "public address: {} (from {}, {:.2} ms)",
            report.first.mapped,
            report.first.server,
            report.first.rtt.as_secs_f64() * 1000.0
        );
        println!(
            "mapping:        {} ({} servers answered)",
            report.mapping.as_str(),
            report.observations.len()
        );
        println!("ok: STUN round trip on loopback");
    }
    Ok(())
}
