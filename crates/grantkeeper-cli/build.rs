//! Links the binaries as position-dependent executables: no start-up relocations, so
//! `grantkeeper token` starts faster (scripts call it in loops).

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
