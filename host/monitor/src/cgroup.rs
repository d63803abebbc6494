//! A container's CPU and memory from its cgroup: `cpu.stat`, `memory.current` and
//! `memory.stat` on the unified hierarchy (v2); `cpuacct.usage`, `memory.usage_in_bytes` and
//! `memory.stat` on v1. The cgroup is found from `/proc/<pid>/cgroup`.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The cgroup hierarchy mounted at a root (normally `/sys/fs/cgroup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hierarchy {
    /// Unified (v2): one tree.
    V2(PathBuf),
    /// v1 (or hybrid): one tree per controller, `<root>/<controller>`.
    V1(PathBuf),
}

impl Hierarchy {
    /// Which hierarchy is mounted at `root`.
    pub fn detect(root: &Path) -> Hierarchy {
        if root.join("cgroup.controllers").exists() {
            Hierarchy::V2(root.to_path_buf())
        } else {
            Hierarchy::V1(root.to_path_buf())
        }
    }

    /// The files of the cgroup a process is in, from its `/proc/<pid>/cgroup` text.
    pub fn locate(&self, proc_cgroup: &str) -> Option<CgroupFiles> {
        match self {
            Hierarchy::V2(root) => {
                let path = proc_cgroup
                    .lines()
                    .find_map(|line| line.strip_prefix("0::"))?;
                Some(CgroupFiles::V2(join(root, path)))
            }
            Hierarchy::V1(root) => Some(CgroupFiles::V1 {
                cpuacct: v1_dir(root, proc_cgroup, "cpuacct")?,
                memory: v1_dir(root, proc_cgroup, "memory")?,
            }),
        }
    }
}

fn join(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// `<root>/<controllers>/<path>` for the line naming `controller` (`4:memory:/docker/…`, or
/// `2:cpu,cpuacct:/…` mounted as `cpu,cpuacct`, or as `cpuacct` alone).
fn v1_dir(root: &Path, proc_cgroup: &str, controller: &str) -> Option<PathBuf> {
    proc_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        if !controllers.split(',').any(|c| c == controller) {
            return None;
        }
        let combined = join(&root.join(controllers), path);
        if controllers != controller && !combined.exists() {
            return Some(join(&root.join(controller), path));
        }
        Some(combined)
    })
}

/// Where a container's accounting files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupFiles {
    /// The cgroup's directory in the unified tree.
    V2(PathBuf),
    /// The cgroup's directories in the `cpuacct` and `memory` trees.
    V1 {
        /// `cpuacct` directory.
        cpuacct: PathBuf,
        /// `memory` directory.
        memory: PathBuf,
    },
}

/// One reading of a cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Cumulative CPU time, ns.
    pub cpu_ns: u64,
    /// Memory in use, page cache included.
    pub memory_bytes: u64,
    /// Usage minus inactive file pages.
    pub working_set_bytes: u64,
    /// Anonymous memory.
    pub rss_bytes: u64,
}

impl CgroupFiles {
    /// Read the cgroup's usage; `buf` is reused between calls.
    pub fn read(&self, buf: &mut String) -> std::io::Result<Usage> {
        match self {
            CgroupFiles::V2(dir) => {
                read_into(&dir.join("cpu.stat"), buf)?;
                let cpu_ns = stat_value(buf, "usage_usec").unwrap_or(0) * 1000;
                read_into(&dir.join("memory.current"), buf)?;
                let memory_bytes = parse_u64(buf);
                read_into(&dir.join("memory.stat"), buf)?;
                Ok(Usage {
                    cpu_ns,
                    memory_bytes,
                    working_set_bytes: memory_bytes
                        .saturating_sub(stat_value(buf, "inactive_file").unwrap_or(0)),
                    rss_bytes: stat_value(buf, "anon").unwrap_or(0),
                })
            }
            CgroupFiles::V1 { cpuacct, memory } => {
                read_into(&cpuacct.join("cpuacct.usage"), buf)?;
                let cpu_ns = parse_u64(buf);
                read_into(&memory.join("memory.usage_in_bytes"), buf)?;
                let memory_bytes = parse_u64(buf);
                read_into(&memory.join("memory.stat"), buf)?;
                // Hierarchical totals (children included) where the kernel has them.
                let v1 = |total: &str, own: &str| {
                    stat_value(buf, total).or_else(|| stat_value(buf, own))
                };
                Ok(Usage {
                    cpu_ns,
                    memory_bytes,
                    working_set_bytes: memory_bytes
                        .saturating_sub(v1("total_inactive_file", "inactive_file").unwrap_or(0)),
                    rss_bytes: v1("total_rss", "rss").unwrap_or(0)
                        + v1("total_swapcached", "swapcached").unwrap_or(0),
                })
            }
        }
    }
}

/// Replace `buf` with the file's content (one read of a small pseudo-file).
pub(crate) fn read_into(path: &Path, buf: &mut String) -> std::io::Result<()> {
    buf.clear();
    std::fs::File::open(path)?.read_to_string(buf)?;
    Ok(())
}

/// A file holding one number (`max` and garbage read as 0).
pub(crate) fn parse_u64(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

/// The value of `key` in `key value` lines (`memory.stat`, `cpu.stat`).
pub(crate) fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_PROC: &str = "12:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/system.slice\n";
    const V1_MEMORY_STAT: &str = "cache 1798144\nrss 49152\ninactive_file 1667072\n\
        swapcached 0\ntotal_cache 1798144\ntotal_rss 104857600\ntotal_swapcached 4096\n\
        total_inactive_file 1000000\n";
    const V2_CPU_STAT: &str = "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n\
        nr_periods 0\n";
    const V2_MEMORY_STAT: &str = "anon 104857600\nfile 2000000\nkernel 300000\n\
        inactive_anon 0\nactive_anon 104857600\ninactive_file 1500000\nactive_file 500000\n";

    #[test]
    fn v2_cgroup_is_the_unified_line() {
        let hierarchy = Hierarchy::V2("/sys/fs/cgroup".into());
        let files = hierarchy
            .locate("0::/system.slice/docker-abc.scope\n")
            .unwrap();
        assert_eq!(
            files,
            CgroupFiles::V2("/sys/fs/cgroup/system.slice/docker-abc.scope".into())
        );
        assert_eq!(hierarchy.locate("4:memory:/x\n"), None);
    }

    #[test]
    fn v1_cgroup_is_found_per_controller() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("cpu,cpuacct/docker/abc")).unwrap();
        let files = Hierarchy::V1(root.path().into()).locate(V1_PROC).unwrap();
        assert_eq!(
            files,
            CgroupFiles::V1 {
                cpuacct: root.path().join("cpu,cpuacct/docker/abc"),
                memory: root.path().join("memory/docker/abc"),
            }
        );
        // Controllers mounted on their own (`cpuacct`, not `cpu,cpuacct`).
        let alone = tempfile::tempdir().unwrap();
        let CgroupFiles::V1 { cpuacct, .. } =
            Hierarchy::V1(alone.path().into()).locate(V1_PROC).unwrap()
        else {
            panic!("v1 expected")
        };
        assert_eq!(cpuacct, alone.path().join("cpuacct/docker/abc"));
    }

    #[test]
    fn stat_values_parse() {
        assert_eq!(stat_value(V2_CPU_STAT, "usage_usec"), Some(2_500_000));
        assert_eq!(stat_value(V2_CPU_STAT, "usage"), None);
        assert_eq!(stat_value(V1_MEMORY_STAT, "total_rss"), Some(104_857_600));
        assert_eq!(parse_u64("41821557\n"), 41_821_557);
        assert_eq!(parse_u64("max\n"), 0);
    }

    #[test]
    fn v1_files_read_hierarchical_totals() {
        let root = tempfile::tempdir().unwrap();
        let (cpuacct, memory) = (root.path().join("cpuacct"), root.path().join("memory"));
        std::fs::create_dir_all(&cpuacct).unwrap();
        std::fs::create_dir_all(&memory).unwrap();
        std::fs::write(cpuacct.join("cpuacct.usage"), "41821557\n").unwrap();
        std::fs::write(memory.join("memory.usage_in_bytes"), "110000000\n").unwrap();
        std::fs::write(memory.join("memory.stat"), V1_MEMORY_STAT).unwrap();
        let usage = CgroupFiles::V1 { cpuacct, memory }
            .read(&mut String::new())
            .unwrap();
        assert_eq!(
            usage,
            Usage {
                cpu_ns: 41_821_557,
                memory_bytes: 110_000_000,
                working_set_bytes: 109_000_000,
                rss_bytes: 104_861_696,
            }
        );
    }

    #[test]
    fn v2_files_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cpu.stat"), V2_CPU_STAT).unwrap();
        std::fs::write(dir.path().join("memory.current"), "107000000\n").unwrap();
        std::fs::write(dir.path().join("memory.stat"), V2_MEMORY_STAT).unwrap();
        let usage = CgroupFiles::V2(dir.path().into())
            .read(&mut String::new())
            .unwrap();
        assert_eq!(
            usage,
            Usage {
                cpu_ns: 2_500_000_000,
                memory_bytes: 107_000_000,
                working_set_bytes: 105_500_000,
                rss_bytes: 104_857_600,
            }
        );
    }
}
