//! The pcap capture: a classic libpcap file with LINKTYPE_RAW, one IPv4/UDP packet per
//! datagram per link crossing, as Wireshark reads it.

use dhtmeet_sim::NatPreset;
use dhtmeet_sim::scenario::stun;

#[test]
fn the_stun_scenario_writes_a_readable_capture() {
    let seed = 3;
    let path = std::env::temp_dir().join(format!("dhtmeet-sim-test-{}.pcap", std::process::id()));
    let file = std::fs::File::create(&path).expect("temp file");
    let o = stun::run(NatPreset::PortRestrictedCone, seed, Some(Box::new(file))).expect("runs");
    let bytes = std::fs::read(&path).expect("written");
    let _ = std::fs::remove_file(&path);
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().expect("4")),
        101
    );
    let mut at = 24;
    let mut packets = 0;
    let mut stun_ports = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4")) as usize;
        let ip = &bytes[at + 16..at + 16 + len];
        assert_eq!(ip[0], 0x45, "IPv4, 20-byte header");
        assert_eq!(ip[9], 17, "UDP");
        let (sport, dport) = (
            u16::from_be_bytes([ip[20], ip[21]]),
            u16::from_be_bytes([ip[22], ip[23]]),
        );
        if sport == 3478 || dport == 3478 {
            stun_ports += 1;
        }
        assert!(ip[28] < 4, "a STUN message (first byte 0-3)");
        packets += 1;
        at += 16 + len;
    }
    assert_eq!(Some(packets), o.pcap.map(|p| p.packets));
    // 4 datagrams, each seen on 3 links (client's access, NAT's, the server's).
    assert_eq!(packets, 12, "seed {seed}");
    assert_eq!(stun_ports, packets);
}
