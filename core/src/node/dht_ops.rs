//! The DHT operations an embedder may want besides a meeting: lookups and announces,
//! through the node (there is no mutable access to its DHT).

use std::time::Instant;

use super::{LookupError, Node};
use crate::dht::{Dht, InfoHash, LookupId, NodeId};

impl Node {
    /// Starts a DHT get_peers lookup for `info_hash`; its peers arrive as
    /// [`Event::PeersFound`] and its end as [`Event::LookupDone`] with this id.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use dhtmeet_core::{Node, NodeConfig, Seed};
    /// # let mut config = NodeConfig::new(Seed::from_u64(1));
    /// # config.local_addr = Some("198.51.100.7:4000".parse().unwrap());
    /// # let mut node = Node::new(Instant::now(), config).unwrap();
    /// let topic = dhtmeet_core::InfoHash([7; 20]);
    /// let lookup = node.get_peers(Instant::now(), topic)?;
    /// // … drive the node; then Event::LookupDone(summary) with summary.id == lookup.
    /// # Ok::<(), dhtmeet_core::LookupError>(())
    /// ```
    pub fn get_peers(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
    ) -> Result<LookupId, LookupError> {
        self.dht_call(now, |dht, now| dht.get_peers(now, info_hash))
    }

    /// Starts a DHT get_peers lookup and then announces us under `info_hash` to the k
    /// closest nodes; `port: None` announces our socket's port as the NAT maps it
    /// (`implied_port`).
    pub fn announce(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        port: Option<u16>,
    ) -> Result<LookupId, LookupError> {
        self.dht_call(now, |dht, now| dht.announce(now, info_hash, port))
    }

    /// Starts a DHT find_node lookup for `target`.
    pub fn find_node(&mut self, now: Instant, target: NodeId) -> Result<LookupId, LookupError> {
        self.dht_call(now, |dht, now| dht.find_node(now, target))
    }

    fn dht_call<T>(
        &mut self,
        now: Instant,
        call: impl FnOnce(&mut Dht, Instant) -> Result<T, crate::dht::DhtError>,
    ) -> Result<T, LookupError> {
        self.advance(now);
        let dht = self.dht.as_mut().ok_or(LookupError::NoDht)?;
        let started = call(dht, self.now)?;
        self.collect();
        Ok(started)
    }
}
