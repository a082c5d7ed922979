//! The placeholder language of mapping values: `{field}`, `{field|filter}`,
//! `{field|filter:arg}` (filters may be chained left to right), `{{` and `}}` for
//! literal braces. Deliberately tiny: merchant-editable text can name fields and
//! format them, nothing more. Compiled once when a mapping loads; rendering
//! walks the segments and never parses text again.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::rules::truncate_chars;

/// The longest `truncate:N`.
const MAX_TRUNCATE: usize = 1000;

/// A formatting step applied to a field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Number or numeric string → `¥12.50`, rounded as a decimal.
    Money,
    /// Unix seconds or `YYYY-MM-DD HH:MM:SS` → `2026-11-22 21:30` in China time.
    Datetime,
    /// As `Datetime`, only the date.
    Date,
    /// At most N characters, `…` marking the cut.
    Truncate(usize),
    /// This text when the field is missing or empty.
    Default(Box<str>),
}

impl Filter {
    fn name(&self) -> &'static str {
        match self {
            Filter::Money => "money",
            Filter::Datetime => "datetime",
            Filter::Date => "date",
            Filter::Truncate(_) => "truncate",
            Filter::Default(_) => "default",
        }
    }

    fn parse(text: &str) -> Result<Filter, String> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (text, None),
        };
        let no_arg = |f: Filter| match arg {
            None => Ok(f),
            Some(a) => Err(format!(
                "bad filter argument: {name} takes no argument, got `{}`",
                preview(a)
            )),
        };
        match name {
            "money" => no_arg(Filter::Money),
            "datetime" => no_arg(Filter::Datetime),
            "date" => no_arg(Filter::Date),
            "truncate" => match arg.map(|a| a.parse::<usize>()) {
                Some(Ok(n)) if (1..=MAX_TRUNCATE).contains(&n) => Ok(Filter::Truncate(n)),
                Some(_) => Err(format!(
                    "bad filter argument: truncate takes a number of characters from 1 to {MAX_TRUNCATE}, got `{}`",
                    preview(arg.unwrap_or_default())
                )),
                None => Err("bad filter argument: truncate needs a length, e.g. truncate:20".into()),
            },
            "default" => match arg {
                Some(a) if !a.is_empty() => Ok(Filter::Default(a.into())),
                _ => Err("bad filter argument: default needs a text, e.g. default:无".into()),
            },
            _ => Err(format!(
                "unknown filter `{}` (filters: money, datetime, date, truncate:N, default:TEXT)",
                preview(name)
            )),
        }
    }

    /// Whether the filter turns a value into a new text (rather than choosing or cutting).
    fn formats(&self) -> bool {
        matches!(self, Filter::Money | Filter::Datetime | Filter::Date)
    }

    /// A formatting filter's output, appended to `out`.
    fn format_into(&self, value: &str, out: &mut String) -> Result<(), String> {
        let result = match self {
            Filter::Money => money_into(value, out),
            Filter::Datetime => china_time_into(value, true, out),
            Filter::Date => china_time_into(value, false, out),
            _ => {
                out.push_str(value);
                Ok(())
            }
        };
        result.map_err(|e| format!("{}: {e}", self.name()))
    }

    /// Applies the filter to the value so far (`None`: the field is missing).
    fn apply<'v>(&'v self, value: Option<Cow<'v, str>>) -> Result<Option<Cow<'v, str>>, String> {
        let Some(v) = value else {
            return Ok(match self {
                Filter::Default(d) => Some(Cow::Borrowed(d)),
                _ => None,
            });
        };
        let fail = |e: String| format!("{}: {e}", self.name());
        Ok(Some(match self {
            Filter::Money => Cow::Owned(money(&v).map_err(fail)?),
            Filter::Datetime => Cow::Owned(china_time(&v, true).map_err(fail)?),
            Filter::Date => Cow::Owned(china_time(&v, false).map_err(fail)?),
            Filter::Truncate(n) => match truncate_chars(&v, *n) {
                Cow::Borrowed(_) => v,
                Cow::Owned(s) => Cow::Owned(s),
            },
            Filter::Default(d) if v.is_empty() => Cow::Borrowed(d),
            Filter::Default(_) => v,
        }))
    }
}

/// One piece of a compiled value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(Box<str>),
    /// A field, by its slot in the event's field table, and its filters.
    Field {
        slot: usize,
        filters: Box<[Filter]>,
    },
}

/// A compiled mapping value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pattern {
    segments: Box<[Segment]>,
}

/// What a field reference needs at render time.
pub trait FieldSource {
    /// The field's text, `None` when it is missing (or null).
    fn text(&self, slot: usize) -> Result<Option<Cow<'_, str>>, String>;
}

/// Why a pattern did not render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderFault {
    /// The field is missing or null and no `default` filter gave a value.
    Missing { slot: usize },
    /// A field's value could not be used (wrong type, not a number, …).
    Bad { slot: usize, reason: String },
}

impl Pattern {
    /// Compiles `text`. `known` says whether a field name may be used; `slots`
    /// is the event's field table, extended with every new name. All problems
    /// of the text are returned together.
    pub fn compile(
        text: &str,
        known: &dyn Fn(&str) -> bool,
        slots: &mut Vec<Box<str>>,
    ) -> Result<Pattern, Vec<String>> {
        let mut segments = Vec::new();
        let mut errors = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let tail = &rest[at..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                literal.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if let Some(after) = tail.strip_prefix('}') {
                errors.push("unmatched `}` (write `}}` for a literal brace)".to_string());
                rest = after;
                continue;
            }
            let inner = &tail[1..];
            let Some(end) = inner
                .find(['{', '}'])
                .filter(|&e| inner.as_bytes()[e] == b'}')
            else {
                errors.push(format!(
                    "unclosed placeholder `{{{}` (write `{{{{` for a literal brace)",
                    preview(inner.split('{').next().unwrap_or_default())
                ));
                rest = inner;
                continue;
            };
            let body = &inner[..end];
            rest = &inner[end + 1..];
            match compile_field(body, known, slots) {
                Ok(seg) => {
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal).into()));
                    }
                    segments.push(seg);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal.into()));
        }
        if errors.is_empty() {
            Ok(Pattern {
                segments: segments.into(),
            })
        } else {
            Err(errors)
        }
    }

    /// The literal text of the pattern (braces written `{{` appear as `{`).
    pub fn literals(&self) -> impl Iterator<Item = &str> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Literal(text) => Some(&**text),
            Segment::Field { .. } => None,
        })
    }

    /// The slots of the fields this pattern reads, in order of appearance.
    pub fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Field { slot, .. } => Some(*slot),
            Segment::Literal(_) => None,
        })
    }

    /// Appends the rendered value to `out`. `escape` is applied to field values
    /// (not to literal text), e.g. to percent-encode a page's query.
    pub fn render_into(
        &self,
        fields: &dyn FieldSource,
        escape: Option<fn(&str, &mut String)>,
        out: &mut String,
    ) -> Result<(), RenderFault> {
        for seg in self.segments.iter() {
            match seg {
                Segment::Literal(text) => out.push_str(text),
                Segment::Field { slot, filters } => {
                    let slot = *slot;
                    let bad = |reason| RenderFault::Bad { slot, reason };
                    let mut value = fields.text(slot).map_err(bad)?;
                    // A formatting filter at the end writes straight into `out`.
                    let (last, init) = match filters.split_last() {
                        Some((last, init)) if escape.is_none() && last.formats() => {
                            (Some(last), init)
                        }
                        _ => (None, &filters[..]),
                    };
                    for f in init {
                        value = f.apply(value).map_err(bad)?;
                    }
                    let value = value.ok_or(RenderFault::Missing { slot })?;
                    if let Some(last) = last {
                        last.format_into(&value, out).map_err(bad)?;
                        continue;
                    }
                    match escape {
                        Some(esc) => esc(&value, out),
                        None => out.push_str(&value),
                    }
                }
            }
        }
        Ok(())
    }
}

fn compile_field(
    body: &str,
    known: &dyn Fn(&str) -> bool,
    slots: &mut Vec<Box<str>>,
) -> Result<Segment, Vec<String>> {
    let mut parts = body.split('|');
    let name = parts.next().unwrap_or_default();
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push(format!(
            "empty placeholder `{{{}}}` (a placeholder names a field, e.g. {{order_sn}})",
            preview(body)
        ));
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        errors.push(format!(
            "bad placeholder `{{{}}}`: a field name is letters, digits and _",
            preview(body)
        ));
    } else if !known(name) {
        errors.push(format!("unknown placeholder {{{name}}}"));
    }
    let mut filters = Vec::new();
    for f in parts {
        match Filter::parse(f) {
            Ok(f) => filters.push(f),
            Err(e) => errors.push(format!("{e} in {{{}}}", preview(body))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let slot = match slots.iter().position(|s| **s == *name) {
        Some(i) => i,
        None => {
            slots.push(name.into());
            slots.len() - 1
        }
    };
    Ok(Segment::Field {
        slot,
        filters: filters.into(),
    })
}

/// At most 32 characters of `s`, for messages (a 1 MB value must not fill a log line).
pub fn preview(s: &str) -> Cow<'_, str> {
    truncate_chars(s, 32)
}

/// `12.345` → `¥12.35`: decimal rounding (half up) on the text, never through a float.
pub fn money(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(16);
    money_into(text, &mut out)?;
    Ok(out)
}

/// `money`, appended to `out`.
fn money_into(text: &str, out: &mut String) -> Result<(), String> {
    let t = text.trim();
    let bad = || {
        format!(
            "`{}` is not an amount (digits with an optional decimal part)",
            preview(t)
        )
    };
    if let Some(rest) = t.strip_prefix('-') {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(format!("amount `{}` is negative", preview(t)));
        }
        return Err(bad());
    }
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (t.contains('.') && frac.is_empty()) {
        return Err(bad());
    }
    let int = int.trim_start_matches('0');
    let too_big = || {
        format!(
            "amount `{}` has more than 10 digits before the decimal point",
            preview(t)
        )
    };
    if int.len() > 10 {
        return Err(too_big());
    }
    let yuan: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let f = frac.as_bytes();
    let digit = |i: usize| f.get(i).map_or(0, |b| u64::from(b - b'0'));
    let mut cents = yuan * 100 + digit(0) * 10 + digit(1);
    if digit(2) >= 5 {
        cents += 1;
    }
    if cents >= 10_000_000_000 * 100 {
        return Err(too_big());
    }
    let _ = write!(out, "¥{}.", cents / 100);
    push_2digits(out, (cents % 100) as u32);
    Ok(())
}

fn push_2digits(out: &mut String, n: u32) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// The latest instant shown: 9999-12-31 23:59:59 China time, as unix seconds.
const MAX_UNIX: i64 = 253_402_300_799 - 8 * 3600;

/// Unix seconds, or a `YYYY-MM-DD HH:MM[:SS]` (or `T`, or `/`) text taken as China
/// time already, → `2026-11-22 21:30` (`with_time`) or `2026-11-22`.
pub fn china_time(text: &str, with_time: bool) -> Result<String, String> {
    let mut out = String::with_capacity(16);
    china_time_into(text, with_time, &mut out)?;
    Ok(out)
}

/// `china_time`, appended to `out`.
fn china_time_into(text: &str, with_time: bool, out: &mut String) -> Result<(), String> {
    let t = text.trim();
    let (y, mo, d, h, mi) = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Digits with an optional fraction, which is dropped (whole minutes are shown).
        let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
        if secs.is_empty() || frac.contains('.') {
            return Err(not_a_time(t));
        }
        let secs: i64 = match secs.parse() {
            Ok(s) if s <= MAX_UNIX => s,
            _ => {
                return Err(format!(
                    "`{}` is out of range for unix seconds (milliseconds? divide by 1000)",
                    preview(t)
                ))
            }
        };
        let local = secs + 8 * 3600;
        let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
        let sod = local.rem_euclid(86_400);
        (y, mo, d, (sod / 3600) as u32, (sod % 3600 / 60) as u32)
    } else if t.starts_with('-') && t[1..].bytes().all(|b| b.is_ascii_digit()) && t.len() > 1 {
        return Err(format!(
            "`{}` is before 1970 (negative unix seconds)",
            preview(t)
        ));
    } else {
        parse_local(t, with_time).ok_or_else(|| not_a_time(t))?
    };
    // Years run 1970..=9999 here, so four digits always suffice.
    push_2digits(out, (y / 100) as u32);
    push_2digits(out, (y % 100) as u32);
    out.push('-');
    push_2digits(out, mo);
    out.push('-');
    push_2digits(out, d);
    if with_time {
        out.push(' ');
        push_2digits(out, h);
        out.push(':');
        push_2digits(out, mi);
    }
    Ok(())
}

fn not_a_time(t: &str) -> String {
    format!(
        "`{}` is neither unix seconds nor a time like 2026-11-22 21:30:00",
        preview(t)
    )
}

/// `YYYY-MM-DD HH:MM[:SS]`; the time may be left out when only the date is shown.
fn parse_local(t: &str, need_time: bool) -> Option<(i64, u32, u32, u32, u32)> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = b.get(r)?;
        if s.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(s).ok()?.parse().ok()
        } else {
            None
        }
    };
    let sep = *b.get(4)?;
    if !(sep == b'-' || sep == b'/') || b.get(7) != Some(&sep) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y as i64, mo) {
        return None;
    }
    let (h, mi) = match b.len() {
        10 if !need_time => (0, 0),
        16 | 19 if b[10] == b' ' || b[10] == b'T' => {
            if b[13] != b':' {
                return None;
            }
            let (h, mi) = (num(11..13)?, num(14..16)?);
            if b.len() == 19 && (b[16] != b':' || num(17..19)? > 59) {
                return None;
            }
            (h, mi)
        }
        _ => return None,
    };
    (h < 24 && mi < 60).then_some((y as i64, mo, d, h, mi))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
/// Counts in 400-year eras starting on 1 March, so that the leap day is the last
/// day of a year and the month lengths repeat in a 153-day five-month rhythm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    const ERA_DAYS: i64 = 146_097;
    let shifted = days + 719_468; // 0000-03-01 → 1970-01-01
    let era = shifted.div_euclid(ERA_DAYS);
    let day_of_era = shifted - era * ERA_DAYS;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / (ERA_DAYS - 1)) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fields(Vec<Option<&'static str>>);

    impl FieldSource for Fields {
        fn text(&self, slot: usize) -> Result<Option<Cow<'_, str>>, String> {
            Ok(self.0.get(slot).copied().flatten().map(Cow::Borrowed))
        }
    }

    const KNOWN: &[&str] = &["order_sn", "order_amount", "pay_time", "goods"];

    fn compile(text: &str) -> Result<(Pattern, Vec<Box<str>>), Vec<String>> {
        let mut slots = vec![Box::from("order_sn")];
        let known = |f: &str| KNOWN.contains(&f);
        Pattern::compile(text, &known, &mut slots).map(|p| (p, slots))
    }

    /// Renders `text` with `fields` given by name.
    fn render(text: &str, fields: &[(&str, Option<&'static str>)]) -> Result<String, String> {
        let (pattern, slots) = compile(text).map_err(|e| e.join("; "))?;
        let values = slots
            .iter()
            .map(|s| {
                fields
                    .iter()
                    .find(|(n, _)| *n == &**s)
                    .and_then(|(_, v)| *v)
            })
            .collect();
        let mut out = String::new();
        pattern
            .render_into(&Fields(values), None, &mut out)
            .map_err(|e| format!("{e:?}"))?;
        Ok(out)
    }

    #[test]
    fn placeholders_and_literal_braces() {
        let f = [("order_sn", Some("SN1")), ("goods", Some("连衣裙"))];
        let cases: &[(&str, &str)] = &[
            ("{order_sn}", "SN1"),
            ("订单{order_sn}已支付", "订单SN1已支付"),
            ("{order_sn} {goods}", "SN1 连衣裙"),
            ("{{order_sn}}", "{order_sn}"),
            ("{{{order_sn}}}", "{SN1}"),
            ("a}}b{{c", "a}b{c"),
            ("plain", "plain"),
            ("", ""),
            ("{goods|truncate:2}", "连…"),
            ("{goods|default:无}", "连衣裙"),
            ("{order_amount|default:0|money}", "¥0.00"),
            ("{pay_time|default:—}", "—"),
        ];
        for (text, want) in cases {
            assert_eq!(render(text, &f).as_deref(), Ok(*want), "{text:?}");
        }
        assert_eq!(
            render("{pay_time}", &[]),
            Err("Missing { slot: 1 }".to_string())
        );
        assert_eq!(
            render("{order_sn|default:无}", &[("order_sn", Some(""))]).unwrap(),
            "无"
        );
        assert_eq!(
            render("{order_sn|truncate:3}", &[("order_sn", Some(""))]).unwrap(),
            ""
        );
    }

    #[test]
    fn compile_errors_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("{order_snn}", "unknown placeholder {order_snn}"),
            ("{order_sn|moneyy}", "unknown filter `moneyy`"),
            (
                "{order_sn|truncate}",
                "bad filter argument: truncate needs a length",
            ),
            (
                "{order_sn|truncate:x}",
                "bad filter argument: truncate takes a number",
            ),
            (
                "{order_sn|truncate:0}",
                "bad filter argument: truncate takes a number",
            ),
            (
                "{order_sn|truncate:1001}",
                "bad filter argument: truncate takes a number",
            ),
            ("{order_sn|truncate:-1}", "bad filter argument"),
            (
                "{order_sn|money:2}",
                "bad filter argument: money takes no argument",
            ),
            (
                "{order_sn|datetime:Y}",
                "bad filter argument: datetime takes no argument",
            ),
            (
                "{order_sn|date:x}",
                "bad filter argument: date takes no argument",
            ),
            (
                "{order_sn|default}",
                "bad filter argument: default needs a text",
            ),
            (
                "{order_sn|default:}",
                "bad filter argument: default needs a text",
            ),
            ("{order_sn|}", "unknown filter ``"),
            ("{}", "empty placeholder"),
            ("{ order_sn }", "bad placeholder"),
            ("{订单}", "bad placeholder"),
            ("{order_sn", "unclosed placeholder"),
            ("{order_sn {goods}", "unclosed placeholder"),
            ("a}b", "unmatched `}`"),
        ];
        for (text, want) in cases {
            let errors = compile(text).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains(want)),
                "{text:?}: {errors:?} lacks {want:?}"
            );
        }
        // Every problem of one value is reported.
        let errors = compile("{order_snn|moneyy} {x} }").unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn slots_are_shared_and_ordered() {
        let mut slots = vec![Box::from("order_sn")];
        let known = |f: &str| KNOWN.contains(&f);
        let a = Pattern::compile("{goods}{order_sn}", &known, &mut slots).unwrap();
        let b = Pattern::compile("{pay_time} {goods}", &known, &mut slots).unwrap();
        assert_eq!(a.slots().collect::<Vec<_>>(), [1, 0]);
        assert_eq!(b.slots().collect::<Vec<_>>(), [2, 1]);
        assert_eq!(slots.len(), 3);
        assert_eq!(b.literals().collect::<Vec<_>>(), [" "]);
    }

    #[test]
    fn money_rounds_as_a_decimal() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("12.345", Ok("¥12.35")),
            ("12.344", Ok("¥12.34")),
            ("1.005", Ok("¥1.01")),
            ("0.125", Ok("¥0.13")),
            ("2.675", Ok("¥2.68")),
            ("12.5", Ok("¥12.50")),
            ("12", Ok("¥12.00")),
            ("0", Ok("¥0.00")),
            ("0.004", Ok("¥0.00")),
            ("0.005", Ok("¥0.01")),
            ("007.10", Ok("¥7.10")),
            (" 8.8 ", Ok("¥8.80")),
            ("999.995", Ok("¥1000.00")),
            ("9999999999.99", Ok("¥9999999999.99")),
            ("9999999999.994999", Ok("¥9999999999.99")),
            ("9999999999.995", Err("more than 10 digits")),
            ("12345678901", Err("more than 10 digits")),
            ("-1", Err("is negative")),
            ("-0.5", Err("is negative")),
            ("", Err("is not an amount")),
            ("abc", Err("is not an amount")),
            ("1e3", Err("is not an amount")),
            ("12.", Err("is not an amount")),
            (".5", Err("is not an amount")),
            ("1.2.3", Err("is not an amount")),
            ("¥12", Err("is not an amount")),
            ("NaN", Err("is not an amount")),
            ("inf", Err("is not an amount")),
            ("１２", Err("is not an amount")),
        ];
        for (input, want) in cases {
            match (money(input), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{input:?}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{input:?}: {got}"),
                (got, _) => panic!("{input:?}: {got:?}, want {want:?}"),
            }
        }
        let huge = "9".repeat(1 << 20);
        let err = money(&huge).unwrap_err();
        assert!(
            err.len() < 200 && err.contains("more than 10 digits"),
            "{err}"
        );
    }

    #[test]
    fn times_are_shown_in_china_time() {
        let cases: &[(&str, bool, Result<&str, &str>)] = &[
            ("1795354200", true, Ok("2026-11-22 21:30")),
            ("1795354200", false, Ok("2026-11-22")),
            ("1795363199", true, Ok("2026-11-22 23:59")),
            ("1795363200", true, Ok("2026-11-23 00:00")),
            ("1795363200", false, Ok("2026-11-23")),
            ("1795354200.9", true, Ok("2026-11-22 21:30")),
            ("0", true, Ok("1970-01-01 08:00")),
            ("1709136000", false, Ok("2024-02-29")),
            ("951782400", true, Ok("2000-02-29 08:00")),
            ("2026-11-22 21:30:00", true, Ok("2026-11-22 21:30")),
            ("2026-11-22 21:30", true, Ok("2026-11-22 21:30")),
            ("2026-11-22T21:30:59", true, Ok("2026-11-22 21:30")),
            ("2026/11/22 21:30:00", true, Ok("2026-11-22 21:30")),
            (" 2026-11-22 21:30:00 ", true, Ok("2026-11-22 21:30")),
            ("2026-11-22", false, Ok("2026-11-22")),
            ("2026-11-22 21:30:00", false, Ok("2026-11-22")),
            ("2024-02-29 00:00:00", true, Ok("2024-02-29 00:00")),
            ("2026-11-22", true, Err("neither unix seconds nor a time")),
            ("2026-02-29 10:00:00", true, Err("neither")),
            ("2026-13-01 10:00:00", true, Err("neither")),
            ("2026-11-22 24:00:00", true, Err("neither")),
            ("2026-11-22 21:60:00", true, Err("neither")),
            ("2026-11-22 21:30:60", true, Err("neither")),
            ("2026-11-22 21:30:0", true, Err("neither")),
            ("2026-11/22 21:30", true, Err("neither")),
            ("22/11/2026", true, Err("neither")),
            ("yesterday", true, Err("neither")),
            ("", true, Err("neither")),
            ("1.2.3", true, Err("neither")),
            ("-5", true, Err("before 1970")),
            ("1795354200000", true, Err("milliseconds")),
            ("99999999999999999999999", true, Err("milliseconds")),
            ("253402271999", true, Ok("9999-12-31 23:59")),
            ("253402272000", true, Err("out of range")),
        ];
        for (input, with_time, want) in cases {
            match (china_time(input, *with_time), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{input:?}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{input:?}: {got}"),
                (got, _) => panic!("{input:?}: {got:?}, want {want:?}"),
            }
        }
        let huge = "1".repeat(1 << 20);
        assert!(china_time(&huge, true).unwrap_err().len() < 200);
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
        // Walk every day across several eras: each is the day after the previous one.
        let mut prev = civil_from_days(-800_000);
        for days in -799_999..800_000 {
            let (y, m, d) = civil_from_days(days);
            let expected = if prev.2 < days_in_month(prev.0, prev.1) {
                (prev.0, prev.1, prev.2 + 1)
            } else if prev.1 < 12 {
                (prev.0, prev.1 + 1, 1)
            } else {
                (prev.0 + 1, 1, 1)
            };
            assert_eq!((y, m, d), expected, "day {days}");
            prev = (y, m, d);
        }
    }
}

/// Unix seconds, or a `YYYY-MM-DD HH:MM[:SS]` text taken as China time, → unix
/// seconds (a service card's time fields; seconds of a text are dropped).
pub fn unix_seconds(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .ok()
            .filter(|s| *s <= MAX_UNIX)
            .ok_or_else(|| not_a_time(t));
    }
    let (y, mo, d, h, mi) = parse_local(t, true).ok_or_else(|| not_a_time(t))?;
    Ok(days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60) - 8 * 3600)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod unix_seconds_tests {
    use super::*;

    #[test]
    fn china_time_texts_and_seconds_give_unix_seconds() {
        assert_eq!(unix_seconds("1790000000"), Ok(1_790_000_000));
        // 2026-11-22 21:30 in China is 13:30 UTC.
        assert_eq!(unix_seconds("2026-11-22 21:30:00"), Ok(1_795_354_200));
        assert_eq!(
            china_time(&unix_seconds("2026-11-22 21:30").unwrap().to_string(), true),
            Ok("2026-11-22 21:30".to_string())
        );
        assert!(unix_seconds("yesterday").is_err());
    }
}
