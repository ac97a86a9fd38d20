//! The memory cgroup's OOM-kill counter, to tell an OOM kill from any other
//! SIGKILL (docs/behavior.md, Exit code and reason), and `memory.oom.group`
//! for the start event.
//!
//! The cgroup is found from `/proc/self/cgroup` (v2 `0::/path`, v1
//! `N:memory:/path`) and the mount points from `/proc/self/mountinfo`, never
//! from hard-coded paths. Inside a container without a cgroup namespace
//! (cgroup v1 under podman or docker) `/proc/self/cgroup` names the host's
//! path while the container's own cgroup is mounted at the mount point: when
//! the joined path does not exist, the mount root is the cgroup.
//! Nothing found means no OOM claim, never an error.

use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo`, the fields that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The path inside the filesystem that is mounted (field 4).
    pub root: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub super_options: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup mounts (v1 and v2) of `/proc/self/mountinfo`. The others are
/// skipped before anything is copied: a host's mountinfo has dozens of
/// lines, and parsing all of them was most of curtain's work after start.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut right = right.split(' ');
            let fs_type = right.next()?;
            if fs_type != "cgroup" && fs_type != "cgroup2" {
                return None;
            }
            let fs_type = fs_type.to_string();
            let left: Vec<&str> = left.split(' ').collect();
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("").to_string();
            Some(Mount {
                root: unescape(left.get(3)?),
                mount_point: PathBuf::from(unescape(left.get(4)?)),
                fs_type,
                super_options,
            })
        })
        .collect()
}

/// The cgroup paths of `/proc/self/cgroup`: (v2 unified path, v1 memory path).
pub fn parse_proc_cgroup(text: &str) -> (Option<String>, Option<String>) {
    let mut v2 = None;
    let mut v1_memory = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2 = Some(path.to_string());
        } else if controllers.split(',').any(|c| c == "memory") {
            v1_memory = Some(path.to_string());
        }
    }
    (v2, v1_memory)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A memory cgroup directory and the file holding its `oom_kill` counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub version: Version,
    pub dir: PathBuf,
    pub file: PathBuf,
}

/// How `find_counter` looks at the filesystem (a fake one in unit tests).
pub trait Fs {
    /// The file's content, if it can be read.
    fn read(&self, path: &Path) -> Option<String>;
    fn is_dir(&self, path: &Path) -> bool;
}

/// The real filesystem. `read` opens a file directly, with no `stat` first;
/// `is_dir` is one `stat`, to find a cgroup directory (`cgroup_dir`).
pub struct RealFs;

impl Fs for RealFs {
    fn read(&self, path: &Path) -> Option<String> {
        read_small(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}

/// Read a small file (proc, cgroupfs) with as few syscalls as possible:
/// `read_to_string` on a `File` asks for its size first (a `statx` and an
/// `lseek`, useless here: procfs says 0) and starts with a 32-byte read;
/// this reads into an 8 KiB buffer, never zeroed, which takes anything up to
/// that size (`/proc/self/mountinfo` is 3-6 KiB in a container) in one read
/// plus the one that sees the end, and grows for more. Start-up time counts.
pub fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(8 * 1024);
    // `Take` goes through the generic loop, which reads into the spare
    // capacity without zeroing it and without the size probe.
    file.take(u64::MAX).read_to_end(&mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// The directory of `path` under `mount`: joined relative to the mount's
/// root; the mount point itself when that does not exist (no cgroup ns).
fn cgroup_dir(mount: &Mount, path: &str, fs: &dyn Fs) -> PathBuf {
    let relative = path
        .strip_prefix(mount.root.as_str())
        .filter(|_| mount.root != "/")
        .unwrap_or(path)
        .trim_start_matches('/');
    let joined = mount.mount_point.join(relative);
    if relative.is_empty() || fs.is_dir(&joined) {
        joined
    } else {
        mount.mount_point.clone()
    }
}

/// Find the OOM-kill counter and read it: cgroup v2 (`memory.events.local`,
/// else `memory.events`) when the unified hierarchy has the memory
/// controller, else cgroup v1 `memory.oom_control`. Each candidate is opened
/// directly: the first whose content has an `oom_kill` line wins.
pub fn find_counter(mounts: &[Mount], proc_cgroup: &str, fs: &dyn Fs) -> Option<(Counter, u64)> {
    let (v2, v1) = parse_proc_cgroup(proc_cgroup);
    let try_files = |version: Version, dir: PathBuf, names: &[&str]| {
        names.iter().find_map(|name| {
            let file = dir.join(name);
            let value = parse_oom_kill(&fs.read(&file)?)?;
            Some((
                Counter {
                    version,
                    dir: dir.clone(),
                    file,
                },
                value,
            ))
        })
    };
    if let Some(path) = v2 {
        for m in mounts.iter().filter(|m| m.fs_type == "cgroup2") {
            let dir = cgroup_dir(m, &path, fs);
            if let Some(found) = try_files(Version::V2, dir, &["memory.events.local", "memory.events"]) {
                return Some(found);
            }
        }
    }
    if let Some(path) = v1 {
        let is_memory =
            |m: &&Mount| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "memory");
        for m in mounts.iter().filter(is_memory) {
            let dir = cgroup_dir(m, &path, fs);
            if let Some(found) = try_files(Version::V1, dir, &["memory.oom_control"]) {
                return Some(found);
            }
        }
    }
    None
}

/// The `oom_kill N` line of `memory.events` or `memory.oom_control`.
pub fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
}

/// `memory.oom.group`: `1` or `0`.
pub fn parse_oom_group(text: &str) -> Option<bool> {
    match text.trim() {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// The counter's value once the app runs, to compare with at the end.
#[derive(Debug, Clone, Default)]
pub struct OomWatch {
    /// Whether `start` ran (a baseline was looked for).
    taken: bool,
    counter: Option<Counter>,
    baseline: Option<u64>,
}

impl OomWatch {
    /// Locate the counter and read it now. Missing files mean no watch.
    pub fn start() -> OomWatch {
        let fs = RealFs;
        let (Some(cgroup), Some(mountinfo)) = (
            fs.read(Path::new("/proc/self/cgroup")),
            fs.read(Path::new("/proc/self/mountinfo")),
        ) else {
            return OomWatch {
                taken: true,
                ..OomWatch::default()
            };
        };
        let found = find_counter(&parse_mountinfo(&mountinfo), &cgroup, &fs);
        OomWatch {
            taken: true,
            baseline: found.as_ref().map(|(_, value)| *value),
            counter: found.map(|(counter, _)| counter),
        }
    }

    /// Whether the OOM-kill counter is higher now than at start.
    ///
    /// Without a baseline (the app ended within a millisecond, before one was
    /// taken) there is only weaker evidence, and curtain claims an OOM kill
    /// only when all of it points that way: it is PID 1 (a container's cgroup
    /// is as new as its init, so its counter counts this app's kills), the app
    /// died of SIGKILL itself (`by_sigkill`: a process that exits 137 by
    /// itself is no OOM victim, and a reused cgroup's old kills must not
    /// make it one), and the counter is not zero. A subreaper, whose cgroup
    /// may be shared and old, makes no claim.
    pub fn rose(&self, pid1: bool, by_sigkill: bool) -> bool {
        if !self.taken {
            return pid1 && by_sigkill && OomWatch::start().baseline.is_some_and(|now| now > 0);
        }
        match (&self.counter, self.baseline) {
            (Some(c), Some(before)) => read_small(&c.file)
                .and_then(|t| parse_oom_kill(&t))
                .is_some_and(|now| now > before),
            _ => false,
        }
    }

    /// `memory.oom.group` on cgroup v2 (`None` on v1, when unreadable, or
    /// before `start`).
    pub fn oom_group(&self) -> Option<bool> {
        let c = self.counter.as_ref().filter(|c| c.version == Version::V2)?;
        parse_oom_group(&read_small(&c.dir.join("memory.oom.group"))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    // A hybrid host like this VM: v1 controllers plus cgroup2 at unified/.
    const HYBRID_MOUNTINFO: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:21 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:14 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:15 - cgroup cgroup rw,cpu,cpuacct
";
    const HYBRID_CGROUP: &str = "\
12:cpu,cpuacct:/jobs/a
4:memory:/jobs/a
0::/jobs/a
";
    const V2_MOUNTINFO: &str = "30 22 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

    /// A fake filesystem: the given paths exist; files hold a counter.
    struct FakeFs(HashSet<PathBuf>);

    impl Fs for FakeFs {
        fn read(&self, path: &Path) -> Option<String> {
            self.0.contains(path).then(|| "oom_kill 7\n".to_string())
        }
        fn is_dir(&self, path: &Path) -> bool {
            self.0.contains(path)
        }
    }

    fn fs(paths: &[&str]) -> FakeFs {
        FakeFs(paths.iter().map(PathBuf::from).collect())
    }

    struct AnyFs;
    impl Fs for AnyFs {
        fn read(&self, _: &Path) -> Option<String> {
            Some("oom_kill 0\n".into())
        }
        fn is_dir(&self, _: &Path) -> bool {
            true
        }
    }

    #[test]
    fn parses_mountinfo_and_escapes() {
        // Only the cgroup mounts: not / nor the tmpfs under them.
        let m = parse_mountinfo(HYBRID_MOUNTINFO);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].fs_type, "cgroup2");
        assert_eq!(m[0].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(m[1].mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(m[1].super_options, "rw,memory");
        assert_eq!(m[2].fs_type, "cgroup");
        let odd = parse_mountinfo("1 2 0:1 /a\\040b /mnt/with\\040space rw - cgroup2 none rw\n");
        assert_eq!(odd[0].root, "/a b");
        assert_eq!(odd[0].mount_point, PathBuf::from("/mnt/with space"));
        assert!(parse_mountinfo("garbage\n").is_empty());
    }

    #[test]
    fn parses_proc_cgroup_forms() {
        assert_eq!(
            parse_proc_cgroup(HYBRID_CGROUP),
            (Some("/jobs/a".into()), Some("/jobs/a".into()))
        );
        assert_eq!(parse_proc_cgroup("0::/\n"), (Some("/".into()), None));
        assert_eq!(
            parse_proc_cgroup("3:memory,hugetlb:/x\n"),
            (None, Some("/x".into()))
        );
        assert_eq!(parse_proc_cgroup(""), (None, None));
    }

    #[test]
    fn hybrid_host_uses_v1_memory() {
        // unified/ has no memory controller here, so no memory.events file.
        let exists = fs(&[
            "/sys/fs/cgroup/memory/jobs/a",
            "/sys/fs/cgroup/memory/jobs/a/memory.oom_control",
            "/sys/fs/cgroup/unified/jobs/a",
        ]);
        let c = find_counter(&parse_mountinfo(HYBRID_MOUNTINFO), HYBRID_CGROUP, &exists)
            .expect("counter")
            .0;
        assert_eq!(c.version, Version::V1);
        assert_eq!(
            c.file,
            PathBuf::from("/sys/fs/cgroup/memory/jobs/a/memory.oom_control")
        );
    }

    #[test]
    fn v2_prefers_events_local_and_nested_paths() {
        let m = parse_mountinfo(V2_MOUNTINFO);
        let exists = fs(&[
            "/sys/fs/cgroup/kubepods/pod1/c1",
            "/sys/fs/cgroup/kubepods/pod1/c1/memory.events",
            "/sys/fs/cgroup/kubepods/pod1/c1/memory.events.local",
        ]);
        let c = find_counter(&m, "0::/kubepods/pod1/c1\n", &exists)
            .expect("counter")
            .0;
        assert_eq!(c.version, Version::V2);
        assert_eq!(
            c.file,
            PathBuf::from("/sys/fs/cgroup/kubepods/pod1/c1/memory.events.local")
        );
        let exists = fs(&[
            "/sys/fs/cgroup/kubepods/pod1/c1",
            "/sys/fs/cgroup/kubepods/pod1/c1/memory.events",
        ]);
        let c = find_counter(&m, "0::/kubepods/pod1/c1\n", &exists)
            .expect("counter")
            .0;
        assert_eq!(
            c.file,
            PathBuf::from("/sys/fs/cgroup/kubepods/pod1/c1/memory.events")
        );
    }

    #[test]
    fn in_container_falls_back_to_mount_root() {
        // podman on cgroup v1 without a cgroup namespace: the host path is
        // named, but only the container's own cgroup is mounted.
        let mi = "40 30 0:26 / /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n";
        let cg = "7:memory:/libpod_parent/libpod-abc\n";
        let exists = fs(&[
            "/sys/fs/cgroup/memory",
            "/sys/fs/cgroup/memory/memory.oom_control",
        ]);
        let c = find_counter(&parse_mountinfo(mi), cg, &exists)
            .expect("counter")
            .0;
        assert_eq!(c.dir, PathBuf::from("/sys/fs/cgroup/memory"));
        // The same with the mount's root set to the container's cgroup.
        let mi = "40 30 0:26 /libpod_parent/libpod-abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n";
        let c = find_counter(&parse_mountinfo(mi), cg, &exists)
            .expect("counter")
            .0;
        assert_eq!(c.dir, PathBuf::from("/sys/fs/cgroup/memory"));
        // A cgroup namespace: the path is "/".
        let c = find_counter(
            &parse_mountinfo(V2_MOUNTINFO),
            "0::/\n",
            &fs(&["/sys/fs/cgroup", "/sys/fs/cgroup/memory.events"]),
        );
        let (c, value) = c.expect("counter");
        assert_eq!(c.dir, PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(value, 7, "the counter is read as it is found");
    }

    #[test]
    fn missing_files_mean_no_counter() {
        assert_eq!(
            find_counter(&parse_mountinfo(HYBRID_MOUNTINFO), HYBRID_CGROUP, &fs(&[])),
            None
        );
        assert_eq!(find_counter(&[], HYBRID_CGROUP, &AnyFs), None);
        assert_eq!(find_counter(&parse_mountinfo(V2_MOUNTINFO), "", &AnyFs), None);
    }

    #[test]
    fn parses_counters() {
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_oom_kill(events), Some(2));
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n";
        assert_eq!(parse_oom_kill(v1), Some(5));
        assert_eq!(parse_oom_kill("oom_kill_disable 0\n"), None);
        assert_eq!(parse_oom_kill(""), None);
        assert_eq!(parse_oom_group("1\n"), Some(true));
        assert_eq!(parse_oom_group("0\n"), Some(false));
        assert_eq!(parse_oom_group("max\n"), None);
    }
}
