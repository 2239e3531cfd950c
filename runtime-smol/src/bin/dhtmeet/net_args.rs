//! The network options `join` and `status` share: which STUN servers and DHT nodes to
//! use and where to listen, turned into a runtime [`Config`].

use std::net::SocketAddr;

use dhtmeet_smol::Config;

#[derive(Debug, clap::Args)]
pub(crate) struct NetArgs {
    /// DHT nodes to bootstrap from (comma-separated host:port). Default: the public
    /// Mainline routers (the real Internet). `--bootstrap none` starts a new network.
    #[arg(long, value_delimiter = ',')]
    bootstrap: Vec<String>,
    /// STUN servers (comma-separated host:port; default: $STUN_SERVERS, else public
    /// servers). `--stun none`: no STUN (members on your own network only).
    #[arg(long, value_delimiter = ',')]
    stun: Vec<String>,
    /// Local address to bind (default: all interfaces, IPv4 and IPv6, a random port).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

impl NetArgs {
    /// The runtime configuration these options give (the Internet defaults for what is
    /// not given).
    pub(crate) fn config(&self) -> Config {
        let mut config = Config {
            listen: self.listen,
            ..Config::default()
        };
        match crate::servers_from_args_or_env(&self.stun).as_slice() {
            [] => {}
            [none] if none == "none" => config.stun_servers.clear(),
            given => config.stun_servers = given.to_vec(),
        }
        match self.bootstrap.as_slice() {
            [] => eprintln!(
                "note: bootstrapping from the public Mainline routers (give --bootstrap to use your own)"
            ),
            [none] if none == "none" => config.bootstrap.clear(),
            given => config.bootstrap = given.to_vec(),
        }
        config
    }
}
