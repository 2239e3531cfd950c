use std::sync::atomic::{AtomicU32, Ordering};

use dhtmeet_core::NodeId;

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
        ("huge", vec![b'D'; dhtmeet_core::MAX_STATE_BYTES * 4], |e| {
            matches!(e, StateError::TooLarge(_))
        }),
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

/// Runs `body` on a thread and fails the test if it does not finish within 10 s (a
/// blocked `open` would otherwise hang the test forever).
fn within_10s<T: Send + 'static>(what: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} did not return within 10 s"))
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
}

#[cfg(unix)]
#[test]
fn a_fifo_at_the_state_path_is_never_opened_and_the_next_slot_is_used() {
    let tmp = TempDir::new("fifo");
    fs::create_dir_all(&tmp.0).unwrap();
    let fifo = tmp.0.join("node-0.state");
    mkfifo(&fifo);
    let read = within_10s("read_state on a FIFO", {
        let fifo = fifo.clone();
        move || read_state(&fifo)
    });
    assert!(matches!(read, Err(LoadError::NotAFile(_))), "{read:?}");
    let dir = within_10s("StateDir::open", {
        let path = tmp.0.clone();
        move || StateDir::open(&path)
    })
    .unwrap();
    assert_eq!(dir.slot(), 1, "the slot with the FIFO is skipped");
    dir.save(&state(5)).unwrap();
    assert_eq!(dir.load().unwrap(), state(5));
    use std::os::unix::fs::FileTypeExt as _;
    let kind = fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO is left alone");
}

#[cfg(unix)]
#[test]
fn a_fifo_left_as_the_temporary_file_does_not_block_a_save() {
    let tmp = TempDir::new("fifo-tmp");
    let dir = StateDir::open(&tmp.0).unwrap();
    mkfifo(&tmp.0.join("node-0.state.tmp"));
    let saved = within_10s("a save beside a FIFO temporary file", move || {
        dir.save(&state(6)).unwrap();
        dir.load().unwrap()
    });
    assert_eq!(saved, state(6));
}

#[test]
fn a_broken_slot_lock_falls_back_to_the_next_slot() {
    type Break = fn(&Path);
    let mut cases: Vec<(&str, Break)> = vec![
        ("a directory", |p| fs::create_dir(p).unwrap()),
        ("garbage", |p| {
            fs::write(p, b"\xff\x00 not a lock \xfe").unwrap()
        }),
    ];
    #[cfg(unix)]
    cases.push(("a FIFO", |p| mkfifo(p)));
    for (name, break_lock) in cases {
        let tmp = TempDir::new("broken-lock");
        fs::create_dir_all(&tmp.0).unwrap();
        break_lock(&tmp.0.join("node-0.lock"));
        let path = tmp.0.clone();
        let dir = within_10s(name, move || StateDir::open(&path))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if name == "garbage" {
            // Any regular file can be locked, whatever it holds.
            assert_eq!(dir.slot(), 0, "{name}");
        } else {
            assert_eq!(dir.slot(), 1, "{name}");
        }
        dir.save(&state(7)).unwrap();
        assert_eq!(dir.load().unwrap(), state(7), "{name}");
    }
}

#[test]
fn every_slot_broken_is_an_error_naming_the_first() {
    let tmp = TempDir::new("all-broken");
    fs::create_dir_all(&tmp.0).unwrap();
    for slot in 0..MAX_SLOTS {
        fs::create_dir(tmp.0.join(format!("node-{slot}.lock"))).unwrap();
    }
    match StateDir::open(&tmp.0) {
        Err(StateDirError::NoUsableSlot { path, .. }) => {
            assert!(path.ends_with("node-0.lock"), "{}", path.display())
        }
        other => panic!("{other:?}"),
    }
}

/// Root ignores file permissions: a test about them runs itself again as the user
/// `nobody` (uid 65534) and checks that child's result. Returns whether it did (the
/// caller then returns); permissions are probed, not assumed from the user id.
#[cfg(unix)]
fn rerun_where_permissions_hold(test: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    let probe = TempDir::new("probe");
    fs::create_dir_all(&probe.0).unwrap();
    let file = probe.0.join("unreadable");
    fs::write(&file, b"x").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o000)).unwrap();
    if File::open(&file).is_err() {
        return false;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &format!("state_dir::tests::{test}"),
            "--nocapture",
        ])
        .env("TMPDIR", "/tmp")
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run the test as nobody");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "as uid 65534:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the test ran as uid 65534:\n{text}"
    );
    true
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn an_unreadable_slot_lock_falls_back_to_the_next_slot() {
    if rerun_where_permissions_hold("an_unreadable_slot_lock_falls_back_to_the_next_slot") {
        return;
    }
    let tmp = TempDir::new("unreadable-lock");
    fs::create_dir_all(&tmp.0).unwrap();
    let lock = tmp.0.join("node-0.lock");
    fs::write(&lock, b"").unwrap();
    chmod(&lock, 0o000);
    let dir = StateDir::open(&tmp.0).unwrap();
    assert_eq!(dir.slot(), 1);
    assert!(!dir.is_read_only());
    dir.save(&state(8)).unwrap();
    assert_eq!(dir.load().unwrap(), state(8));
}

#[cfg(unix)]
#[test]
fn a_read_only_state_directory_loads_its_state_and_writes_nothing() {
    if rerun_where_permissions_hold(
        "a_read_only_state_directory_loads_its_state_and_writes_nothing",
    ) {
        return;
    }
    let tmp = TempDir::new("read-only");
    StateDir::open(&tmp.0).unwrap().save(&state(9)).unwrap();
    let lock = tmp.0.join("node-0.lock");
    // Everything read-only (`chmod -R a-w`), then also without its lock files (a state
    // copied from elsewhere).
    for without_locks in [false, true] {
        chmod(&tmp.0, 0o700);
        if without_locks {
            let _ = fs::remove_file(&lock);
        } else {
            chmod(&lock, 0o400);
        }
        chmod(&tmp.0.join("node-0.state"), 0o400);
        chmod(&tmp.0, 0o500);
        let dir = StateDir::open(&tmp.0).unwrap();
        assert!(dir.is_read_only(), "without locks: {without_locks}");
        assert_eq!(dir.slot(), 0);
        assert_eq!(
            dir.load().unwrap(),
            state(9),
            "without locks: {without_locks}"
        );
        assert_eq!(dir.load_or_warn(), Some(state(9)));
        dir.save(&state(10)).unwrap();
        assert_eq!(read_state(dir.path()).unwrap(), state(9), "nothing written");
    }
    chmod(&tmp.0, 0o700);
}
