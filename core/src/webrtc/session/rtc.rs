//! str0m's `Rtc`, sealed behind the session's own `fastrand` stream.
//!
//! str0m draws ICE tie-breakers, STUN transaction ids and SCTP's initial TSN from
//! `fastrand`'s thread-local generator. A [`SeededRtc`] owns its `Rtc` and a `fastrand`
//! state derived from the session's seed, and reaches the `Rtc` only through
//! [`SeededRtc::call`] (or the read-only [`SeededRtc::inspect`]): both go through
//! [`with_stream`], the one function in the core allowed to touch `fastrand`. It seeds
//! the thread's generator from the session's stream, runs the closure, keeps the
//! stream's new state and puts the thread's previous state back, so str0m's draws
//! depend on nothing but the seed and the inputs, and a caller's own `fastrand` use on
//! the same thread is left exactly as it was.

use std::time::{Duration, Instant};

use rand_core::Rng as _;
use str0m::config::Fingerprint;
use str0m::ice::IceCreds;
use str0m::{Rtc, RtcConfig};

use crate::Seed;

/// Characters of ICE credentials (RFC 8839 §5.4, `ice-char`).
pub(crate) const ICE_CHARS: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Runs `f` with `fastrand`'s thread-local generator seeded from `*state`, stores the
/// stream's next state in `*state`, and restores the thread's previous generator.
///
/// The next state is one draw from the stream after `f` (not `get_seed`), so that the
/// stream advances on every call whether or not str0m drew anything: that is how the
/// session's stream has always advanced, and it keeps two calls in a row from
/// replaying the same numbers to str0m.
// The core's only use of `fastrand` (banned everywhere else in `core/clippy.toml`):
// str0m reads this thread-local generator, so it must be set around each call into
// str0m, and the caller's own state must come back afterwards.
#[allow(clippy::disallowed_methods)]
fn with_stream<R>(state: &mut u64, f: impl FnOnce() -> R) -> R {
    let callers = fastrand::get_seed();
    fastrand::seed(*state);
    let r = f();
    *state = fastrand::u64(..);
    fastrand::seed(callers);
    r
}

/// A str0m `Rtc` and the `fastrand` stream every call into it runs on.
pub(crate) struct SeededRtc {
    rtc: Rtc,
    /// The session's own stream (see [`with_stream`]).
    fastrand_state: u64,
}

/// A freshly built [`SeededRtc`] and the local credentials it was built with.
pub(crate) struct BuiltRtc {
    pub rtc: SeededRtc,
    pub ufrag: String,
    pub pwd: String,
    /// Our DTLS certificate's SHA-256 fingerprint (`None` if str0m gave another hash).
    pub fingerprint: Option<[u8; 32]>,
}

impl SeededRtc {
    /// Builds the `Rtc` from `seed`'s children `{label}/ice-credentials`,
    /// `{label}/fastrand` and `{label}/dtls` (dimpl's RNG, see `dtls.rs`); `configure`
    /// adds the path's own settings. The one recipe both paths use (meetings'
    /// `Session::new` and the SDP path).
    pub(crate) fn build(
        now: Instant,
        seed: &Seed,
        label: &str,
        configure: impl FnOnce(RtcConfig) -> RtcConfig,
    ) -> BuiltRtc {
        let mut rng = seed.child(&format!("{label}/ice-credentials")).rng();
        let mut ice_string = |n: usize| -> String {
            (0..n)
                .map(|_| ICE_CHARS[(rng.next_u32() % 64) as usize] as char)
                .collect()
        };
        let ufrag = ice_string(8);
        let pwd = ice_string(24);
        let fr = seed.child(&format!("{label}/fastrand")).0;
        let dtls = seed.child(&format!("{label}/dtls")).0;
        let rtc_config = RtcConfig::new()
            .set_crypto_provider(super::dtls::crypto_provider())
            .set_local_ice_credentials(IceCreds {
                ufrag: ufrag.clone(),
                pass: pwd.clone(),
            })
            .set_stats_interval(Some(Duration::from_secs(1)));
        let mut fastrand_state =
            u64::from_be_bytes([fr[0], fr[1], fr[2], fr[3], fr[4], fr[5], fr[6], fr[7]]);
        let dtls_seed = u64::from_be_bytes([
            dtls[0], dtls[1], dtls[2], dtls[3], dtls[4], dtls[5], dtls[6], dtls[7],
        ]);
        let (rtc, fp) = with_stream(&mut fastrand_state, || {
            let mut rtc =
                super::dtls::build_with_seed(dtls_seed, || configure(rtc_config).build(now));
            let fp: Fingerprint = rtc.direct_api().local_dtls_fingerprint().clone();
            (rtc, fp)
        });
        let rtc = SeededRtc {
            rtc,
            fastrand_state,
        };
        let fingerprint = fp
            .hash_func
            .eq_ignore_ascii_case("sha-256")
            .then(|| fp.bytes.try_into().ok())
            .flatten();
        BuiltRtc {
            rtc,
            ufrag,
            pwd,
            fingerprint,
        }
    }

    /// Calls into str0m on the session's stream (see [`with_stream`]), which advances.
    pub(crate) fn call<R>(&mut self, f: impl FnOnce(&mut Rtc) -> R) -> R {
        let rtc = &mut self.rtc;
        with_stream(&mut self.fastrand_state, || f(rtc))
    }

    /// Reads from str0m on the session's stream without advancing it: whatever a read
    /// draws is drawn again by the next call.
    pub(crate) fn inspect<R>(&self, f: impl FnOnce(&Rtc) -> R) -> R {
        let mut state = self.fastrand_state;
        with_stream(&mut state, || f(&self.rtc))
    }
}
