//! STUN through each preset: the report names the NAT's public address, and the mapping
//! class RFC 4787 predicts (two servers see one mapping unless the NAT is symmetric).

mod common;

use dhtmeet_core::stun::Mapping;
use dhtmeet_sim::NatPreset;
use dhtmeet_sim::scenario::{LAN_HOST, site_public, stun};

#[test]
fn stun_through_every_preset_reports_the_nats_public_address() {
    let seed = common::test_seed(3);
    for preset in NatPreset::ALL {
        let o =
            stun::run(preset, seed, None).unwrap_or_else(|e| panic!("seed {seed}: {preset}: {e}"));
        let r = &o.report;
        assert_eq!(r.observations.len(), 2, "seed {seed}: {preset}");
        for obs in &r.observations {
            assert_eq!(
                obs.mapped.ip(),
                site_public(1),
                "seed {seed}: {preset}: {obs:?}"
            );
        }
        let expected = match preset {
            NatPreset::Symmetric | NatPreset::SymmetricSequential => Mapping::EndpointDependent,
            _ => Mapping::EndpointIndependent,
        };
        assert_eq!(r.mapping, expected, "seed {seed}: {preset}");
        match preset {
            NatPreset::Open => assert_eq!(r.first.mapped, o.local, "seed {seed}"),
            _ => assert_eq!(o.local, LAN_HOST),
        }
        if matches!(preset, NatPreset::Home | NatPreset::FullCone) {
            // Port preservation: the LAN port shows through.
            assert_eq!(
                r.first.mapped.port(),
                LAN_HOST.port(),
                "seed {seed}: {preset}"
            );
        }
    }
}

#[test]
fn through_a_symmetric_nat_two_servers_see_different_mappings() {
    let seed = common::test_seed(5);
    for s in seed..seed + 5 {
        let o =
            stun::run(NatPreset::Symmetric, s, None).unwrap_or_else(|e| panic!("seed {s}: {e}"));
        let [a, b] = [
            o.report.observations[0].mapped,
            o.report.observations[1].mapped,
        ];
        assert_eq!(a.ip(), b.ip(), "seed {s}");
        assert_ne!(a.port(), b.port(), "seed {s}");
    }
}

/// A sequential symmetric NAT: each server sees its own mapping, the second a few ports
/// after the first (one step, plus what the light background traffic took in between),
/// where a random NAT's ports are anywhere in the range.
#[test]
fn through_a_sequential_symmetric_nat_the_second_mapping_follows_the_first() {
    let seed = common::test_seed(6);
    let mut gaps = Vec::new();
    for s in seed..seed + 10 {
        let o = stun::run(NatPreset::SymmetricSequential, s, None)
            .unwrap_or_else(|e| panic!("seed {s}: {e}"));
        let [a, b] = [
            o.report.observations[0].mapped,
            o.report.observations[1].mapped,
        ];
        assert_eq!(a.ip(), b.ip(), "seed {s}");
        let gap = i32::from(b.port()) - i32::from(a.port());
        assert!((1..=5).contains(&gap.abs()), "seed {s}: {a} then {b}");
        gaps.push(gap);
    }
    assert!(
        gaps.iter().any(|&g| g.abs() == 1),
        "seeds {seed}..: {gaps:?}"
    );
}
