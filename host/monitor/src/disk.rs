//! Disk usage of a directory tree, as `du` counts it: allocated blocks (not apparent sizes)
//! and inodes, each hard-linked file once, without following symbolic links or crossing into
//! other filesystems.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Space and inodes a tree uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DiskUsage {
    /// Bytes of allocated blocks.
    pub bytes: u64,
    /// Inodes: every file, directory and link, the root included.
    pub inodes: u64,
}

/// Walk the tree at `root`. Entries that vanish during the walk are skipped; an unreadable
/// root is an error.
pub(crate) fn usage(root: &Path) -> std::io::Result<DiskUsage> {
    std::fs::symlink_metadata(root)?;
    let mut total = DiskUsage::default();
    let mut linked = HashSet::new();
    for entry in walkdir::WalkDir::new(root).same_file_system(true) {
        let Ok(entry) = entry else { continue };
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if metadata.nlink() > 1
            && !metadata.is_dir()
            && !linked.insert((metadata.dev(), metadata.ino()))
        {
            continue;
        }
        total.bytes += metadata.blocks() * 512;
        total.inodes += 1;
    }
    Ok(total)
}

/// The size of a file and of its rotated siblings (`<file>.1`, `<file>.2`, …), as Docker's
/// json-file driver keeps them; a missing file counts as empty.
pub(crate) fn log_usage(file: &Path) -> DiskUsage {
    let mut total = DiskUsage::default();
    let mut add = |path: &Path| match std::fs::metadata(path) {
        Ok(metadata) => {
            total.bytes += metadata.blocks() * 512;
            total.inodes += 1;
            true
        }
        Err(_) => false,
    };
    add(file);
    let mut rotated = file.as_os_str().to_owned();
    for n in 1.. {
        rotated.clear();
        rotated.push(file.as_os_str());
        rotated.push(format!(".{n}"));
        if !add(Path::new(&rotated)) {
            break;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_and_inodes_and_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let empty = usage(dir.path()).unwrap();
        assert_eq!(empty.inodes, 1);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), vec![1u8; 1 << 20]).unwrap();
        std::fs::hard_link(dir.path().join("sub/a"), dir.path().join("b")).unwrap();
        std::os::unix::fs::symlink("/usr", dir.path().join("link")).unwrap();
        let used = usage(dir.path()).unwrap();
        // root, sub, a (b is the same inode), link — the link is not followed.
        assert_eq!(used.inodes, 4);
        let file = 1 << 20;
        assert!(
            used.bytes >= file && used.bytes < file + (1 << 16),
            "{used:?}"
        );
        assert!(usage(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn logs_include_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        assert_eq!(log_usage(&log), DiskUsage::default());
        std::fs::write(&log, vec![b'x'; 10_000]).unwrap();
        std::fs::write(dir.path().join("c-json.log.1"), vec![b'x'; 10_000]).unwrap();
        std::fs::write(dir.path().join("c-json.log.3"), vec![b'x'; 10_000]).unwrap();
        let used = log_usage(&log);
        assert_eq!(used.inodes, 2, "{used:?}");
        assert!(used.bytes >= 20_000, "{used:?}");
    }
}
