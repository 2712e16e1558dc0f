fn main() {
    println!("varsr");
}
