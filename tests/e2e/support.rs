//! Test support: run the built curtain as a real PID 1 (`unshare --pid --fork
//! --mount-proc`) or as a plain subreaper, with the static test app `tapp`
//! (tests/helpers/tapp.c). Tests synchronise on marker files written by the
//! app, never on fixed sleeps; failures print curtain's argv, stdout, stderr.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const CURTAIN: &str = env!("CARGO_BIN_EXE_curtain");

/// Stress tests (20 000 orphans, signal storms) and the tests that build the
/// static binary take this lock for writing, every other test for reading, so
/// they run alone.
static SUITE: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    SUITE.read().unwrap_or_else(|e| e.into_inner())
}

pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SUITE.write().unwrap_or_else(|e| e.into_inner())
}

/// The static test app, compiled once per test run.
pub fn tapp() -> &'static str {
    static TAPP: OnceLock<String> = OnceLock::new();
    TAPP.get_or_init(|| {
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/tapp.c");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tapp");
        let status = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&out)
            .arg(src)
            .status()
            .expect("gcc (install gcc and libc6-dev)");
        assert!(status.success(), "compiling {src} failed");
        out.to_string_lossy().into_owned()
    })
}

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "scratch-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn s(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
    pub fn file(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of a fresh pid namespace (unshare --pid --fork --mount-proc).
    Pid1,
    /// An ordinary child of the test: curtain makes itself a subreaper.
    Subreaper,
}

pub const MODES: [Mode; 2] = [Mode::Pid1, Mode::Subreaper];

/// A running curtain.
pub struct Run {
    pub child: Child,
    pub mode: Mode,
    pub argv: Vec<String>,
    pub started: Instant,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
}

/// A finished curtain.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub lines: Vec<String>,
    pub stderr: String,
    pub argv: Vec<String>,
    /// From start to exit, as seen by the test.
    pub elapsed: Duration,
}

pub struct Options<'a> {
    pub mode: Mode,
    pub env: &'a [(&'a str, &'a str)],
    pub stdout: Option<Stdio>,
    pub stdin: Option<Stdio>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            mode: Mode::Subreaper,
            env: &[],
            stdout: None,
            stdin: None,
        }
    }
}

impl Run {
    pub fn start(mode: Mode, args: &[&str]) -> Run {
        Run::start_with(
            Options {
                mode,
                ..Options::default()
            },
            args,
        )
    }

    pub fn start_with(opts: Options, args: &[&str]) -> Run {
        let mut argv: Vec<String> = Vec::new();
        if opts.mode == Mode::Pid1 {
            argv.extend(["unshare", "--pid", "--fork", "--mount-proc"].map(String::from));
        }
        argv.push(CURTAIN.to_string());
        argv.extend(args.iter().map(|s| s.to_string()));
        Run::start_argv(opts, argv)
    }

    /// Run `argv`, which must exec into curtain (or into `unshare ...
    /// curtain` for `Mode::Pid1`), e.g. `sh -c '...; exec curtain ...'`.
    pub fn start_argv(opts: Options, argv: Vec<String>) -> Run {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stderr(Stdio::piped())
            .stdin(opts.stdin.unwrap_or_else(Stdio::null));
        // curtain stays in the test's session and process group (no setsid):
        // its stdin is /dev/null unless the test gives one, so it never finds
        // a controlling terminal on stdin, and its stdout is a pipe, so the
        // default `--log-format auto` means JSON. The caller's own
        // CURTAIN_LOG_FORMAT is dropped so that only the test picks the
        // format. Clean-up (`kill_all`) kills by pid, not by process group.
        cmd.env_remove("CURTAIN_LOG_FORMAT");
        for (k, v) in opts.env {
            cmd.env(k, v);
        }
        let capture = opts.stdout.is_none();
        cmd.stdout(opts.stdout.unwrap_or_else(Stdio::piped));
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if capture {
            let out = child.stdout.take().expect("stdout");
            let sink = stdout.clone();
            readers.push(thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            }));
        }
        let mut err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        readers.push(thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&s);
        }));
        Run {
            child,
            mode: opts.mode,
            argv,
            started: Instant::now(),
            stdout,
            stderr,
            readers,
        }
    }

    /// curtain's pid as seen by the test (the host pid when it is PID 1).
    pub fn curtain_pid(&self) -> i32 {
        let pid = self.child.id() as i32;
        if self.mode == Mode::Subreaper {
            return pid;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let children =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            if let Some(c) = children.split_whitespace().next() {
                return c.parse().expect("pid");
            }
            assert!(Instant::now() < deadline, "unshare never forked curtain");
            thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.curtain_pid();
        // SAFETY: plain kill(2) to curtain, which is alive (not yet waited for).
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }

    /// Wait until the app has written `dir/ready` (tapp's readiness marker).
    pub fn ready(self, dir: &Scratch) -> Run {
        wait_file(&dir.path("ready"), SECS_10);
        self
    }

    /// Send `sig` to curtain and wait for it to exit, at most 10 s after it
    /// was started (see `wait`).
    pub fn stop(self, sig: i32) -> Finished {
        self.signal(sig);
        self.wait(SECS_10)
    }

    pub fn lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Wait until some stdout line satisfies `pred`.
    pub fn wait_line(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| pred(l)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no line {what} within {timeout:?} in {:#?}",
                self.lines()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait for curtain to exit, at most `timeout` counted from its start
    /// (`started`), not from this call; then kill it and fail.
    pub fn wait(mut self, timeout: Duration) -> Finished {
        use std::os::unix::process::ExitStatusExt;
        let deadline = self.started + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                self.kill_all();
                let _ = self.child.wait();
                panic!(
                    "curtain did not exit within {timeout:?}\nargv: {:?}\nstdout: {:#?}\nstderr: {}",
                    self.argv,
                    self.lines(),
                    self.stderr.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
            thread::sleep(Duration::from_millis(2));
        };
        let elapsed = self.started.elapsed();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            code: status.code(),
            signal: status.signal(),
            lines: self.lines(),
            stderr: self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            argv: self.argv.clone(),
            elapsed,
        }
    }

    fn kill_all(&mut self) {
        let pid = self.curtain_pid();
        if self.mode == Mode::Subreaper {
            for c in descendants(pid) {
                // SAFETY: best-effort clean-up of our own test processes.
                unsafe { libc::kill(c, libc::SIGKILL) };
            }
        }
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill_all();
            let _ = self.child.wait();
        }
    }
}

/// All descendants of `pid` (children first), from /proc.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let text = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for c in text.split_whitespace().filter_map(|c| c.parse().ok()) {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

impl Finished {
    /// Every stdout line, parsed as JSON (fails on any line that is not).
    pub fn events(&self) -> Vec<Value> {
        self.lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{self:#?}")))
            .collect()
    }

    pub fn event(&self, name: &str) -> Value {
        self.events()
            .into_iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event in {self:#?}"))
    }

    pub fn exit(&self) -> Value {
        let events = self.events();
        let last = events
            .last()
            .unwrap_or_else(|| panic!("no output: {self:#?}"))
            .clone();
        assert_eq!(
            last["event"], "exit",
            "the exit event must be the last line: {self:#?}"
        );
        last
    }

    /// The index of the first event named `name` (fails if there is none).
    pub fn position(&self, name: &str) -> usize {
        self.events()
            .iter()
            .position(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event in {self:#?}"))
    }

    /// Assert that the first event of each name is logged in this order.
    pub fn assert_order(&self, names: &[&str]) {
        let at: Vec<usize> = names.iter().map(|n| self.position(n)).collect();
        assert!(
            at.windows(2).all(|w| w[0] < w[1]),
            "events out of order: want {names:?}, found at lines {at:?}: {self:#?}"
        );
    }

    /// Assert the exit code, the exit event's reason and its `expected`.
    pub fn assert_exit(&self, code: i32, reason: &str, expected: bool) {
        let exit = self.exit();
        assert_eq!(self.code, Some(code), "exit code; {self:#?}");
        assert_eq!(exit["exit_code"], code, "{self:#?}");
        assert_eq!(exit["reason"], reason, "{self:#?}");
        assert_eq!(exit["expected"], expected, "{self:#?}");
    }
}

/// A pipe, both ends close-on-exec (the test hands one to curtain).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Wait until `path` exists.
pub fn wait_file(path: &Path, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {timeout:?}",
            path.display()
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// CLOCK_MONOTONIC in ns, the clock tapp's `mark` and `record` write.
pub fn mono_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// The signals `tapp record` has received, in order.
pub fn recorded(dir: &Scratch) -> Vec<(i32, i64)> {
    std::fs::read_to_string(dir.path("signals"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (s, t) = l.split_once(' ')?;
            Some((s.parse().ok()?, t.parse().ok()?))
        })
        .collect()
}

/// Wait until `tapp record` has received `sig`.
pub fn wait_recorded(dir: &Scratch, sig: i32, timeout: Duration) -> i64 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((_, t)) = recorded(dir).into_iter().find(|(s, _)| *s == sig) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "signal {sig} never reached the app; got {:?}",
            recorded(dir)
        );
        thread::sleep(Duration::from_millis(2));
    }
}

pub const SECS_10: Duration = Duration::from_secs(10);
pub const SECS_5: Duration = Duration::from_secs(5);

/// The static release binary (crt-static, as shipped in images), built once
/// per test run into the test's own target directory.
pub fn static_curtain() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("static");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-static.sh");
        let status = Command::new(script)
            .arg("--quiet")
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .expect("scripts/build-static.sh");
        assert!(status.success(), "static build failed");
        target_dir
            .join("x86_64-unknown-linux-gnu/release/curtain")
            .to_string_lossy()
            .into_owned()
    })
}

/// A root directory holding only the static curtain, the static test app and
/// an empty /proc: no libc, no /bin/sh.
pub fn empty_root(dir: &Scratch) -> PathBuf {
    let root = dir.path("root");
    std::fs::create_dir_all(root.join("proc")).expect("root/proc");
    std::fs::copy(static_curtain(), root.join("curtain")).expect("copy curtain");
    std::fs::copy(tapp(), root.join("tapp")).expect("copy tapp");
    root
}

/// A process a test started by hand: if the test fails before waiting for
/// it, it is killed with its descendants, so a failing test leaves nothing.
pub struct Guard(pub Child);

impl std::ops::Deref for Guard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let pid = self.0.id() as i32;
            for c in descendants(pid).into_iter().chain([pid]) {
                // SAFETY: kill(2) of our own test processes, best effort.
                unsafe { libc::kill(c, libc::SIGKILL) };
            }
            let _ = self.0.wait();
        }
    }
}

/// A fresh memory cgroup with a limit, wherever this host has the memory
/// controller: cgroup v1 (`/sys/fs/cgroup/memory`), or cgroup v2, on a pure
/// v2 host or in a hybrid one's unified hierarchy. On v2 it is a parent with
/// `+memory +pids` in its `cgroup.subtree_control` and a leaf for the
/// processes (v2 keeps processes out of cgroups that delegate controllers).
/// Removed on drop, with anything left in it, even when a test fails.
pub struct MemoryCgroup {
    /// Where processes go and limits are set (the leaf on v2).
    pub dir: PathBuf,
    /// The parent to remove after the leaf (v2 only).
    parent: Option<PathBuf>,
    pub v2: bool,
}

/// The mount point of the cgroup2 hierarchy, from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(left.split_whitespace().nth(4)?))
    })
}

impl MemoryCgroup {
    /// None, after one line saying why, where no memory controller can be
    /// used (an unprivileged container, a host without one).
    pub fn new(name: &str, limit: u64) -> Option<MemoryCgroup> {
        let leaf_name = format!("curtain-test-{name}-{}", std::process::id());
        let v1 = PathBuf::from("/sys/fs/cgroup/memory");
        let cg = if v1.join("memory.limit_in_bytes").exists() {
            let dir = v1.join(&leaf_name);
            std::fs::create_dir_all(&dir).ok().map(|_| MemoryCgroup {
                dir,
                parent: None,
                v2: false,
            })
        } else {
            MemoryCgroup::new_v2(&leaf_name)
        };
        let Some(cg) = cg else {
            eprintln!("skipped: no usable memory cgroup controller here (cgroup v1 memory, or cgroup v2 with memory)");
            return None;
        };
        let (limit_file, swap_file, swap) = if cg.v2 {
            ("memory.max", "memory.swap.max", "0".to_string())
        } else {
            (
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                limit.to_string(),
            )
        };
        if std::fs::write(cg.dir.join(limit_file), limit.to_string()).is_err() {
            eprintln!("skipped: cannot set {limit_file} in {}", cg.dir.display());
            return None;
        }
        // No swap to escape to, where the knob exists.
        let _ = std::fs::write(cg.dir.join(swap_file), swap);
        Some(cg)
    }

    fn new_v2(name: &str) -> Option<MemoryCgroup> {
        let root = cgroup2_mount()?;
        let has = |dir: &Path, file: &str, what: &str| {
            std::fs::read_to_string(dir.join(file)).is_ok_and(|c| c.split_whitespace().any(|c| c == what))
        };
        if !has(&root, "cgroup.controllers", "memory") {
            return None;
        }
        // The root may delegate without emptying itself (it is exempt).
        if !has(&root, "cgroup.subtree_control", "memory") {
            std::fs::write(root.join("cgroup.subtree_control"), "+memory").ok()?;
        }
        let _ = std::fs::write(root.join("cgroup.subtree_control"), "+pids");
        let parent = root.join(name);
        std::fs::create_dir_all(&parent).ok()?;
        let mut cg = MemoryCgroup {
            dir: parent.clone(),
            parent: None,
            v2: true,
        };
        std::fs::write(parent.join("cgroup.subtree_control"), "+memory").ok()?;
        let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+pids");
        let leaf = parent.join("leaf");
        std::fs::create_dir_all(&leaf).ok()?;
        cg.dir = leaf;
        cg.parent = Some(parent);
        Some(cg)
    }

    pub fn procs(&self) -> String {
        self.dir.join("cgroup.procs").to_string_lossy().into_owned()
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // Kill anything left in it, then remove it (retry: exits take a moment).
        for dir in [Some(self.dir.clone()), self.parent.clone()]
            .into_iter()
            .flatten()
        {
            for _ in 0..200 {
                let pids = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                    // SAFETY: plain kill of a test process in our cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
