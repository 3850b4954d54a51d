// Rebuild when the built-in scenarios, their SQL or the benchmark scripts change (they are
// compiled into the binary).
fn main() {
    println!("cargo:rerun-if-changed=scenarios");
    println!("cargo:rerun-if-changed=sql");
    println!("cargo:rerun-if-changed=bench");
}
