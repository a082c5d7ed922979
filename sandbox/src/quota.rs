//! WeChat's daily API quotas as `openapi/quota/get` reports them, and their
//! reset by `clear_quota/v2`: calls counted per app and API path on China
//! days, ten resets a month (docs/spec/wechat.md, fidelity round three).

use std::collections::HashMap;

use fashop_notify::{china_day, civil_date};
use serde_json::{json, Value};

/// Resets a month through `clear_quota` and `clear_quota/v2` together.
pub(crate) const RESETS_A_MONTH: u32 = 10;

/// The daily limits the sandbox reports. The token limit is what mini
/// programs report (10,000); the others are the sandbox's choice (WeChat's
/// depend on the account: unverified).
const LIMITS: &[(&str, u64)] = &[
    ("/cgi-bin/token", 10_000),
    ("/cgi-bin/stable_token", 10_000),
    ("/cgi-bin/message/subscribe/send", 100_000),
    ("/cgi-bin/message/wxopen/template/send", 100_000),
    ("/wxaapi/newtmpl/gettemplate", 10_000),
    ("/wxaapi/newtmpl/addtemplate", 10_000),
    ("/wxaapi/newtmpl/deltemplate", 10_000),
    ("/wxaapi/newtmpl/getcategory", 10_000),
    ("/wxaapi/newtmpl/getpubtemplatetitles", 10_000),
    ("/wxaapi/newtmpl/getpubtemplatekeywords", 10_000),
    ("/cgi-bin/openapi/quota/get", 1_000),
];

/// An errcode and its errmsg, for the server to answer.
pub(crate) type Refusal = (i64, &'static str);

/// Per app: calls of each path on one China day, and resets in one month.
#[derive(Default)]
pub(crate) struct Quotas {
    used: HashMap<(String, String), (i64, u64)>,
    resets: HashMap<String, (i64, u32)>,
}

/// Year * 12 + month of a China day (days since 1970-01-01).
fn china_month(day: i64) -> i64 {
    let (year, month, _) = civil_date(day);
    year * 12 + month
}

impl Quotas {
    /// One call of `path` by `appid`.
    pub(crate) fn count(&mut self, appid: &str, path: &str, now_ms: i64) {
        if !LIMITS.iter().any(|(p, _)| *p == path) {
            return;
        }
        let today = china_day(now_ms);
        let slot = self
            .used
            .entry((appid.to_string(), path.to_string()))
            .or_insert((today, 0));
        if slot.0 != today {
            *slot = (today, 0);
        }
        slot.1 += 1;
    }

    /// `openapi/quota/get`: 76003 for a path that is not one (a full URL, no
    /// leading `/`), 76022 for `/sns/` APIs, 76021 for an unknown one.
    pub(crate) fn get(&self, appid: &str, cgi_path: &str, now_ms: i64) -> Result<Value, Refusal> {
        if !cgi_path.starts_with('/') {
            return Err((76003, "invalid cgi_path"));
        }
        if cgi_path.contains("/sns/") {
            return Err((76022, "cgi_path not support"));
        }
        let Some((_, limit)) = LIMITS.iter().find(|(p, _)| *p == cgi_path) else {
            return Err((76021, "cgi_path not found, please check"));
        };
        let used = match self.used.get(&(appid.to_string(), cgi_path.to_string())) {
            Some((day, n)) if *day == china_day(now_ms) => *n,
            _ => 0,
        };
        Ok(json!({"errcode": 0, "errmsg": "ok",
            "quota": {"daily_limit": limit, "used": used, "remain": limit.saturating_sub(used)}}))
    }

    /// A reset of every daily count of `appid`; 48006 past ten this month.
    pub(crate) fn clear(&mut self, appid: &str, now_ms: i64) -> Result<(), Refusal> {
        let month = china_month(china_day(now_ms));
        let slot = self.resets.entry(appid.to_string()).or_insert((month, 0));
        if slot.0 != month {
            *slot = (month, 0);
        }
        if slot.1 >= RESETS_A_MONTH {
            return Err((48006, "forbid to clear quota because of reaching the limit"));
        }
        slot.1 += 1;
        self.used.retain(|(a, _), _| a != appid);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_days_are_chinas() {
        // 2026-11-30 16:00 UTC is 2026-12-01 00:00 in China.
        let ms = 1_796_054_400_000;
        assert_eq!(china_month(china_day(ms)), 2026 * 12 + 12);
        assert_eq!(china_month(china_day(ms - 1)), 2026 * 12 + 11);
        assert_eq!(china_month(0), 1970 * 12 + 1);
    }

    #[test]
    fn counts_reset_by_day_and_by_clear_up_to_ten_a_month() {
        let mut q = Quotas::default();
        let now = 1_796_054_400_000;
        let path = "/cgi-bin/message/subscribe/send";
        q.count("wx1", path, now);
        q.count("wx1", path, now);
        q.count("wx2", path, now);
        let v = q.get("wx1", path, now).unwrap();
        assert_eq!(v["quota"]["used"], 2);
        assert_eq!(v["quota"]["remain"], 100_000 - 2);
        assert_eq!(
            q.get("wx1", path, now + 86_400_000).unwrap()["quota"]["used"],
            0
        );
        assert_eq!(
            q.get("wx1", "https://api.weixin.qq.com/x", now)
                .unwrap_err()
                .0,
            76003
        );
        assert_eq!(
            q.get("wx1", "/sns/jscode2session", now).unwrap_err().0,
            76022
        );
        assert_eq!(q.get("wx1", "/cgi-bin/nope", now).unwrap_err().0, 76021);
        for _ in 0..RESETS_A_MONTH {
            q.clear("wx1", now).unwrap();
        }
        assert_eq!(q.get("wx1", path, now).unwrap()["quota"]["used"], 0);
        assert_eq!(q.get("wx2", path, now).unwrap()["quota"]["used"], 1);
        assert_eq!(q.clear("wx1", now).unwrap_err().0, 48006);
        // The next month brings ten more.
        assert!(q.clear("wx1", now + 31 * 86_400_000).is_ok());
    }
}
