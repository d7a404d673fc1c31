//! Puts memory.x where cortex-m-rt's link.x finds it and links with cortex-m-rt's and
//! defmt's linker scripts.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("memory.x beside build.rs");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    // A GNU build-id, kept in flash where the firmware reads it (`build_id()`) to write it
    // into every dump header: `flightrec decode --elf` checks the ELF against it.
    fs::write(
        out.join("build-id.x"),
        "SECTIONS {\n  .note.gnu.build-id : ALIGN(4) {\n    __flightrec_build_id_start = .;\n    KEEP(*(.note.gnu.build-id));\n    __flightrec_build_id_end = .;\n  } > FLASH\n} INSERT AFTER .rodata;\n",
    )
    .expect("write build-id.x");
    println!("cargo:rustc-link-arg-bins=--build-id=sha1");
    println!("cargo:rustc-link-arg-bins=-Tbuild-id.x");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}
