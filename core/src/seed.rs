//! Randomness comes in: a 32-byte seed in the config, and child seeds per sub-machine.
//!
//! A child seed is derived from its parent and a label with SHA-256, so each sub-machine
//! gets an independent stream whatever order the sub-machines are created or used in.
//! Same seed and same inputs give the same outputs, bit for bit.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

/// The RNG every state machine draws from: ChaCha20, seeded.
pub type Rng = ChaCha20Rng;

/// A 32-byte seed for a state machine's randomness.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seed(pub [u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Seeds are secrets (they make ICE credentials and tokens): never log them whole.
        write!(f, "Seed({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl Seed {
    /// A seed from a number, for tests and simulations (`--seed 42`).
    pub fn from_u64(n: u64) -> Self {
        Seed::from_label(&n.to_be_bytes(), "dhtmeet/seed/u64")
    }

    /// The independent seed of the sub-machine called `label`.
    pub fn child(&self, label: &str) -> Seed {
        Seed::from_label(&self.0, label)
    }

    /// A fresh RNG seeded with this seed.
    pub fn rng(&self) -> Rng {
        ChaCha20Rng::from_seed(self.0)
    }

    fn from_label(parent: &[u8], label: &str) -> Seed {
        let mut h = Sha256::new();
        h.update(b"dhtmeet/seed/v1\0");
        h.update((label.len() as u64).to_be_bytes());
        h.update(label.as_bytes());
        h.update(parent);
        Seed(h.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng as _;

    #[test]
    fn children_are_distinct_and_stable() {
        let root = Seed::from_u64(7);
        assert_eq!(root.child("stun"), Seed::from_u64(7).child("stun"));
        assert_ne!(root.child("stun"), root.child("dht"));
        assert_ne!(root.child("stun"), root);
        assert_ne!(Seed::from_u64(7), Seed::from_u64(8));
    }

    #[test]
    fn same_seed_same_stream() {
        let a = Seed::from_u64(1).rng().next_u64();
        let b = Seed::from_u64(1).rng().next_u64();
        let c = Seed::from_u64(2).rng().next_u64();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
