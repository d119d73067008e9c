fn main() {
    println!("cdw {}", env!("CARGO_PKG_VERSION"));
}
