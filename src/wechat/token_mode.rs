//! How an app's access token is obtained. Its own module because the app
//! registry (which holds each app's token cache) and the token cache both
//! need it: kept in the registry's file, the two imported each other.

use serde::{Deserialize, Serialize};

/// How the crate obtains the app's access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenMode {
    /// `POST /cgi-bin/stable_token`: every caller gets the same token while it is valid.
    #[default]
    Stable,
    /// `GET /cgi-bin/token`: each fetch makes a new token.
    Classic,
    /// Never fetched: the host supplies it with `set_access_token`.
    External,
}

impl TokenMode {
    /// The mode as `register_app` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenMode::Stable => "stable",
            TokenMode::Classic => "classic",
            TokenMode::External => "external",
        }
    }
}
