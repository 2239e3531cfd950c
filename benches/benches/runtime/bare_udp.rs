//! The bare-UDP baseline of the runtime bench: two loopback sockets moving datagrams of
//! the data channel's wire size as fast as a plain send/receive loop can.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::TRANSFER;

/// Datagrams in flight at most (unacknowledged by the receiver).
const BARE_WINDOW: u64 = 256;
/// The receiver acknowledges every this many datagrams.
const BARE_ACK_EVERY: u64 = 32;

/// Two loopback UDP sockets: the sender's and a receiver thread that counts datagrams
/// and acknowledges them (a cumulative count), so the sender never overflows the
/// receive buffer.
pub(crate) struct BareUdp {
    sender: UdpSocket,
    acked: u64,
    stop: std::sync::Arc<AtomicBool>,
    receiver: Option<std::thread::JoinHandle<()>>,
    /// Windows sent again after an acknowledgement did not come (loss; should be 0).
    pub(crate) timeouts: u64,
}

impl BareUdp {
    pub(crate) fn new() -> BareUdp {
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
        dhtmeet_std::enlarge_buffers(&sender);
        dhtmeet_std::enlarge_buffers(&receiver);
        sender
            .connect(receiver.local_addr().expect("addr"))
            .expect("connect");
        receiver
            .connect(sender.local_addr().expect("addr"))
            .expect("connect");
        sender
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        receiver
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut buf = vec![0u8; 65_536];
                let mut count: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    match receiver.recv(&mut buf) {
                        // A 1-byte datagram asks for an acknowledgement now.
                        Ok(1) => {
                            let _ = receiver.send(&count.to_be_bytes());
                        }
                        Ok(_) => {
                            count += 1;
                            if count % BARE_ACK_EVERY == 0 {
                                let _ = receiver.send(&count.to_be_bytes());
                            }
                        }
                        Err(_) => {}
                    }
                }
            }
        });
        BareUdp {
            sender,
            acked: 0,
            stop,
            receiver: Some(thread),
            timeouts: 0,
        }
    }

    /// Sends `TRANSFER` bytes in datagrams like `datagram` and waits until the receiver has
    /// acknowledged them all.
    pub(crate) fn transfer(&mut self, datagram: &[u8]) -> usize {
        let count = TRANSFER.div_ceil(datagram.len()) as u64;
        let target = self.acked + count;
        let mut sent = self.acked;
        let mut ack = [0u8; 8];
        while self.acked < target {
            while sent < target && sent - self.acked < BARE_WINDOW {
                if self.sender.send(datagram).is_ok() {
                    sent += 1;
                }
            }
            if sent == target {
                let _ = self.sender.send(&[0]);
            }
            match self.sender.recv(&mut ack) {
                Ok(8) => self.acked = self.acked.max(u64::from_be_bytes(ack)),
                Ok(_) => {}
                Err(_) => {
                    // Lost on loopback: send what was not acknowledged again.
                    self.timeouts += 1;
                    sent = self.acked;
                }
            }
        }
        count as usize * datagram.len()
    }
}

impl Drop for BareUdp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.receiver.take() {
            let _ = t.join();
        }
    }
}
