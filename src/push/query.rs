//! The query string WeChat puts on a push URL: `signature`, `timestamp`,
//! `nonce`, and `echostr` on the URL check, `encrypt_type=aes` and
//! `msg_signature` in safe mode, `openid` on messages. Other keys are ignored.

use crate::error::{Error, Result};

/// Longest query string read.
const MAX_QUERY_BYTES: usize = 4096;

/// The parameters of one push request, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushQuery {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub echostr: Option<String>,
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
    pub openid: Option<String>,
}

impl PushQuery {
    /// Reads `a=1&b=2` (a leading `?` is allowed). A signed parameter given
    /// twice is refused: which one WeChat meant would be a guess.
    pub fn parse(query: &str) -> Result<PushQuery> {
        if query.len() > MAX_QUERY_BYTES {
            return Err(Error::invalid(format!(
                "query_string is longer than {MAX_QUERY_BYTES} bytes"
            )));
        }
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut q = PushQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(k)?;
            let slot = match key.as_str() {
                "signature" => &mut q.signature,
                "timestamp" => &mut q.timestamp,
                "nonce" => &mut q.nonce,
                "echostr" => &mut q.echostr,
                "encrypt_type" => &mut q.encrypt_type,
                "msg_signature" => &mut q.msg_signature,
                "openid" => &mut q.openid,
                _ => continue,
            };
            if slot.is_some() {
                return Err(Error::invalid(format!("query_string gives `{key}` twice")));
            }
            *slot = Some(decode(v)?);
        }
        Ok(q)
    }

    /// A parameter the request cannot do without.
    pub fn need<'a>(&self, value: &'a Option<String>, name: &str) -> Result<&'a str> {
        value
            .as_deref()
            .ok_or_else(|| Error::invalid(format!("query_string has no `{name}`")))
    }
}

/// Percent-decoding as in a form (`+` is a space); the result must be UTF-8.
fn decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::invalid("query_string has a bad %-escape"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| Error::invalid("query_string decodes to text that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_wechat_sends() {
        let q = PushQuery::parse(
            "?signature=abc&timestamp=1700000000&nonce=n%2B1&openid=o+1&encrypt_type=aes&msg_signature=def&other=x",
        )
        .unwrap();
        assert_eq!(q.signature.as_deref(), Some("abc"));
        assert_eq!(q.nonce.as_deref(), Some("n+1"));
        assert_eq!(q.openid.as_deref(), Some("o 1"));
        assert_eq!(q.encrypt_type.as_deref(), Some("aes"));
        assert_eq!(q.msg_signature.as_deref(), Some("def"));
        assert_eq!(q.echostr, None);
        assert!(q
            .need(&q.echostr, "echostr")
            .unwrap_err()
            .to_string()
            .contains("no `echostr`"));
        assert_eq!(PushQuery::parse("").unwrap(), PushQuery::default());
    }

    #[test]
    fn refuses_ambiguous_or_broken_queries() {
        let msg = |s: &str| PushQuery::parse(s).unwrap_err().to_string();
        assert!(msg("nonce=1&nonce=2").contains("`nonce` twice"));
        assert!(msg("nonce=%zz").contains("bad %-escape"));
        assert!(msg("nonce=%4").contains("bad %-escape"));
        assert!(msg("nonce=%ff").contains("not UTF-8"));
        assert!(msg(&"a".repeat(5000)).contains("longer than"));
    }
}
