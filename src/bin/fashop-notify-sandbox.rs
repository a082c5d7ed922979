//! The WeChat sandbox server.
fn main() {
    eprintln!("fashop-notify-sandbox: not built yet");
    std::process::exit(2);
}
