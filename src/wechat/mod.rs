//! The WeChat client: registered apps and their access tokens, calls that
//! carry a token, the errcode policy, and the HTTP transport underneath.

mod apps;
pub mod client;
pub mod errcodes;
pub mod http;
pub mod token_cache;
mod token_mode;

/// The sandbox checks appids by the same rule.
#[cfg(feature = "sandbox")]
pub use apps::check_appid;
pub use apps::{App, AppRegistry, AppSpec, Grants, Registered};
pub use token_mode::TokenMode;
