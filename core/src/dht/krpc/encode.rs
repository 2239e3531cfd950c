//! Encoding KRPC messages to bencode. Being written: see the helper's task.

use super::Message;

impl Message {
    /// Encodes the message (keys sorted, as bencode requires).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let _ = out;
    }
}
