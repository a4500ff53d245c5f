// Not wired into the CLI yet; the lead connects it when main.rs is rewritten.
#[allow(dead_code, unused_imports)]
mod action;

fn main() {
    println!("{}", sign_action::signing_agent());
}
