//! Orphans re-parented to curtain are reaped: as PID 1 every zombie of the
//! namespace, as a subreaper every orphan of the app.

use crate::support::*;

/// 20 000 orphans exit at once; the app checks each pid is gone (reaped by
/// curtain, since only curtain can), then exits 0. Runs alone (pid_max).
#[test]
fn reaps_20000_orphans_as_pid1() {
    let _g = exclusive();
    let f =
        Run::start(Mode::Pid1, &["--", tapp(), "orphans", "20000"]).wait(std::time::Duration::from_secs(60));
    f.assert_exit(0, "exited", true);
    // Each of the 20 000 (the app waits for its spawner itself).
    assert_eq!(f.exit()["orphans_reaped"], 20_000, "{:?}", f.exit());
}

#[test]
fn reaps_orphans_as_subreaper() {
    let _g = shared();
    let f = Run::start(Mode::Subreaper, &["--", tapp(), "orphans", "200"]).wait(SECS_10);
    f.assert_exit(0, "exited", true);
    assert_eq!(f.exit()["orphans_reaped"], 200);
}

/// A zombie whose parent exits without waiting is re-parented to curtain and
/// reaped while the app keeps running.
#[test]
fn reaps_an_orphaned_zombie_while_the_app_runs() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("zombie");
        let run = Run::start(mode, &["--", tapp(), "zombie", dir.s()]);
        wait_file(&dir.path("reaped"), SECS_10);
        let f = run.stop(libc::SIGTERM);
        f.assert_exit(143, "stopped", true);

        assert_eq!(f.exit()["orphans_reaped"], 1, "{f:#?}");
    }
}
