use std::sync::atomic::{AtomicU32, Ordering};

use dhtmeet_core::dht::NodeId;

use super::*;

/// A fresh directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dhtmeet-state-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn state(n: u8) -> SavedState {
    SavedState {
        node_id: Some(NodeId([n; 20])),
        ..SavedState::default()
    }
}

#[test]
fn a_saved_state_loads_back_and_leaves_no_temporary_file() {
    let tmp = TempDir::new("roundtrip");
    let dir = StateDir::open(&tmp.0).unwrap();
    assert!(matches!(dir.load(), Err(LoadError::Missing(_))));
    assert_eq!(dir.load_or_warn(), None);
    dir.save(&state(1)).unwrap();
    dir.save(&state(2)).unwrap();
    assert_eq!(dir.load().unwrap(), state(2));
    let names: Vec<String> = fs::read_dir(&tmp.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&tmp.0).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the directory is private");
    }
}

#[test]
fn two_nodes_sharing_a_directory_get_separate_files() {
    let tmp = TempDir::new("slots");
    let a = StateDir::open(&tmp.0).unwrap();
    let b = StateDir::open(&tmp.0).unwrap();
    assert_ne!(a.path(), b.path());
    a.save(&state(1)).unwrap();
    b.save(&state(2)).unwrap();
    assert_eq!(a.load().unwrap(), state(1));
    assert_eq!(b.load().unwrap(), state(2));
    // A node that stops frees its slot; the next one takes it back, with its state.
    let slot = a.slot();
    drop(a);
    let again = StateDir::open(&tmp.0).unwrap();
    assert_eq!(again.slot(), slot);
    assert_eq!(again.load().unwrap(), state(1));
}

#[test]
fn every_slot_busy_is_an_error_not_a_shared_file() {
    let tmp = TempDir::new("busy");
    let held: Vec<StateDir> = (0..MAX_SLOTS)
        .map(|_| StateDir::open(&tmp.0).unwrap())
        .collect();
    assert!(matches!(
        StateDir::open(&tmp.0),
        Err(StateDirError::AllSlotsBusy(_))
    ));
    drop(held);
}

#[test]
fn truncated_corrupted_foreign_and_future_files_are_named_and_refused() {
    let tmp = TempDir::new("bad");
    let dir = StateDir::open(&tmp.0).unwrap();
    let good = state(3).encode();
    type Expect = fn(&StateError) -> bool;
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("empty", Vec::new(), |e| {
            matches!(e, StateError::Truncated(0))
        }),
        ("truncated", good[..good.len() - 5].to_vec(), |e| {
            matches!(e, StateError::Truncated(_))
        }),
        (
            "corrupted",
            {
                let mut b = good.clone();
                b[12] ^= 0x40;
                b
            },
            |e| matches!(e, StateError::Corrupted),
        ),
        ("foreign", b"hello world, not a state".to_vec(), |e| {
            matches!(e, StateError::NotState)
        }),
        (
            "future",
            {
                let mut b = good.clone();
                b[4] = 200;
                b
            },
            |e| matches!(e, StateError::FutureVersion(200)),
        ),
        (
            "huge",
            vec![b'D'; dhtmeet_core::state::MAX_STATE_BYTES * 4],
            |e| matches!(e, StateError::TooLarge(_)),
        ),
    ];
    for (name, bytes, expected) in cases {
        fs::write(dir.path(), &bytes).unwrap();
        match dir.load() {
            Err(LoadError::Invalid { source, .. }) => {
                assert!(expected(&source), "{name}: {source}")
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(dir.load_or_warn(), None, "{name}");
        // The next save replaces it.
        dir.save(&state(4)).unwrap();
        assert_eq!(dir.load().unwrap(), state(4), "{name}");
    }
}
