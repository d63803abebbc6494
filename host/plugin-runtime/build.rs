//! Compiles the guest workspace (`plugins/`: built-in and test plugins) to
//! `wasm32-wasip2` components and tells the crate where they are, so that the
//! built-ins can be embedded with `include_bytes!`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let repo = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("repository root");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out: keep the guest
    // build beside it so that it is incremental and shared by every profile.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .unwrap_or(&out_dir)
        .join("plugins");

    for watched in ["plugins", "sdk/wit", "sdk/rust/src", "sdk/rust/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", repo.join(watched).display());
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(repo.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo for the guest workspace");
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        panic!(
            "building the plugins (cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml) failed: \
             see the compiler output above (the wasm32-wasip2 target comes from `rustup target add wasm32-wasip2`)"
        );
    }
    let artifacts = target_dir.join("wasm32-wasip2/release");
    check_artifacts(&artifacts);
    println!(
        "cargo:rustc-env=HORTATOR_PLUGIN_DIR={}",
        artifacts.display()
    );
}

fn check_artifacts(dir: &Path) {
    for name in [
        "bridge",
        "default_scheduler",
        "namespace_lifecycle",
        "limit_ranger",
        "pod_security",
    ] {
        let path = dir.join(format!("{name}.wasm"));
        assert!(
            path.exists(),
            "the guest build did not produce {}",
            path.display()
        );
    }
}
