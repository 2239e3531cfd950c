//! A node killed while it writes its state never leaves a half-written file: the state
//! directory's saves are atomic (temporary file, fsync, rename, fsync of the directory).
//!
//! A helper process (this test binary again, running the ignored `state_writer_loop`)
//! saves a new state in a loop as fast as it can; the test SIGKILLs it at a random moment,
//! many times over, and after every kill reads the file back: it must always decode, and
//! be one of the states the writer wrote whole.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dhtmeet_core::SavedState;
use dhtmeet_core::dht::NodeId;
use dhtmeet_core::dht::krpc::CompactNode;
use dhtmeet_std::state_dir::{LoadError, StateDir, read_state};

const WRITER_DIR: &str = "DHTMEET_TEST_STATE_WRITER_DIR";

/// The `i`-th state the writer saves: its size changes with `i` (0 to 199 nodes, up to
/// ~8 KB), and every field says `i`, so a state mixed from two saves is recognised.
fn nth_state(i: u32) -> SavedState {
    let tag = i.to_be_bytes();
    let mut id = [0u8; 20];
    id[..4].copy_from_slice(&tag);
    let nodes = (0..i % 200)
        .map(|n| CompactNode {
            id: NodeId(id),
            addr: SocketAddr::from(([10, tag[2], tag[3], 1], 1 + n as u16)),
        })
        .collect();
    SavedState {
        node_id: Some(NodeId(id)),
        id_ip: None,
        nodes,
        meetings: Vec::new(),
    }
}

fn is_whole(state: &SavedState) -> bool {
    let Some(id) = state.node_id else {
        return false;
    };
    let i = u32::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3]]);
    *state == nth_state(i)
}

#[test]
#[ignore = "the helper process of a_kill_during_save_leaves_the_previous_state_intact"]
fn state_writer_loop() {
    let Some(dir) = std::env::var_os(WRITER_DIR) else {
        return;
    };
    let dir = StateDir::open(&PathBuf::from(dir)).expect("state dir");
    for i in 1.. {
        dir.save(&nth_state(i)).expect("save");
    }
}

/// A small xorshift generator: the kill moments come from a printed seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn a_kill_during_save_leaves_the_previous_state_intact() {
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!("kill-timing seed: {seed}");
    let seed0 = seed;
    let dir = std::env::temp_dir().join(format!("dhtmeet-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("node-0.state");
    let exe = std::env::current_exe().unwrap();
    let (mut whole, mut missing, mut mid_write) = (0, 0, 0);
    let tmp = dir.join("node-0.state.tmp");
    let started = Instant::now();
    for round in 0..40 {
        let mut child = Command::new(&exe)
            .args(["--exact", "state_writer_loop", "--ignored", "--quiet"])
            .env(WRITER_DIR, &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The writer starts in a few milliseconds, then saves continuously.
        std::thread::sleep(Duration::from_micros(3_000 + next(&mut seed) % 60_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // A temporary file left behind: the kill came in the middle of a save.
        mid_write += usize::from(tmp.exists());
        match read_state(&file) {
            Ok(state) => {
                assert!(
                    is_whole(&state),
                    "round {round}: a state mixed from two saves; seed {seed0}"
                );
                whole += 1;
            }
            Err(LoadError::Missing(_)) => missing += 1,
            Err(e) => panic!("round {round}: {e}; kill-timing seed {seed0}"),
        }
        // The dead writer's slot lock went with it: the next writer takes slot 0 again.
        let again = StateDir::open(&dir).unwrap();
        assert_eq!(
            again.slot(),
            0,
            "round {round}: the killed writer's lock stayed"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "40 kills in {:?}: {mid_write} in the middle of a save, {whole} intact states read back, {missing} before the first save",
        started.elapsed()
    );
    assert!(
        mid_write > 0,
        "no kill landed inside a save, so this run showed nothing; seed {seed0}"
    );
    assert!(
        whole >= 30,
        "the writer was killed before saving anything too often ({missing} of 40): the test saw too few writes to show anything; seed {seed0}"
    );
}
