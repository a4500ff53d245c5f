fn main() {
    println!("{}", sign_action::signing_agent());
}
