//! What every WeChat errcode means to this crate, in one table: for a send
//! (direct or from the outbox), for an outbox message that waits, for the
//! access token, and the hint a person gets. No other library file names an
//! errcode number (docs/spec/wechat.md, error codes and access token).

/// The errcodes that mean "this access token is not (or no longer) valid".
pub const TOKEN_ERRCODES: [i64; 3] = [40001, 40014, 42001];

/// The errcode recorded for a message whose request may have gone out but got
/// no answer (WeChat's own "system busy" code: nothing more is known).
pub(crate) const UNANSWERED: i64 = -1;

/// What the send does with one WeChat answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Delivered: consume the permit.
    Sent,
    /// The user has no subscription left: the grant is gone, consume it.
    Refused,
    /// Transient: retry after `backoff_ms` (doubling each time), then fail and
    /// give the permit back.
    Retry { backoff_ms: u64 },
    /// This form_id / prepay_id is dead: discard it and try the user's next
    /// permit (never a subscribe grant, which is a count of uses).
    NextPermit,
    /// The API's per-minute quota is spent ("retry next minute"): retrying
    /// within the call only wastes calls and holds up the request. Give the
    /// permit back; the outcome says to retry from the next minute.
    NextMinute,
    /// Give the permit back and report WeChat's error.
    Fail,
}

/// A quota WeChat counts per app: an outbox message that meets it waits for
/// it to come back, without counting an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// The per-minute quota of the API.
    Minute,
    /// The daily quota, reset at midnight China time (unverified).
    Day,
}

/// How long a failed token fetch is not repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPause {
    /// The short default pause (`token_cache::FETCH_BACKOFF_MS`).
    Short,
    /// Until the daily quota is back: the next midnight China time.
    UntilMidnight,
    /// Until a person acted in mp.weixin.qq.com: seconds at first, doubling
    /// with each failed fetch up to ten minutes (`token_cache::backoff_until`).
    TenMinutes,
    /// What WeChat itself says to wait.
    Hour,
    Day,
    /// Wrong credentials: until the app is registered again.
    Forever,
}

/// What a person should look at after a failed send, where WeChat's errmsg
/// does not say it (`notifier::send` words it with the event's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    None,
    MinuteQuota,
    Blacklisted,
    /// Only for a legacy template message.
    RetiredTemplateApi,
    UnknownTemplate,
    UnknownPage,
    MappingMismatch,
    /// The account's or the template's subscribe capability is banned
    /// (counted apart in metrics: no send of that template can succeed).
    CapabilityBanned,
    /// The mini program lacks the permission for this API.
    ApiUnauthorized,
    /// The body is not what the API reads: a bug of the request, never retried.
    BodyFormat,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meaning {
    pub send: Policy,
    /// Worth another outbox attempt later (counted), when the send gave up.
    pub retry_later: bool,
    /// Not the message's fault (WeChat busy, a quota, this server's
    /// credentials or IP): a send asked to (`"on_failure": "enqueue"`) keeps
    /// the message in the outbox to be sent once the cause is gone.
    pub not_the_message: bool,
    pub quota: Option<Quota>,
    pub fetch_pause: FetchPause,
    /// Appended to a failed token fetch's message.
    pub fetch_advice: &'static str,
    pub hint: Hint,
}

const OTHER: Meaning = Meaning {
    send: Policy::Fail,
    retry_later: false,
    not_the_message: false,
    quota: None,
    fetch_pause: FetchPause::Short,
    fetch_advice: "",
    hint: Hint::None,
};

const fn hint(hint: Hint) -> Meaning {
    Meaning { hint, ..OTHER }
}

/// A code a token fetch answers: the server's credentials, IP or quota, never
/// the message.
const fn fetch(fetch_pause: FetchPause, fetch_advice: &'static str) -> Meaning {
    Meaning {
        fetch_pause,
        fetch_advice,
        not_the_message: true,
        ..OTHER
    }
}

const BAD_CREDENTIALS: Meaning = fetch(
    FetchPause::Forever,
    ": the appid or secret is wrong or frozen; fetches stop until the app is registered again with the right ones",
);

/// The table. A code not in it is `OTHER`: the send fails and gives the permit back.
#[rustfmt::skip]
const TABLE: &[(i64, Meaning)] = &[
    (0, Meaning { send: Policy::Sent, ..OTHER }),
    (-1, Meaning { send: Policy::Retry { backoff_ms: 200 }, retry_later: true, not_the_message: true, ..OTHER }),
    (40013, BAD_CREDENTIALS),
    (40037, hint(Hint::UnknownTemplate)),
    // 43107 (subscribeMessage.send's list, next to 43108 and 45168), 47001
    // and 48001 (global codes): failures a retry cannot mend.
    (43107, hint(Hint::CapabilityBanned)),
    (47001, hint(Hint::BodyFormat)),
    (48001, hint(Hint::ApiUnauthorized)),
    (40125, BAD_CREDENTIALS),
    (40164, fetch(
        FetchPause::TenMinutes,
        ": this server's IP is not on the app's IP whitelist; add it in mp.weixin.qq.com (开发管理 → 开发设置 → IP白名单); fetches pause 5 s, doubling up to 10 minutes (invalidate_token retries at once)",
    )),
    (40243, BAD_CREDENTIALS),
    (41028, Meaning { send: Policy::NextPermit, ..OTHER }),
    (41029, Meaning { send: Policy::NextPermit, ..OTHER }),
    (41030, hint(Hint::UnknownPage)),
    (43101, Meaning { send: Policy::Refused, ..OTHER }),
    (43108, Meaning { send: Policy::Retry { backoff_ms: 100 }, retry_later: true, not_the_message: true, ..OTHER }),
    (45009, Meaning {
        quota: Some(Quota::Day),
        ..fetch(
            FetchPause::UntilMidnight,
            ": the daily token quota is spent; fetches pause until midnight China time (the reset time is unverified); a person may reset it with clear_quota/v2 (POST /cgi-bin/clear_quota/v2 with appid and appsecret: it needs no access token; 10 resets a month, then 48006), and openapi/quota/get (fashop_notify_api_quota) shows an API's daily limit and use",
        )
    }),
    (45011, Meaning {
        send: Policy::NextMinute,
        retry_later: true,
        not_the_message: true,
        quota: Some(Quota::Minute),
        hint: Hint::MinuteQuota,
        ..OTHER
    }),
    (45103, hint(Hint::RetiredTemplateApi)),
    (45109, hint(Hint::RetiredTemplateApi)),
    (45168, hint(Hint::Blacklisted)),
    (47003, hint(Hint::MappingMismatch)),
    (89503, fetch(
        FetchPause::TenMinutes,
        ": the app's admin must approve calls from this server's IP (WeChat asks the admin to confirm); fetches pause 5 s, doubling up to 10 minutes (invalidate_token retries at once)",
    )),
    (89506, fetch(
        FetchPause::Day,
        ": the app's admin refused calls from this server's IP; ask the admin to approve it; WeChat says retry after 24 hours",
    )),
    (89507, fetch(
        FetchPause::Hour,
        ": the app's admin refused calls from this server's IP; ask the admin to approve it; WeChat says retry after 1 hour",
    )),
];

/// What `errcode` means.
pub fn meaning(errcode: i64) -> Meaning {
    TABLE
        .iter()
        .find(|(code, _)| *code == errcode)
        .map_or(OTHER, |(_, m)| *m)
}

/// Every errcode the table gives a meaning (0 aside): what the soak injects.
pub fn every_errcode() -> impl Iterator<Item = i64> {
    TABLE.iter().map(|(code, _)| *code).filter(|c| *c != 0)
}

/// What the send does with `errcode`.
pub fn policy_for(errcode: i64) -> Policy {
    meaning(errcode).send
}

/// Whether `errcode` says the access token is not valid.
pub fn is_token_error(errcode: i64) -> bool {
    TOKEN_ERRCODES.contains(&errcode)
}

/// What a service card update (`/wxa/set_user_notify`) does with one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardPolicy {
    /// WeChat took the status.
    Applied,
    /// Transient: post again after `backoff_ms` (doubling), then later.
    Retry { backoff_ms: u64 },
    /// The transaction id is not checkable yet: kept in the outbox and tried
    /// again (WeChat: "notify_code 不存在" right after payment, retry after a
    /// minute).
    Defer,
    /// The buyer refused this order's card: no more updates, no error.
    Stopped,
    /// Refused for good.
    Fail,
}

/// The card table: each code's policy and what a person should check
/// (docs/spec/wechat.md, service cards). A code not in it fails.
#[rustfmt::skip]
const CARD_TABLE: &[(i64, CardPolicy, &str)] = &[
    (0, CardPolicy::Applied, ""),
    (-1, CardPolicy::Retry { backoff_ms: 200 }, "WeChat is busy"),
    (85431, CardPolicy::Retry { backoff_ms: 200 }, "WeChat's card service is busy"),
    (85437, CardPolicy::Defer, "WeChat cannot check this transaction id yet (right after payment it answers \"notify_code 不存在\"): the update waits in the outbox and is tried again"),
    (85439, CardPolicy::Stopped, "the buyer refused this order's card (code_state 10): its updates stop"),
    (85433, CardPolicy::Fail, "check_json must carry the payment's own pay_amount (fen, the order or the paid amount) and pay_time (seconds)"),
    (85434, CardPolicy::Fail, "the card type is not open to this mini program (its category) or its template (tid 10000001…) was not added"),
    (85436, CardPolicy::Fail, "content_json does not fit the card: a field the status requires, or a move its definition does not allow"),
    (85438, CardPolicy::Fail, "the notify_code expired, or check_json did not match the payment"),
    (85447, CardPolicy::Fail, "product_list was refused: each product needs product_img, product_name and product_path_query"),
    (40003, CardPolicy::Fail, "the openid must be the buyer who paid with this transaction id"),
];

/// What a card update does with `errcode`; token errors are retried by the
/// client before this is asked.
pub fn card_policy_for(errcode: i64) -> CardPolicy {
    CARD_TABLE
        .iter()
        .find(|(c, _, _)| *c == errcode)
        .map_or(CardPolicy::Fail, |(_, p, _)| *p)
}

/// What a person should check after a card answer `errcode` ("" when nothing).
pub fn card_advice(errcode: i64) -> &'static str {
    CARD_TABLE
        .iter()
        .find(|(c, _, _)| *c == errcode)
        .map_or("", |(_, _, a)| a)
}

/// China is UTC+8 all year; WeChat's daily quotas are counted on its days.
const CHINA_OFFSET_MS: i64 = 8 * 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The next midnight China time after `now_ms`: when a daily quota is back.
pub fn next_china_midnight(now_ms: i64) -> i64 {
    let local_day = (now_ms + CHINA_OFFSET_MS).div_euclid(DAY_MS);
    (local_day + 1) * DAY_MS - CHINA_OFFSET_MS
}

/// The start of the minute after `now_ms`: when a per-minute quota is back.
pub fn next_minute(now_ms: i64) -> i64 {
    (now_ms.div_euclid(60_000) + 1) * 60_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_answers_have_their_policy_and_advice() {
        assert_eq!(card_policy_for(0), CardPolicy::Applied);
        assert_eq!(card_policy_for(85437), CardPolicy::Defer);
        assert_eq!(card_policy_for(85439), CardPolicy::Stopped);
        assert!(matches!(card_policy_for(85431), CardPolicy::Retry { .. }));
        for code in [85433, 85434, 85436, 85438, 40003, 12345] {
            assert_eq!(card_policy_for(code), CardPolicy::Fail, "{code}");
        }
        assert!(card_advice(40003).contains("paid"));
        assert_eq!(card_advice(12345), "");
    }

    #[test]
    fn every_errcode_of_the_table_has_its_action() {
        assert_eq!(policy_for(0), Policy::Sent);
        assert_eq!(policy_for(43101), Policy::Refused);
        assert!(matches!(policy_for(-1), Policy::Retry { .. }));
        assert_eq!(policy_for(45011), Policy::NextMinute);
        assert!(matches!(policy_for(43108), Policy::Retry { .. }));
        assert_eq!(policy_for(41028), Policy::NextPermit);
        assert_eq!(policy_for(41029), Policy::NextPermit);
        for code in [
            40001, 40003, 40014, 40037, 41030, 42001, 43107, 45009, 45103, 45109, 47001, 47003,
            48001, 99999,
        ] {
            assert_eq!(policy_for(code), Policy::Fail, "{code}");
        }
    }

    #[test]
    fn what_is_not_the_messages_fault() {
        for code in [
            -1, 43108, 45009, 45011, 40013, 40125, 40164, 40243, 89503, 89506, 89507,
        ] {
            assert!(meaning(code).not_the_message, "{code}");
        }
        for code in [
            0, 40003, 40037, 41028, 43101, 43107, 45168, 47001, 47003, 48001, 99999,
        ] {
            assert!(!meaning(code).not_the_message, "{code}");
        }
    }

    #[test]
    fn failures_a_retry_cannot_mend_say_what_to_check() {
        assert_eq!(meaning(43107).hint, Hint::CapabilityBanned);
        assert_eq!(meaning(48001).hint, Hint::ApiUnauthorized);
        assert_eq!(meaning(47001).hint, Hint::BodyFormat);
        assert_eq!(meaning(40037).hint, Hint::UnknownTemplate);
        for code in [43107, 47001, 48001, 40037] {
            assert!(!meaning(code).retry_later, "{code}");
            assert_eq!(meaning(code).quota, None, "{code}");
        }
        // The token quota's advice names the reset that needs no token.
        let advice = meaning(45009).fetch_advice;
        assert!(advice.contains("clear_quota/v2"), "{advice}");
        assert!(advice.contains("48006"), "{advice}");
        assert!(!advice.contains("until clear_quota is called"), "{advice}");
    }

    #[test]
    fn each_code_is_in_the_table_once() {
        let mut codes: Vec<i64> = TABLE.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len());
    }

    #[test]
    fn quotas_wait_and_transient_codes_come_back() {
        assert_eq!(meaning(45009).quota, Some(Quota::Day));
        assert_eq!(meaning(45011).quota, Some(Quota::Minute));
        for code in [-1, 45011, 43108] {
            assert!(meaning(code).retry_later, "{code}");
        }
        for code in [0, 40037, 45009, 47003, 12345] {
            assert!(!meaning(code).retry_later, "{code}");
        }
    }
}
