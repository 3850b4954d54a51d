// Rebuild when the built-in scenarios or their SQL change (they are compiled into the binary).
fn main() {
    println!("cargo:rerun-if-changed=scenarios");
    println!("cargo:rerun-if-changed=sql");
}
