//! The pause image: the sandbox container that holds a pod's network namespace. No registry
//! can be assumed, so the agent builds it itself: a single static executable of a few dozen
//! bytes that sleeps in `pause(2)` (`ppoll` on arm64) forever, imported into Docker as a
//! one-file image.

/// Tag of the image the agent builds (`docker import`) when it is missing.
pub const PAUSE_IMAGE: &str = "hortator/pause:1.0";

/// Path of the executable inside the image.
pub const PAUSE_COMMAND: &str = "/pause";

const LOAD_ADDRESS: u64 = 0x40_0000;
const ELF_HEADER_SIZE: u16 = 64;
const PROGRAM_HEADER_SIZE: u16 = 56;

/// Machine code of the pause loop and the ELF machine number.
#[cfg(target_arch = "x86_64")]
fn machine_code() -> (u16, Vec<u8>) {
    // loop: mov eax, 34 (pause); syscall; jmp loop
    (0x3e, vec![0xb8, 0x22, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7])
}

/// Machine code of the pause loop and the ELF machine number.
#[cfg(target_arch = "aarch64")]
fn machine_code() -> (u16, Vec<u8>) {
    // loop: x0..x3 = 0; x8 = 73 (ppoll); svc 0; b loop
    let words: [u32; 7] = [
        0xd280_0000,
        0xd280_0001,
        0xd280_0002,
        0xd280_0003,
        0xd280_0928,
        0xd400_0001,
        0x17ff_fffa,
    ];
    (0xb7, words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

/// The pause executable: one ELF header, one loadable segment, the loop.
pub fn executable() -> Vec<u8> {
    let (machine, code) = machine_code();
    let header_size = u64::from(ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE);
    let total = header_size + code.len() as u64;
    let mut elf = Vec::with_capacity(total as usize);
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&machine.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&(LOAD_ADDRESS + header_size).to_le_bytes()); // entry
    elf.extend_from_slice(&u64::from(ELF_HEADER_SIZE).to_le_bytes()); // program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    elf.extend_from_slice(&ELF_HEADER_SIZE.to_le_bytes());
    elf.extend_from_slice(&PROGRAM_HEADER_SIZE.to_le_bytes());
    elf.extend_from_slice(&1u16.to_le_bytes()); // one program header
    elf.extend_from_slice(&64u16.to_le_bytes()); // section header size
    elf.extend_from_slice(&0u16.to_le_bytes());
    elf.extend_from_slice(&0u16.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R + X
    elf.extend_from_slice(&0u64.to_le_bytes()); // from file offset 0
    elf.extend_from_slice(&LOAD_ADDRESS.to_le_bytes());
    elf.extend_from_slice(&LOAD_ADDRESS.to_le_bytes());
    elf.extend_from_slice(&total.to_le_bytes());
    elf.extend_from_slice(&total.to_le_bytes());
    elf.extend_from_slice(&0x1000u64.to_le_bytes());
    elf.extend_from_slice(&code);
    elf
}

/// A tar archive holding only the pause executable, for `docker import`.
pub fn image_tar() -> std::io::Result<Vec<u8>> {
    let binary = executable();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(binary.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(
        &mut header,
        PAUSE_COMMAND.trim_start_matches('/'),
        &binary[..],
    )?;
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_is_a_static_elf_that_loads_itself() {
        let elf = executable();
        assert_eq!(&elf[..4], b"\x7fELF");
        let entry = u64::from_le_bytes(elf[24..32].try_into().unwrap());
        assert_eq!(entry, LOAD_ADDRESS + 120);
        let filesz = u64::from_le_bytes(elf[64 + 32..64 + 40].try_into().unwrap());
        assert_eq!(filesz, elf.len() as u64);
    }

    #[test]
    fn the_executable_runs_until_killed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause");
        std::fs::write(&path, executable()).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut child = std::process::Command::new(&path).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(child.try_wait().unwrap().is_none(), "pause exited early");
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
    }

    #[test]
    fn the_tar_holds_one_executable() {
        let tar = image_tar().unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries, vec![("pause".to_string(), 0o755)]);
    }
}
