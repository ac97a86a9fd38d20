//! Build script: record the git commit curtain is built from, for
//! `--version` (a container runtime's `docker info` shows it). No git, or
//! no repository (a source tarball): "unknown".

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CURTAIN_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves (a commit, a checkout).
    if let Some(dir) = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
    {
        let dir = dir.trim();
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/refs/heads");
    }
    println!("cargo:rerun-if-changed=build.rs");
    symbol_order();
}

/// Hot functions first (scripts/build-static.sh): with CURTAIN_SYMBOL_ORDER
/// naming a file, the binary is linked with that function order and a link
/// map is written next to it (`<file>.map`, the script's input for the next
/// order). rust-lld only, the default linker of rustc 1.90 and later; the
/// script sets the variable only then. The binary is relinked whenever the
/// file's content changes.
fn symbol_order() {
    println!("cargo:rerun-if-env-changed=CURTAIN_SYMBOL_ORDER");
    let Some(order) = std::env::var_os("CURTAIN_SYMBOL_ORDER").filter(|v| !v.is_empty()) else {
        return;
    };
    let order = order.to_string_lossy();
    println!("cargo:rerun-if-changed={order}");
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={order}");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    println!("cargo:rustc-link-arg-bins=-Wl,-Map={order}.map");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-demangle");
    // The static binary's jumps to the CPU-specific string functions
    // (IFUNC, `.iplt`) and the C runtime's `.init` go at the start of the
    // code, before the hot functions: the linker puts them after all the
    // code, and the first call through one then maps the last 100 KiB of
    // the binary.
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
    let script = std::path::Path::new(&out).join("iplt-first.ld");
    if std::fs::write(
        &script,
        "SECTIONS { .iplt : { *(.iplt) } .init : { KEEP(*(SORT_NONE(.init))) } } INSERT BEFORE .text;\n",
    )
    .is_ok()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
