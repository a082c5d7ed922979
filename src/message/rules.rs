//! WeChat's value rules for subscribe-message keywords. A keyword's type is the
//! prefix of its name (`thing3` is a thing); WeChat answers 47003 to a value that
//! breaks its type's rule, so the crate checks before sending (and the sandbox
//! checks on receipt, as WeChat does).

use std::borrow::Cow;
use std::fmt;

/// The type of a subscribe-message keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeywordType {
    Thing,
    Number,
    Letter,
    Symbol,
    CharacterString,
    Time,
    Date,
    Amount,
    PhoneNumber,
    CarNumber,
    Name,
    Phrase,
    Const,
    /// A value from the template's list (`keywordEnumValueList`).
    EnumString,
    /// A short thing: thing rules with a limit of 5 (the limit is unverified).
    ShortThing,
    /// A prefix WeChat's tables do not list: loaded with a warning and checked
    /// with the generic text checks (non-empty, one line, at most 20 characters).
    Other,
}

const PREFIXES: &[(&str, KeywordType)] = &[
    ("character_string", KeywordType::CharacterString),
    ("phone_number", KeywordType::PhoneNumber),
    ("car_number", KeywordType::CarNumber),
    ("short_thing", KeywordType::ShortThing),
    ("enum_string", KeywordType::EnumString),
    ("enum", KeywordType::EnumString),
    ("thing", KeywordType::Thing),
    ("number", KeywordType::Number),
    ("letter", KeywordType::Letter),
    ("symbol", KeywordType::Symbol),
    ("time", KeywordType::Time),
    ("date", KeywordType::Date),
    ("amount", KeywordType::Amount),
    ("name", KeywordType::Name),
    ("phrase", KeywordType::Phrase),
    ("const", KeywordType::Const),
];

/// The limit of the generic text checks an unknown type gets (a thing's).
const OTHER_MAX_CHARS: usize = 20;

/// What an admin screen shows about a keyword type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeInfo {
    pub kind: KeywordType,
    pub prefix: &'static str,
    /// The longest value in characters, where the type has a plain limit.
    pub limit: Option<usize>,
    pub allowed: &'static str,
    pub examples: &'static [&'static str],
    /// A URL, or "unverified" where no source was found.
    pub source: &'static str,
    /// Whether the value may be shortened (free text) rather than refused.
    pub truncatable: bool,
}

const S_SEND: &str = "https://developers.weixin.qq.com/miniprogram/dev/server/API/mp-message-management/subscribe-message/api_sendmessage.html";
const S_SEND_MG: &str =
    "https://developers.weixin.qq.com/minigame/dev/api-backend/subscribe-message/api_sendmessage.html";
const S_GETTPL: &str = "https://developers.weixin.qq.com/miniprogram/dev/server/API/mp-message-management/subscribe-message/api_getwxapubnewtemplate.html";

/// Every keyword type with its rule, in the order of WeChat's table.
pub const TYPES: &[TypeInfo] = &[
    TypeInfo {
        kind: KeywordType::Thing,
        prefix: "thing",
        limit: Some(20),
        allowed: "any text on one line (Chinese characters, letters, digits, symbols); no line breaks or control characters",
        examples: &["连衣裙 x2", "您的订单已发货"],
        source: S_SEND,
        truncatable: true,
    },
    TypeInfo {
        kind: KeywordType::Number,
        prefix: "number",
        limit: Some(32),
        allowed: "digits with an optional decimal part",
        examples: &["12", "12.50"],
        source: S_SEND,
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::Letter,
        prefix: "letter",
        limit: Some(32),
        allowed: "letters only",
        examples: &["abcXYZ"],
        source: S_SEND,
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::Symbol,
        prefix: "symbol",
        limit: Some(5),
        allowed: "common symbols other than Chinese, letters and digits; no line breaks or control characters",
        examples: &["%", "+-*"],
        source: S_SEND_MG,
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::CharacterString,
        prefix: "character_string",
        limit: Some(32),
        allowed: "letters, digits and symbols (no Chinese, no spaces)",
        examples: &["SN-2026-0001"],
        source: S_SEND,
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::Time,
        prefix: "time",
        limit: None,
        allowed: "a 24-hour time (HH:MM or HH:MM:SS), optionally after a date, or a range joined by ~",
        examples: &["15:01", "2019年10月1日 15:01", "2026-11-22 21:30 ~ 2026-11-22 22:30"],
        source: S_SEND_MG,
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::Date,
        prefix: "date",
        limit: None,
        allowed: "y年m月d日, y年m月, m月d日, or joined by - / . (2018-01-01, 2018/01/01, 2018.01.01, 2018-01, 01-01), optionally with a 24-hour time, or a range joined by ~",
        examples: &["2018-01-01", "2018.01.01", "2018年1月", "1月1日", "2026-11-22 08:00"],
        source: S_SEND_MG,
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::Amount,
        prefix: "amount",
        limit: None,
        allowed: "an optional currency symbol and at most 10 digits, decimals allowed, optionally ending in 元 (whether the symbol may be left out is unverified)",
        examples: &["￥100", "¥12.50", "12.50元"],
        source: S_SEND,
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::PhoneNumber,
        prefix: "phone_number",
        limit: Some(17),
        allowed: "digits and symbols",
        examples: &["+86-0766-66888866"],
        source: S_SEND,
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::CarNumber,
        prefix: "car_number",
        limit: Some(8),
        allowed: "letters and digits; the first and last may be Chinese characters",
        examples: &["粤A8Z888挂"],
        source: S_SEND,
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::Name,
        prefix: "name",
        limit: Some(20),
        allowed: "at most 10 characters when it has any Chinese (a mix of Chinese and letters counts as Chinese), else at most 20 letters or symbols; no digits (refusing digits follows the table, unverified in the wild)",
        examples: &["张三", "张三Tom", "Tom Smith"],
        source: S_SEND,
        truncatable: true,
    },
    TypeInfo {
        kind: KeywordType::Phrase,
        prefix: "phrase",
        limit: Some(5),
        allowed: "Chinese characters only",
        examples: &["配送中"],
        source: S_SEND,
        truncatable: true,
    },
    TypeInfo {
        kind: KeywordType::Const,
        prefix: "const",
        limit: None,
        allowed: "fixed by the template; cannot be set",
        examples: &[],
        source: "https://developers.weixin.qq.com/community/personal/oCJUsw9g-nDKnhE2wvByn-7KLZDA/question",
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::EnumString,
        prefix: "enum_string",
        limit: None,
        allowed: "exactly one of the template's values (keywordEnumValueList of gettemplate); checked against them when the template is known",
        examples: &["客厅"],
        source: S_GETTPL,
        truncatable: false,
    },
    TypeInfo {
        kind: KeywordType::ShortThing,
        prefix: "short_thing",
        limit: Some(5),
        allowed: "a thing of at most 5 characters (the limit is unverified: no WeChat statement, a convention of other clients)",
        examples: &["紧急求助"],
        source: "unverified",
        truncatable: true,
    },
    TypeInfo {
        kind: KeywordType::Other,
        prefix: "",
        limit: Some(OTHER_MAX_CHARS),
        allowed: "a prefix outside WeChat's tables: generic text checks (non-empty, one line, at most 20 characters); the mapping loads with a warning",
        examples: &[],
        source: "unverified",
        truncatable: true,
    },
];

impl KeywordType {
    /// The type of a keyword name such as `thing3`: a prefix of lowercase
    /// letters and `_` followed by one or more digits. A prefix outside
    /// WeChat's tables is `Other`; `None` for a name of another shape.
    pub fn of_keyword(keyword: &str) -> Option<KeywordType> {
        let digits_at = keyword.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits_at == keyword.len() || digits_at == 0 {
            return None;
        }
        let prefix = &keyword[..digits_at];
        let known = PREFIXES.iter().find(|(p, _)| *p == prefix).map(|(_, t)| *t);
        let well_formed = prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        known.or(well_formed.then_some(KeywordType::Other))
    }

    /// The prefix WeChat uses for this type ("" for `Other`).
    pub fn prefix(self) -> &'static str {
        self.info().prefix
    }

    /// The type's rule, limit, examples and source.
    pub fn info(self) -> &'static TypeInfo {
        TYPES
            .iter()
            .find(|t| t.kind == self)
            .unwrap_or(&TYPES[TYPES.len() - 1])
    }

    /// The longest value, in characters, where the type has a plain length limit.
    pub fn max_chars(self) -> Option<usize> {
        self.info().limit
    }

    /// Whether a too-long value may be shortened (free text) rather than refused.
    pub fn truncatable(self) -> bool {
        self.info().truncatable
    }

    /// Whether line breaks and control characters may be mended into spaces
    /// (free text that WeChat shows on one line).
    pub fn free_text(self) -> bool {
        matches!(
            self,
            KeywordType::Thing | KeywordType::ShortThing | KeywordType::Other
        )
    }

    /// The length limit that applies to this particular value: a name with any
    /// Chinese character (alone or mixed with letters) is limited to 10, one of
    /// letters to 20.
    pub fn limit_for(self, value: &str) -> Option<usize> {
        match self {
            KeywordType::Name if value.chars().any(is_cjk) => Some(10),
            _ => self.max_chars(),
        }
    }

    /// Checks `value` against the type's rule. An enum value is checked here
    /// only as text; `check_enum` checks it against the template's values.
    pub fn check(self, value: &str) -> Result<(), RuleViolation> {
        let fail = |rule: &'static str| Err(RuleViolation { kind: self, rule });
        if value.is_empty() {
            return fail("non-empty");
        }
        if value.chars().any(char::is_control) {
            return fail("on one line, without line breaks or control characters");
        }
        let len = value.chars().count();
        if let Some(max) = self.limit_for(value) {
            if len > max {
                return Err(RuleViolation {
                    kind: self,
                    rule: too_long_rule(self, value),
                });
            }
        }
        let ok = match self {
            KeywordType::Thing
            | KeywordType::ShortThing
            | KeywordType::EnumString
            | KeywordType::Other => true,
            KeywordType::Number => is_decimal(value),
            KeywordType::Letter => value.chars().all(|c| c.is_ascii_alphabetic()),
            KeywordType::Symbol => value.chars().all(is_symbol),
            KeywordType::CharacterString => value.chars().all(|c| c.is_ascii_graphic()),
            KeywordType::Time => is_range(value, is_time_value),
            KeywordType::Date => is_range(value, is_date_value),
            KeywordType::Amount => is_amount(value),
            KeywordType::PhoneNumber => value
                .chars()
                .all(|c| c.is_ascii_digit() || is_symbol(c) || c == ' '),
            KeywordType::CarNumber => is_car_number(value),
            // A mix of Chinese and letters counts as a Chinese name (S-SEND);
            // such a name keeps to ASCII marks besides `·` so that a cut
            // name ends plainly rather than with `…`.
            KeywordType::Name if value.chars().any(is_cjk) => value.chars().all(|c| {
                is_cjk(c)
                    || c.is_ascii_alphabetic()
                    || c.is_ascii_punctuation()
                    || c == ' '
                    || c == '·'
            }),
            KeywordType::Name => value
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == ' ' || is_symbol(c)),
            KeywordType::Phrase => value.chars().all(is_cjk),
            KeywordType::Const => {
                return fail("left to the template (a const keyword cannot be set)")
            }
        };
        if ok {
            Ok(())
        } else {
            fail(rule_text(self))
        }
    }

    /// Checks an enum value against the template's values (`keywordEnumValueList`).
    pub fn check_enum<S: AsRef<str>>(value: &str, values: &[S]) -> Result<(), RuleViolation> {
        KeywordType::EnumString.check(value)?;
        if values.iter().any(|v| v.as_ref() == value) {
            Ok(())
        } else {
            Err(RuleViolation {
                kind: KeywordType::EnumString,
                rule: "one of the template's values",
            })
        }
    }
}

/// Every keyword type with its rule, as JSON for an admin screen:
/// `{"types": [{"type", "prefixes", "limit", "allowed", "examples", "source",
/// "shortened_when_too_long"}]}`; `"type": "other"` stands for any prefix
/// outside WeChat's tables.
pub fn types_json() -> &'static str {
    static JSON: once_cell::sync::Lazy<String> = once_cell::sync::Lazy::new(|| {
        let types: Vec<serde_json::Value> = TYPES
            .iter()
            .map(|t| {
                let prefixes: Vec<&str> = PREFIXES
                    .iter()
                    .filter(|(_, k)| *k == t.kind)
                    .map(|(p, _)| *p)
                    .collect();
                serde_json::json!({
                    "type": if t.prefix.is_empty() { "other" } else { t.prefix },
                    "prefixes": prefixes,
                    "limit": t.limit,
                    "allowed": t.allowed,
                    "examples": t.examples,
                    "source": t.source,
                    "shortened_when_too_long": t.truncatable,
                })
            })
            .collect();
        serde_json::json!({ "types": types }).to_string()
    });
    &JSON
}

/// Line breaks and control characters turned into single spaces (a goods name
/// written on several lines reads the same on one), trimmed.
pub fn one_line(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut gap = false;
    for c in value.chars() {
        if c.is_control() {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() && !out.ends_with(' ') && c != ' ' {
            out.push(' ');
        }
        gap = false;
        out.push(c);
    }
    out.trim_end().to_string()
}

fn too_long_rule(kind: KeywordType, value: &str) -> &'static str {
    match kind {
        KeywordType::Thing | KeywordType::Other => "at most 20 characters",
        KeywordType::ShortThing => "at most 5 characters",
        KeywordType::Number => "at most 32 characters",
        KeywordType::Letter => "at most 32 characters",
        KeywordType::CharacterString => "at most 32 characters",
        KeywordType::Symbol => "at most 5 characters",
        KeywordType::PhoneNumber => "at most 17 characters",
        KeywordType::CarNumber => "at most 8 characters",
        KeywordType::Name if value.chars().any(is_cjk) => "at most 10 characters (it has Chinese)",
        KeywordType::Name => "at most 20 letters",
        KeywordType::Phrase => "at most 5 Chinese characters",
        _ => "too long",
    }
}

fn rule_text(kind: KeywordType) -> &'static str {
    match kind {
        KeywordType::Thing => "any text of at most 20 characters",
        KeywordType::ShortThing => "any text of at most 5 characters",
        KeywordType::Other => "any text of at most 20 characters",
        KeywordType::EnumString => "one of the template's values",
        KeywordType::Number => "digits with an optional decimal part",
        KeywordType::Letter => "letters only",
        KeywordType::Symbol => "symbols only",
        KeywordType::CharacterString => "letters, digits and symbols only",
        KeywordType::Time => "a 24-hour time, optionally with a date, or a range joined by ~",
        KeywordType::Date => "a date (2018-01-01, 2018.01.01, 2018-01, 01-01, 2018年1月1日, 2018年1月, 1月1日), optionally with a 24-hour time, or a range joined by ~",
        KeywordType::Amount => {
            "an optional currency symbol and at most 10 digits, decimals allowed, optionally ending in 元"
        }
        KeywordType::PhoneNumber => "digits and symbols only",
        KeywordType::CarNumber => "letters and digits, the first and last may be Chinese",
        KeywordType::Name => "Chinese characters, letters and symbols, without digits",
        KeywordType::Phrase => "Chinese characters only",
        KeywordType::Const => "is fixed by the template",
    }
}

/// A value that breaks its keyword type's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    pub kind: KeywordType,
    pub rule: &'static str,
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            KeywordType::Other => write!(f, "value must be {}", self.rule),
            kind => write!(f, "{} value must be {}", kind.prefix(), self.rule),
        }
    }
}

/// `value` cut to at most `max` characters (never inside a character), the last
/// one being `…` when anything was cut. Linear in the length of the kept part.
pub fn truncate_chars(value: &str, max: usize) -> Cow<'_, str> {
    let mut keep_end = 0;
    for (n, (at, _)) in value.char_indices().enumerate() {
        if n + 1 == max {
            keep_end = at;
        }
        if n == max {
            let mut cut = String::with_capacity(keep_end + '…'.len_utf8());
            if max > 0 {
                cut.push_str(&value[..keep_end]);
                cut.push('…');
            }
            return Cow::Owned(cut);
        }
    }
    Cow::Borrowed(value)
}

/// `value` cut to at most `max` characters without a mark, for types whose rule
/// a `…` would break (a phrase or a name of Chinese characters).
pub fn cut_chars(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((at, _)) => &value[..at],
        None => value,
    }
}

/// CJK unified ideographs (the characters WeChat counts as Chinese).
pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2A6DF}'
        | '\u{2A700}'..='\u{2EBEF}')
}

fn is_symbol(c: char) -> bool {
    c.is_ascii_punctuation()
        || (!c.is_alphanumeric() && !c.is_whitespace() && !c.is_control() && !is_cjk(c))
}

fn is_decimal(v: &str) -> bool {
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (v, None),
    };
    let int = int.strip_prefix('-').unwrap_or(int);
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

const CURRENCY: &[char] = &['¥', '￥', '$', '€', '£', '₩', '₹', '₽', '฿'];

/// One currency symbol and at most 10 digits, decimals allowed (WeChat states
/// no limit on their count), optionally ending in 元.
fn is_amount(v: &str) -> bool {
    let v = v.strip_suffix('元').unwrap_or(v);
    let v = v.strip_prefix(CURRENCY).unwrap_or(v);
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (v, None),
    };
    (1..=10).contains(&int.len())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn is_car_number(v: &str) -> bool {
    let chars: Vec<char> = v.chars().collect();
    let last = chars.len() - 1;
    chars.iter().enumerate().all(|(i, &c)| {
        c.is_ascii_alphanumeric() && c.is_ascii() || ((i == 0 || i == last) && is_cjk(c))
    })
}

/// `one` or `one ~ one`.
fn is_range(v: &str, one: fn(&str) -> bool) -> bool {
    match v.split_once('~') {
        Some((a, b)) => one(a.trim()) && one(b.trim()),
        None => one(v.trim()),
    }
}

/// A 24-hour time, optionally after a date.
fn is_time_value(v: &str) -> bool {
    if is_clock(v) {
        return true;
    }
    match split_date(v) {
        Some((rest, true)) => is_clock(rest.trim_start_matches([' ', 'T'])),
        _ => false,
    }
}

/// A date, optionally followed by a 24-hour time.
fn is_date_value(v: &str) -> bool {
    match split_date(v) {
        Some((rest, true)) => rest.is_empty() || is_clock(rest.trim_start_matches([' ', 'T'])),
        _ => false,
    }
}

/// Parses a leading date and returns what follows and whether the date is a
/// real calendar date. WeChat's forms: `y年m月d日`, `y年m月`, `m月d日`, or
/// joined by `-`, `/` or `.`: `2018-01-01`, `2018-01`, `01-01`.
fn split_date(v: &str) -> Option<(&str, bool)> {
    if let Some((y, rest)) = take_digits(v, 4, 4) {
        if let Some(rest) = rest.strip_prefix('年') {
            let (m, rest) = take_digits(rest, 1, 2)?;
            let rest = rest.strip_prefix('月')?;
            return match take_digits(rest, 1, 2) {
                Some((d, after)) => {
                    let after = after.strip_prefix('日')?;
                    Some((after, valid_date(y, m, d)))
                }
                None => Some((rest, (1..=12).contains(&m))),
            };
        }
        let sep = rest
            .chars()
            .next()
            .filter(|c| matches!(c, '-' | '/' | '.'))?;
        let (m, rest) = take_digits(&rest[1..], 1, 2)?;
        return match rest.strip_prefix(sep).and_then(|r| take_digits(r, 1, 2)) {
            Some((d, after)) => Some((after, valid_date(y, m, d))),
            None => Some((rest, (1..=12).contains(&m))),
        };
    }
    // Month and day without a year (2000 is a leap year: 02-29 is a date).
    let (m, rest) = take_digits(v, 1, 2)?;
    if let Some(rest) = rest.strip_prefix('月') {
        let (d, rest) = take_digits(rest, 1, 2)?;
        let rest = rest.strip_prefix('日')?;
        return Some((rest, valid_date(2000, m, d)));
    }
    let rest = rest.strip_prefix(['-', '/', '.'])?;
    let (d, rest) = take_digits(rest, 1, 2)?;
    Some((rest, valid_date(2000, m, d)))
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// `H:MM` or `HH:MM` or `HH:MM:SS`, 24-hour.
fn is_clock(v: &str) -> bool {
    let Some((h, rest)) = take_digits(v, 1, 2) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(':') else {
        return false;
    };
    let Some((m, rest)) = take_digits(rest, 2, 2) else {
        return false;
    };
    let sec_ok = match rest.strip_prefix(':') {
        None => rest.is_empty(),
        Some(s) => matches!(take_digits(s, 2, 2), Some((sec, "")) if sec < 60),
    };
    h < 24 && m < 60 && sec_ok
}

fn take_digits(v: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let n = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((v[..n].parse().ok()?, &v[n..]))
}

#[cfg(test)]
mod tests {
    use super::KeywordType as K;

    #[test]
    fn keyword_types_come_from_the_prefix() {
        assert_eq!(K::of_keyword("thing3"), Some(K::Thing));
        assert_eq!(
            K::of_keyword("character_string12"),
            Some(K::CharacterString)
        );
        assert_eq!(K::of_keyword("phone_number1"), Some(K::PhoneNumber));
        assert_eq!(K::of_keyword("amount2"), Some(K::Amount));
        assert_eq!(K::of_keyword("thing"), None);
        assert_eq!(K::of_keyword("12"), None);
        assert_eq!(K::of_keyword("enum_string2"), Some(K::EnumString));
        assert_eq!(K::of_keyword("enum1"), Some(K::EnumString));
        assert_eq!(K::of_keyword("short_thing3"), Some(K::ShortThing));
        // Well-formed names outside WeChat's tables load as untyped text.
        assert_eq!(K::of_keyword("keyword1"), Some(K::Other));
        assert_eq!(K::of_keyword("things1"), Some(K::Other));
        assert_eq!(K::of_keyword("site01"), Some(K::Other));
        assert_eq!(K::of_keyword("Thing1"), None);
        assert_eq!(K::of_keyword("thing-1"), None);
        assert_eq!(K::of_keyword("_1"), None);
        assert_eq!(K::of_keyword(""), None);
    }

    #[test]
    fn value_rules() {
        let cases: &[(K, &str, bool)] = &[
            (K::Thing, "连衣裙 x2", true),
            (K::Thing, "一二三四五六七八九十一二三四五六七八九十", true),
            (
                K::Thing,
                "一二三四五六七八九十一二三四五六七八九十一",
                false,
            ),
            (K::Thing, "", false),
            (K::Number, "12", true),
            (K::Number, "12.50", true),
            (K::Number, "12a", false),
            (K::Number, "1.", false),
            (K::Letter, "abcXYZ", true),
            (K::Letter, "abc1", false),
            (K::Symbol, "+-*", true),
            (K::Symbol, "a", false),
            (K::Symbol, "!!!!!!", false),
            (K::CharacterString, "SN-2026-0001", true),
            (K::CharacterString, "订单1", false),
            (K::CharacterString, "has space", false),
            (K::Time, "15:01", true),
            (K::Time, "2019年10月1日 15:01", true),
            (K::Time, "2026-11-22 21:30", true),
            (K::Time, "2026-11-22 21:30:59", true),
            (K::Time, "2026-11-22 21:30 ~ 2026-11-22 22:30", true),
            (K::Time, "25:00", false),
            (K::Time, "2026-11-22", false),
            (K::Time, "soon", false),
            (K::Date, "2026-11-22", true),
            (K::Date, "2026/11/22 08:00", true),
            (K::Date, "2019年10月1日", true),
            (K::Date, "2026-02-29", false),
            (K::Date, "2024-02-29", true),
            (K::Date, "2026-11-22~2026-11-30", true),
            (K::Date, "2026-13-01", false),
            (K::Amount, "¥12.50", true),
            (K::Amount, "12.50元", true),
            (K::Amount, "￥1234567890", true),
            (K::Amount, "¥12345678901", false),
            // WeChat states no limit on the decimals (issue #31).
            (K::Amount, "¥12.345", true),
            (K::Amount, "¥12.", false),
            (K::Amount, "¥¥12", false),
            (K::Amount, "¥abc", false),
            (K::PhoneNumber, "+86-13800138000", true),
            (K::PhoneNumber, "138001380001380013", false),
            (K::PhoneNumber, "call me", false),
            (K::CarNumber, "粤A12345", true),
            (K::CarNumber, "粤A1234学", true),
            (K::CarNumber, "A粤1234", false),
            (K::CarNumber, "粤A123456学", false),
            (K::Name, "张三", true),
            (K::Name, "Tom Smith", true),
            (K::Name, "张三Tom", true),
            (K::Name, "张三Tom Smith", false),
            (K::Name, "一二三四五六七八九十", true),
            (K::Name, "一二三四五六七八九十一", false),
            (K::Name, "user25", false),
            (K::Name, "张三3", false),
            (K::Name, "Anne-Marie O'Neil", true),
            (K::Thing, "连衣裙\n红色", false),
            (K::Thing, "tab\there", false),
            (K::Phrase, "已\n发货", false),
            (K::Symbol, "+\n", false),
            (K::ShortThing, "紧急求助", true),
            (K::ShortThing, "一二三四五", true),
            (K::ShortThing, "一二三四五六", false),
            (K::EnumString, "客厅", true),
            (K::EnumString, "", false),
            (K::Other, "any text", true),
            (
                K::Other,
                "一二三四五六七八九十一二三四五六七八九十一",
                false,
            ),
            (K::Date, "2018.01.01", true),
            (K::Date, "2018-01", true),
            (K::Date, "2018/01", true),
            (K::Date, "01-01", true),
            (K::Date, "02-29", true),
            (K::Date, "02-30", false),
            (K::Date, "2018年1月", true),
            (K::Date, "2018年13月", false),
            (K::Date, "1月1日", true),
            (K::Date, "2018-13", false),
            (K::Date, "2018.01.01 08:00", true),
            (K::Date, "2018-01-01.5", false),
            (K::Time, "1月1日 08:00", true),
            (K::Time, "2018.01.01 08:00", true),
            (K::Phrase, "已发货", true),
            (K::Phrase, "shipped", false),
            (K::Phrase, "一二三四五六", false),
            (K::Const, "x", false),
        ];
        for (kind, value, ok) in cases {
            assert_eq!(
                kind.check(value).is_ok(),
                *ok,
                "{kind:?} {value:?}: {:?}",
                kind.check(value)
            );
        }
    }

    #[test]
    fn enum_values_come_from_the_template() {
        let values = ["客厅", "厨房"];
        assert!(K::check_enum("客厅", &values).is_ok());
        let err = K::check_enum("卧室", &values).unwrap_err();
        assert_eq!(
            err.to_string(),
            "enum_string value must be one of the template's values"
        );
        assert!(K::check_enum("", &values).is_err());
        assert!(K::check_enum::<&str>("客厅", &[]).is_err());
    }

    #[test]
    fn the_types_json_lists_every_type() {
        let v: serde_json::Value = serde_json::from_str(super::types_json()).unwrap();
        let types = v["types"].as_array().unwrap();
        assert_eq!(types.len(), super::TYPES.len());
        let thing = &types[0];
        assert_eq!(thing["type"], "thing");
        assert_eq!(thing["limit"], 20);
        assert_eq!(thing["prefixes"], serde_json::json!(["thing"]));
        let e = types.iter().find(|t| t["type"] == "enum_string").unwrap();
        assert_eq!(e["prefixes"], serde_json::json!(["enum_string", "enum"]));
        assert_eq!(e["limit"], serde_json::Value::Null);
        let st = types.iter().find(|t| t["type"] == "short_thing").unwrap();
        assert_eq!(
            (st["limit"].as_u64(), st["source"].as_str()),
            (Some(5), Some("unverified"))
        );
        let other = types.iter().find(|t| t["type"] == "other").unwrap();
        assert_eq!(other["prefixes"], serde_json::json!([]));
    }

    #[test]
    fn one_line_joins_lines_with_a_space() {
        use super::one_line;
        assert_eq!(one_line("连衣裙\n红色"), "连衣裙 红色");
        assert_eq!(one_line("a\r\n\r\nb\n"), "a b");
        assert_eq!(one_line("a \nb"), "a b");
        assert_eq!(one_line("\nab"), "ab");
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn every_type_has_an_entry_with_a_source() {
        for t in super::TYPES {
            assert_eq!(t.kind.info(), t, "{:?}", t.kind);
            assert!(
                t.source == "unverified" || t.source.starts_with("https://"),
                "{:?}",
                t.kind
            );
            for ex in t.examples {
                if t.kind != K::Const {
                    assert!(t.kind.check(ex).is_ok(), "{:?} example {ex:?}", t.kind);
                }
            }
        }
    }

    #[test]
    fn truncation_counts_characters() {
        use super::{cut_chars, truncate_chars};
        let cases: &[(&str, usize, &str)] = &[
            ("abcdef", 6, "abcdef"),
            ("abcdef", 5, "abcd…"),
            ("abcdef", 1, "…"),
            ("abcdef", 0, ""),
            ("", 3, ""),
            ("连衣裙连衣裙", 4, "连衣裙…"),
            ("连衣裙", 3, "连衣裙"),
            ("👗👗👗👗", 3, "👗👗…"),
            ("a👗b", 2, "a…"),
        ];
        for (value, max, want) in cases {
            assert_eq!(truncate_chars(value, *max), *want, "{value:?} {max}");
            assert!(truncate_chars(value, *max).chars().count() <= *max);
        }
        assert_eq!(cut_chars("已发货了吗", 3), "已发货");
        assert_eq!(cut_chars("已发", 3), "已发");
        let big = "字".repeat(1 << 20);
        assert_eq!(truncate_chars(&big, 20).chars().count(), 20);
    }

    #[test]
    fn violations_say_the_rule() {
        let err = K::Thing.check(&"字".repeat(21)).unwrap_err();
        assert_eq!(err.to_string(), "thing value must be at most 20 characters");
        let err = K::Number.check("1x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "number value must be digits with an optional decimal part"
        );
    }
}
