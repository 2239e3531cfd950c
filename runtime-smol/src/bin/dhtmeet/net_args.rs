//! The network options several subcommands share: which STUN servers and DHT nodes to
//! use and where to listen, turned into a runtime [`Config`]; and how `none` and
//! `STUN_SERVERS` are read, the same for every subcommand.
//!
//! `STUN_SERVERS` set but empty (or only commas and spaces) is the same as unset, and a
//! note on stderr says so: a script that passes an unset variable through gets the
//! defaults, not a silent "no STUN". `none` (`--stun none`, `STUN_SERVERS=none`,
//! `--bootstrap none`) is the way to say "none".

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
        match stun_servers(&self.stun) {
            StunServers::Default => {}
            StunServers::None => config.stun_servers.clear(),
            StunServers::Given(given) => config.stun_servers = given,
        }
        match bootstrap_nodes(&self.bootstrap) {
            Bootstrap::Default => eprintln!(
                "note: bootstrapping from the public Mainline routers (give --bootstrap to use your own)"
            ),
            Bootstrap::None => config.bootstrap.clear(),
            Bootstrap::Given(given) => config.bootstrap = given,
        }
        config
    }
}

/// STUN servers as the user gave them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StunServers {
    /// Neither `--stun` nor `STUN_SERVERS` (or it is empty): the subcommand's default.
    Default,
    /// `none`: no STUN.
    None,
    /// These servers (host:port, host, ip:port).
    Given(Vec<String>),
}

/// The STUN servers of the command line (`args`, comma-separated), else of
/// `STUN_SERVERS`; prints a note when `STUN_SERVERS` is set but empty.
pub(crate) fn stun_servers(args: &[String]) -> StunServers {
    let env = std::env::var("STUN_SERVERS").ok();
    let (servers, empty_env) = stun_servers_from(args, env.as_deref());
    if empty_env {
        eprintln!(
            "note: STUN_SERVERS is empty: treated as unset (STUN_SERVERS=none means no STUN)"
        );
    }
    servers
}

/// [`stun_servers`] without the environment: the servers, and whether `env` was
/// consulted and found empty.
fn stun_servers_from(args: &[String], env: Option<&str>) -> (StunServers, bool) {
    let list = |items: &mut dyn Iterator<Item = &str>| -> Vec<String> {
        items
            .flat_map(|a| a.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let given = list(&mut args.iter().map(String::as_str));
    let (given, empty_env) = match (given.is_empty(), env) {
        (false, _) => (given, false),
        (true, Some(env)) => {
            let from_env = list(&mut std::iter::once(env));
            let empty = from_env.is_empty();
            (from_env, empty)
        }
        (true, None) => (given, false),
    };
    let servers = match given.as_slice() {
        [] => StunServers::Default,
        [none] if none.eq_ignore_ascii_case("none") => StunServers::None,
        _ => StunServers::Given(given),
    };
    (servers, empty_env)
}

/// DHT bootstrap nodes as the user gave them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bootstrap {
    /// No `--bootstrap`: the subcommand's default.
    Default,
    /// `--bootstrap none`: a new network.
    None,
    /// These nodes (host:port, host, ip:port).
    Given(Vec<String>),
}

/// Reads a `--bootstrap` list (already split at commas).
pub(crate) fn bootstrap_nodes(args: &[String]) -> Bootstrap {
    let given: Vec<String> = args
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    match given.as_slice() {
        [] => Bootstrap::Default,
        [none] if none.eq_ignore_ascii_case("none") => Bootstrap::None,
        _ => Bootstrap::Given(given),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_empty_stun_servers_is_unset_and_noted() {
        assert_eq!(stun_servers_from(&[], None), (StunServers::Default, false));
        for empty in ["", " ", " , ,"] {
            assert_eq!(
                stun_servers_from(&[], Some(empty)),
                (StunServers::Default, true)
            );
        }
        assert_eq!(
            stun_servers_from(&[], Some("none")),
            (StunServers::None, false)
        );
        assert_eq!(
            stun_servers_from(&[], Some(" a:1 , b ")),
            (StunServers::Given(strings(&["a:1", "b"])), false)
        );
        // The command line wins, and then the environment is not read.
        assert_eq!(
            stun_servers_from(&strings(&["c:3,d"]), Some("")),
            (StunServers::Given(strings(&["c:3", "d"])), false)
        );
        assert_eq!(
            stun_servers_from(&strings(&["none"]), Some("a:1")),
            (StunServers::None, false)
        );
    }

    #[test]
    fn bootstrap_none_is_a_new_network() {
        assert_eq!(bootstrap_nodes(&[]), Bootstrap::Default);
        assert_eq!(bootstrap_nodes(&strings(&["none"])), Bootstrap::None);
        assert_eq!(
            bootstrap_nodes(&strings(&["a:1", "b"])),
            Bootstrap::Given(strings(&["a:1", "b"]))
        );
    }
}
