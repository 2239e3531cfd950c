//! str0m's DTLS (dimpl, on aws-lc-rs) with dimpl's own RNG seeded from the session's
//! seed, so that DTLS timings reproduce from the seed even when a handshake flight is
//! lost.
//!
//! dimpl draws its *non-cryptographic* randomness from one generator: the ±25 % jitter
//! on each flight's retransmission timeout, the DTLS 1.3 KeyUpdate threshold, the
//! handshake randoms (public on the wire) and a DTLS 1.3 cookie secret (unused: server
//! cookies are off, as in str0m's own provider, because ICE has already checked the
//! path). Keys, key shares and signatures come from aws-lc-rs's OS-seeded generator and
//! never from this seed. Unseeded, the jitter made retransmission times differ between
//! two runs of one simulation.
//!
//! str0m creates its DTLS instance once, inside `RtcConfig::build`, through the crypto
//! provider's `new_dtls`; the seed reaches it through a thread-local set around that
//! call ([`build_with_seed`]). Everything else is str0m's default aws-lc-rs provider.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
};
use str0m::crypto::{CryptoError, CryptoProvider};

thread_local! {
    /// The seed for the next DTLS instance built on this thread (taken by `new_dtls`).
    static NEXT_SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Runs `build` (which builds one `Rtc`) with `seed` for the DTLS instance it creates.
pub(crate) fn build_with_seed<R>(seed: u64, build: impl FnOnce() -> R) -> R {
    NEXT_SEED.with(|s| s.set(Some(seed)));
    let r = build();
    NEXT_SEED.with(|s| s.set(None));
    r
}

/// str0m's default provider with our DTLS factory in place of its own.
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    static DTLS: SeededDtlsProvider = SeededDtlsProvider;
    PROVIDER
        .get_or_init(|| {
            let mut provider = str0m::crypto::from_feature_flags();
            provider.dtls_provider = &DTLS;
            Arc::new(provider)
        })
        .clone()
}

#[derive(Debug)]
struct SeededDtlsProvider;

impl DtlsProvider for SeededDtlsProvider {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        dimpl::certificate::generate_self_signed_certificate()
            .ok()
            .map(|cert| DtlsCert {
                certificate: cert.certificate,
                private_key: cert.private_key,
            })
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let mut builder = dimpl::Config::builder().use_server_cookie(false);
        if let Some(mtu) = mtu {
            builder = builder.mtu(mtu);
        }
        // Without a seed (an `Rtc` built outside `build_with_seed`) dimpl draws from the
        // OS, as str0m's own provider does.
        if let Some(seed) = NEXT_SEED.with(Cell::take) {
            builder = builder.dangerously_set_rng_seed(seed);
        }
        let config = Arc::new(
            builder
                .build()
                .map_err(|e| CryptoError::Other(format!("dimpl config: {e}")))?,
        );
        let cert = cert.clone();
        let dtls = match dtls_version {
            DtlsVersion::Dtls12 => dimpl::Dtls::new_12(config, cert, now),
            DtlsVersion::Dtls13 => dimpl::Dtls::new_13(config, cert, now),
            DtlsVersion::Auto => dimpl::Dtls::new_auto(config, cert, now),
            other => {
                return Err(CryptoError::Other(format!(
                    "unsupported DTLS version: {other}"
                )));
            }
        };
        Ok(Box::new(SeededDtls(dtls)))
    }
}

/// A dimpl instance behind str0m's DTLS trait (each method is dimpl's own).
struct SeededDtls(dimpl::Dtls);

impl std::fmt::Debug for SeededDtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeededDtls").finish_non_exhaustive()
    }
}

impl DtlsInstance for SeededDtls {
    fn set_active(&mut self, active: bool) {
        self.0.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.0.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        self.0.poll_output(buf)
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.0.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.0.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.0.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.0.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.0.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.0.close()
    }
}
