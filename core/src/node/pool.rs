//! The node's pool of extra sockets: what it asked the runtime for, and what is open.
//!
//! Port prediction needs many local ports at once (the birthday method opens up to
//! [`MAX_POOL_SOCKETS`]). The node asks the runtime with [`SocketCommand::Open`], the
//! runtime reports each socket bound ([`SansIo::handle_socket_opened`]) or not, and the
//! node closes them with [`SocketCommand::Close`] when the attempt is over. A pool socket
//! is known by its local port.
//!
//! [`SansIo::handle_socket_opened`]: crate::SansIo::handle_socket_opened

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;

use crate::transmit::{MAX_POOL_SOCKETS, SocketCommand};

/// Pool sockets asked for, open, and the commands not yet taken by the runtime.
#[derive(Debug, Default)]
pub(crate) struct SocketPool {
    commands: VecDeque<SocketCommand>,
    /// Asked for and not yet reported opened or failed.
    pending: usize,
    open: BTreeSet<u16>,
    /// Sockets reported that nobody asked for (closed at once).
    pub(crate) unsolicited: u64,
    /// Sockets the node asked for on its own (`Node::open_pool_sockets`, a runtime-test
    /// hook) and not yet reported: the node keeps these, meeting or not.
    kept: usize,
}

// `request` and `close` have no caller but the runtime-test hooks until port prediction.
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
impl SocketPool {
    /// Asks the runtime for up to `count` more sockets; returns how many were asked for
    /// (fewer when the pool would exceed [`MAX_POOL_SOCKETS`]).
    pub(crate) fn request(&mut self, count: usize) -> usize {
        let room = MAX_POOL_SOCKETS.saturating_sub(self.open.len() + self.pending);
        let count = count.min(room);
        if count > 0 {
            self.pending += count;
            self.commands.push_back(SocketCommand::Open {
                count: u16::try_from(count).unwrap_or(u16::MAX),
            });
        }
        count
    }

    /// A socket asked for is bound at `local`; `false` if nobody asked (it is closed).
    pub(crate) fn opened(&mut self, local: SocketAddr) -> bool {
        let port = local.port();
        if self.pending == 0 || port == 0 || self.open.contains(&port) {
            self.unsolicited += 1;
            if port != 0 && !self.open.contains(&port) {
                self.commands.push_back(SocketCommand::Close { port });
            }
            return false;
        }
        self.pending -= 1;
        self.open.insert(port);
        true
    }

    /// Like [`request`](Self::request), for sockets the node keeps itself.
    pub(crate) fn request_kept(&mut self, count: usize) -> usize {
        let granted = self.request(count);
        self.kept += granted;
        granted
    }

    /// Whether a socket just reported opened is one the node keeps itself.
    pub(crate) fn take_kept(&mut self) -> bool {
        let kept = self.kept > 0;
        self.kept = self.kept.saturating_sub(1);
        kept
    }

    /// A socket asked for could not be bound.
    pub(crate) fn failed(&mut self) {
        self.pending = self.pending.saturating_sub(1);
        self.kept = self.kept.min(self.pending);
    }

    /// Closes the pool socket of local port `port`, if open.
    pub(crate) fn close(&mut self, port: u16) {
        if self.open.remove(&port) {
            self.commands.push_back(SocketCommand::Close { port });
        }
    }

    /// Whether `port` is one of the pool's open sockets.
    pub(crate) fn contains(&self, port: u16) -> bool {
        self.open.contains(&port)
    }

    /// Open sockets.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// The next command for the runtime.
    pub(crate) fn poll_command(&mut self) -> Option<SocketCommand> {
        self.commands.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn sockets_the_node_asked_for_itself_are_kept_and_failures_forget_them() {
        let mut pool = SocketPool::default();
        assert_eq!(pool.request_kept(2), 2);
        assert_eq!(pool.request(1), 1);
        assert!(pool.opened(addr(5000)));
        assert!(pool.take_kept());
        pool.failed();
        pool.failed();
        // One asked for, none pending: the next report is not a kept one.
        assert!(!pool.take_kept());
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn requests_are_capped_at_the_pool_bound() {
        let mut pool = SocketPool::default();
        assert_eq!(pool.request(200), 200);
        assert_eq!(pool.request(200), MAX_POOL_SOCKETS - 200);
        assert_eq!(pool.request(1), 0);
        assert_eq!(
            pool.poll_command(),
            Some(SocketCommand::Open { count: 200 })
        );
        assert_eq!(
            pool.poll_command(),
            Some(SocketCommand::Open {
                count: (MAX_POOL_SOCKETS - 200) as u16
            })
        );
        assert_eq!(pool.poll_command(), None);
    }

    #[test]
    fn a_socket_nobody_asked_for_is_closed_at_once() {
        let mut pool = SocketPool::default();
        assert!(!pool.opened(addr(5000)));
        assert_eq!(
            pool.poll_command(),
            Some(SocketCommand::Close { port: 5000 })
        );
        assert!(!pool.contains(5000));
        assert_eq!(pool.unsolicited, 1);
    }

    #[test]
    fn opened_sockets_are_known_by_port_until_closed() {
        let mut pool = SocketPool::default();
        pool.request(2);
        let _ = pool.poll_command();
        assert!(pool.opened(addr(5000)));
        pool.failed();
        assert!(pool.contains(5000));
        assert_eq!(pool.len(), 1);
        // Both asked-for sockets are accounted for: a third report is unsolicited.
        assert!(!pool.opened(addr(5001)));
        let _ = pool.poll_command();
        pool.close(5000);
        assert_eq!(
            pool.poll_command(),
            Some(SocketCommand::Close { port: 5000 })
        );
        assert!(!pool.contains(5000));
        pool.close(5000);
        assert_eq!(pool.poll_command(), None);
    }
}
