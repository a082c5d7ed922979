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
}

const PREFIXES: &[(&str, KeywordType)] = &[
    // Longer names first where one is a prefix of another.
    ("character_string", KeywordType::CharacterString),
    ("phone_number", KeywordType::PhoneNumber),
    ("car_number", KeywordType::CarNumber),
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

impl KeywordType {
    /// The type of a keyword name such as `thing3`: a known prefix followed by
    /// one or more digits. `None` for anything else.
    pub fn of_keyword(keyword: &str) -> Option<KeywordType> {
        let digits_at = keyword.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits_at == keyword.len() || digits_at == 0 {
            return None;
        }
        let prefix = &keyword[..digits_at];
        PREFIXES.iter().find(|(p, _)| *p == prefix).map(|(_, t)| *t)
    }

    /// The prefix WeChat uses for this type.
    pub fn prefix(self) -> &'static str {
        PREFIXES
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(p, _)| *p)
            .unwrap_or("")
    }

    /// The longest value, in characters, where the type has a plain length limit.
    pub fn max_chars(self) -> Option<usize> {
        match self {
            KeywordType::Thing => Some(20),
            KeywordType::Number | KeywordType::Letter | KeywordType::CharacterString => Some(32),
            KeywordType::Symbol => Some(5),
            KeywordType::PhoneNumber => Some(17),
            KeywordType::CarNumber => Some(8),
            KeywordType::Name => Some(20),
            KeywordType::Phrase => Some(5),
            _ => None,
        }
    }

    /// Whether a too-long value may be shortened (free text) rather than refused.
    pub fn truncatable(self) -> bool {
        matches!(
            self,
            KeywordType::Thing | KeywordType::Name | KeywordType::Phrase
        )
    }

    /// The length limit that applies to this particular value: a name made of
    /// Chinese characters is limited to 10, one of letters to 20.
    pub fn limit_for(self, value: &str) -> Option<usize> {
        match self {
            KeywordType::Name if value.chars().any(is_cjk) => Some(10),
            _ => self.max_chars(),
        }
    }

    /// Checks `value` against the type's rule.
    pub fn check(self, value: &str) -> Result<(), RuleViolation> {
        let fail = |rule: &'static str| Err(RuleViolation { kind: self, rule });
        if value.is_empty() {
            return fail("non-empty");
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
            KeywordType::Thing => true,
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
            KeywordType::Name => {
                value.chars().all(|c| is_cjk(c) || c == '·')
                    || value
                        .chars()
                        .all(|c| c.is_ascii_alphabetic() || c == ' ' || is_symbol(c))
            }
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
}

fn too_long_rule(kind: KeywordType, value: &str) -> &'static str {
    match kind {
        KeywordType::Thing => "at most 20 characters",
        KeywordType::Number => "at most 32 characters",
        KeywordType::Letter => "at most 32 characters",
        KeywordType::CharacterString => "at most 32 characters",
        KeywordType::Symbol => "at most 5 characters",
        KeywordType::PhoneNumber => "at most 17 characters",
        KeywordType::CarNumber => "at most 8 characters",
        KeywordType::Name if value.chars().any(is_cjk) => "at most 10 Chinese characters",
        KeywordType::Name => "at most 20 letters",
        KeywordType::Phrase => "at most 5 Chinese characters",
        _ => "too long",
    }
}

fn rule_text(kind: KeywordType) -> &'static str {
    match kind {
        KeywordType::Thing => "any text of at most 20 characters",
        KeywordType::Number => "digits with an optional decimal part",
        KeywordType::Letter => "letters only",
        KeywordType::Symbol => "symbols only",
        KeywordType::CharacterString => "letters, digits and symbols only",
        KeywordType::Time => "a 24-hour time, optionally with a date, or a range joined by ~",
        KeywordType::Date => "a date, optionally with a 24-hour time, or a range joined by ~",
        KeywordType::Amount => {
            "an optional currency symbol and at most 10 digits with up to 2 decimals, optionally ending in 元"
        }
        KeywordType::PhoneNumber => "digits and symbols only",
        KeywordType::CarNumber => "letters and digits, the first and last may be Chinese",
        KeywordType::Name => "Chinese characters only or letters only",
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
        write!(f, "{} value must be {}", self.kind.prefix(), self.rule)
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

fn is_amount(v: &str) -> bool {
    let v = v.strip_suffix('元').unwrap_or(v);
    let v = v.strip_prefix(CURRENCY).unwrap_or(v);
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (v, None),
    };
    (1..=10).contains(&int.len())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| (1..=2).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
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

/// Parses a leading date (`2019-10-01`, `2019/10/01`, `2019年10月1日`) and returns
/// what follows and whether the date is a real calendar date.
fn split_date(v: &str) -> Option<(&str, bool)> {
    let (y, rest) = take_digits(v, 4, 4)?;
    if let Some(rest) = rest.strip_prefix('年') {
        let (m, rest) = take_digits(rest, 1, 2)?;
        let rest = rest.strip_prefix('月')?;
        let (d, rest) = take_digits(rest, 1, 2)?;
        let rest = rest.strip_prefix('日')?;
        return Some((rest, valid_date(y, m, d)));
    }
    let sep = rest.chars().next().filter(|c| *c == '-' || *c == '/')?;
    let (m, rest) = take_digits(&rest[1..], 1, 2)?;
    let rest = rest.strip_prefix(sep)?;
    let (d, rest) = take_digits(rest, 1, 2)?;
    Some((rest, valid_date(y, m, d)))
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
        assert_eq!(K::of_keyword("keyword1"), None);
        assert_eq!(K::of_keyword("things1"), None);
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
            (K::Amount, "¥12.345", false),
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
            (K::Name, "张三Tom", false),
            (K::Name, "一二三四五六七八九十一", false),
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
