//! The sandbox's state (apps, tokens, users, grants, legacy permits, templates,
//! delivered messages, counters, faults) and WeChat's rules applied to it. Every
//! function here runs under the one state lock, so each is short and does no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::fault::Fault;
use super::quota::Quotas;
use super::templates::{self, SEEDED, SEEDED_LEGACY};
use fashop_notify::rules::KeywordType;
use fashop_notify::Clock;
use fashop_notify::Secret;

/// How long a legacy form_id / prepay_id stays usable.
pub(crate) const PERMIT_LIFETIME_SECS: i64 = 7 * 86_400;
/// Uses of a prepay_id.
pub(crate) const PREPAY_USES: u32 = 3;
/// WeChat's token lifetime, and how long before its end normal-mode
/// stable_token hands out the next token.
const WECHAT_EXPIRES_IN: i64 = 7_200;
const STABLE_RENEW_AHEAD_SECS: i64 = 300;

/// Minimum distance between two forced stable_token refreshes, and the daily cap.
pub(crate) const FORCE_REFRESH_GAP_SECS: i64 = 30;
pub(crate) const FORCE_REFRESH_PER_DAY: u32 = 20;
/// WeChat keeps at most this many private templates per app: 25, as the
/// addtemplate page stated (200012 "个人模版数已达上限，上限25个"); the current
/// page states no figure (docs/spec/wechat.md).
const MAX_PRIVATE_TEMPLATES: usize = 25;
/// addtemplate's `sceneDesc`: "15个字以内" (200021 beyond).
const MAX_SCENE_DESC_CHARS: usize = 15;

/// The sandbox's clock: a base clock plus an offset moved by `advance`.
#[derive(Debug)]
pub(crate) struct SandboxClock {
    base: Box<dyn Clock>,
    offset_ms: AtomicI64,
}

impl SandboxClock {
    pub(crate) fn new(base: Box<dyn Clock>) -> SandboxClock {
        SandboxClock {
            base,
            offset_ms: AtomicI64::new(0),
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.base.now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }

    pub(crate) fn advance(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

/// A message the sandbox accepted (subscribe or legacy template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveredMessage {
    pub appid: String,
    pub touser: String,
    pub template_id: String,
    pub page: Option<String>,
    /// The `data` object exactly as sent.
    pub data: Value,
    pub msgid: u64,
    /// The legacy form_id or prepay_id used; `None` for subscribe messages.
    pub form_id: Option<String>,
    pub miniprogram_state: Option<String>,
    pub lang: Option<String>,
    /// Sandbox clock, unix seconds.
    pub delivered_at: i64,
}

/// What the sandbox has seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Every HTTP request, the control API excepted.
    pub requests: u64,
    /// Calls to the token endpoints, per appid as given, then per endpoint
    /// (`token`, `stable_token`); failed calls count too.
    pub token_fetches: BTreeMap<String, BTreeMap<String, u64>>,
    /// Calls to the two send endpoints.
    pub send_attempts: u64,
    /// Messages accepted (and recorded).
    pub sends: u64,
    /// Answers with a non-zero errcode, per errcode (faults included).
    pub errors: BTreeMap<i64, u64>,
    /// Answers with an HTTP error status (injected), per status.
    pub http_errors: BTreeMap<u16, u64>,
    /// Faults that fired.
    pub faults_fired: u64,
}

impl Counters {
    /// Token fetches of `appid` at `endpoint` (`token` or `stable_token`).
    pub fn token_fetches(&self, appid: &str, endpoint: &str) -> u64 {
        self.token_fetches
            .get(appid)
            .and_then(|m| m.get(endpoint))
            .copied()
            .unwrap_or(0)
    }

    /// Token fetches of `appid` at both endpoints.
    pub fn token_fetches_total(&self, appid: &str) -> u64 {
        self.token_fetches
            .get(appid)
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }

    /// Answers that carried `errcode`.
    pub fn errors(&self, errcode: i64) -> u64 {
        self.errors.get(&errcode).copied().unwrap_or(0)
    }
}

/// An answer to one request: HTTP status, JSON body and the errcode it carries.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub errcode: i64,
}

impl Answer {
    pub(crate) fn ok_json(body: Value) -> Answer {
        Answer {
            status: 200,
            body: body.to_string().into_bytes(),
            errcode: 0,
        }
    }

    pub(crate) fn raw_ok(body: String) -> Answer {
        Answer {
            status: 200,
            body: body.into_bytes(),
            errcode: 0,
        }
    }
}

/// A WeChat error answer: `{"errcode":N,"errmsg":"… rid: …"}`, HTTP 200.
pub(crate) fn wx_error(errcode: i64, errmsg: &str) -> Answer {
    let body = json!({ "errcode": errcode, "errmsg": format!("{errmsg} rid: {}", rid()) });
    Answer {
        status: 200,
        body: body.to_string().into_bytes(),
        errcode,
    }
}

/// WeChat's usual message for an errcode, for injected faults.
pub(crate) fn standard_errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        40001 => "invalid credential, access_token is invalid or not latest",
        40003 => "invalid openid",
        40013 => "invalid appid",
        40014 => "invalid access_token",
        40037 => "invalid template_id",
        40125 => "invalid appsecret",
        41028 => "invalid form id",
        41029 => "form id used count reach limit",
        41030 => "invalid page",
        42001 => "access_token expired",
        43101 => "user refuse to accept the msg",
        // The texts WeChat answers (docs/spec/wechat.md; sources in sandbox/README.md).
        43108 => "Cannot make concurrent calls to the same OpenID, please try again",
        45168 => "keyword in blacklist",
        40164 => "invalid ip, not in whitelist",
        40243 => "AppSecret已被冻结",
        89503 => "此次调用需要管理员确认，请耐心等候",
        89506 => "该IP调用求请求已被公众号管理员拒绝，请24小时后再试，建议调用前与管理员沟通确认",
        89507 => "该IP调用求请求已被公众号管理员拒绝，请1小时后再试，建议调用前与管理员沟通确认",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit, must slower, retry next minute",
        45103 => "This API has been unsupported",
        45109 => "This API has been withdrawn",
        47001 => "data format error",
        48001 => "api unauthorized",
        // WeChat's text for 43107 is unverified; the code is on subscribeMessage.send's list.
        43107 => "subscribe message capability banned",
        47003 => "argument invalid!",
        _ => "error",
    }
}

static RID_SEQ: AtomicU64 = AtomicU64::new(0);

/// A request id like the ones WeChat appends to every errmsg (`rid:
/// 63b13eeb-65c02d34-0fd76547`, developer community samples).
pub(crate) fn rid() -> String {
    let n = RID_SEQ.fetch_add(1, Ordering::Relaxed);
    let a = mix(n ^ 0x6a09_e667_f3bc_c908);
    let b = mix(a);
    format!("{:08x}-{:08x}-{:08x}", a >> 32, a as u32, b as u32)
}

/// WeChat's 47003 for one keyword: `argument invalid! data.thing3.value
/// invalid` (or `is empty`), with the `data.…` part cut at 30 characters as
/// the samples show it (`data.character_string1.value i`,
/// `data.short_thing7.value invali`); the text around that part is not cut
/// (a sample of 73 characters carries a hint after it). No hint of the rule
/// broken.
fn keyword_invalid(name: &str, what: &str) -> Answer {
    let mut part = format!("data.{name}.value {what}");
    if let Some((at, _)) = part.char_indices().nth(KEYWORD_PART_CHARS) {
        part.truncate(at);
    }
    wx_error(47003, &format!("argument invalid! {part}"))
}

/// How much of `data.<keyword>.value …` a 47003 keeps.
const KEYWORD_PART_CHARS: usize = 30;

/// splitmix64: cheap, well-spread, and enough for ids that only need to look random.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A subscribe or legacy template held by an app.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub id: String,
    pub title: String,
    /// (name such as `thing3`, label, example)
    pub keywords: Vec<(String, String, String)>,
    pub legacy: bool,
    pub scene_desc: String,
    /// WeChat's `type`: 2 one-time, 3 long-term (a send does not use the grant up).
    pub kind: u8,
    /// The values of each enum keyword, by keyword name.
    pub enums: Vec<(String, Vec<String>)>,
}

impl Template {
    pub(crate) fn from_library(
        id: &str,
        lib: &templates::LibraryTemplate,
        kids: &[u32],
    ) -> Option<Self> {
        let mut keywords = Vec::with_capacity(kids.len());
        let mut enums = Vec::new();
        for kid in kids {
            let k = lib.keywords.iter().find(|k| k.kid == *kid)?;
            let name = format!("{}{}", k.rule, k.kid);
            if !k.enum_values.is_empty() {
                let values = k.enum_values.iter().map(|v| v.to_string()).collect();
                enums.push((name.clone(), values));
            }
            keywords.push((name, k.name.to_string(), k.example.to_string()));
        }
        Some(Template {
            id: id.to_string(),
            title: lib.title.to_string(),
            keywords,
            legacy: false,
            scene_desc: String::new(),
            kind: lib.kind,
            enums,
        })
    }

    fn legacy(id: &str, title: &str, labels: &[&str]) -> Self {
        Template {
            id: id.to_string(),
            title: title.to_string(),
            keywords: labels
                .iter()
                .enumerate()
                .map(|(i, l)| (format!("keyword{}", i + 1), l.to_string(), String::new()))
                .collect(),
            legacy: true,
            scene_desc: String::new(),
            kind: 2,
            enums: Vec::new(),
        }
    }

    /// `keywordEnumValueList` as gettemplate shows it: `keywordCode` carries
    /// `.DATA` (https://developers.weixin.qq.com/miniprogram/dev/server/API/mp-message-management/subscribe-message/api_getwxapubnewtemplate.html).
    pub(crate) fn enum_value_list(&self) -> Vec<Value> {
        self.enums
            .iter()
            .map(|(name, values)| json!({ "enumValueList": values, "keywordCode": format!("{name}.DATA") }))
            .collect()
    }

    /// `订单号:{{character_string1.DATA}}\n…`, as `gettemplate` shows it.
    pub(crate) fn content(&self) -> String {
        self.keywords
            .iter()
            .map(|(name, label, _)| format!("{label}:{{{{{name}.DATA}}}}\n"))
            .collect()
    }

    pub(crate) fn example(&self) -> String {
        self.keywords
            .iter()
            .map(|(_, label, ex)| format!("{label}:{ex}\n"))
            .collect()
    }

    fn has_keyword(&self, name: &str) -> bool {
        self.keywords.iter().any(|(n, _, _)| n == name)
    }
}

#[derive(Debug, Clone)]
struct FormId {
    openid: String,
    created_at: i64,
    used: bool,
}

#[derive(Debug, Clone)]
struct PrepayId {
    openid: String,
    created_at: i64,
    paid: bool,
    uses: u32,
}

/// One app's state. No `Debug`: it holds the secret.
pub(crate) struct AppState {
    pub(crate) secret: Secret,
    pub(crate) users: HashSet<String>,
    pub(crate) grants: HashMap<(String, String), u64>,
    form_ids: HashMap<String, FormId>,
    prepay_ids: HashMap<String, PrepayId>,
    pub(crate) templates: BTreeMap<String, Template>,
    pub(crate) pages: Vec<String>,
    classic_token: Option<String>,
    stable_token: Option<String>,
    last_force_refresh: Option<i64>,
    force_refresh_day: (i64, u32),
    next_template_seq: u64,
    /// (openid, template_id) the user switched off in settings: 43101 whatever the grants.
    revoked: HashSet<(String, String)>,
    /// Words of WeChat's content blacklist: a value holding one gets 45168.
    blacklist: Vec<String>,
    /// When each user's last send was accepted (ms), for 43108.
    last_send_ms: HashMap<String, i64>,
    /// The account's service categories (getcategory); a library template of
    /// another category cannot be added.
    pub(crate) categories: Vec<u32>,
}

impl AppState {
    fn new(secret: &str) -> AppState {
        AppState {
            secret: Secret::new(secret),
            users: HashSet::new(),
            grants: HashMap::new(),
            form_ids: HashMap::new(),
            prepay_ids: HashMap::new(),
            templates: seeded_templates(),
            pages: Vec::new(),
            classic_token: None,
            stable_token: None,
            last_force_refresh: None,
            force_refresh_day: (0, 0),
            next_template_seq: 1,
            revoked: HashSet::new(),
            blacklist: Vec::new(),
            last_send_ms: HashMap::new(),
            categories: templates::CATEGORIES.iter().map(|(id, _)| *id).collect(),
        }
    }
}

fn seeded_templates() -> BTreeMap<String, Template> {
    let mut out = BTreeMap::new();
    for (id, tid, kids) in SEEDED {
        let lib = templates::library(*tid).expect("seeded template refers to the library");
        let t = Template::from_library(id, lib, kids).expect("seeded kids exist");
        out.insert(id.to_string(), t);
    }
    for (id, title, labels) in SEEDED_LEGACY {
        out.insert(id.to_string(), Template::legacy(id, title, labels));
    }
    out
}

#[derive(Clone)]
struct TokenInfo {
    appid: String,
    expires_at: i64,
    /// Earlier than `expires_at` once the token was replaced (classic grace) or
    /// force-refreshed away (stable).
    valid_until: i64,
}

/// Settings that shape WeChat's behaviour.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub legacy: bool,
    pub grace_secs: i64,
    pub expires_in: i64,
    /// A send to a user less than this many ms after the previous accepted
    /// one answers 43108 (concurrent sends to one openid); 0: off.
    pub concurrent_gap_ms: i64,
}

#[derive(Debug)]
pub(crate) struct FaultSlot {
    pub fault: Fault,
    pub left: Option<u32>,
}

/// The whole mutable state, behind one lock. No `Debug`: it holds secrets and tokens.
pub(crate) struct World {
    pub(crate) settings: Settings,
    pub(crate) apps: HashMap<String, AppState>,
    tokens: HashMap<String, TokenInfo>,
    delivered: Vec<DeliveredMessage>,
    pub(crate) counters: Counters,
    pub(crate) faults: Vec<FaultSlot>,
    /// Daily API calls per app and path, and quota resets.
    pub(crate) quotas: Quotas,
    next_msgid: u64,
    rng: u64,
    /// The message push to apps that set a push URL.
    pub(crate) push: super::push_state::PushState,
    /// The sandbox clock in ms at the request being handled (set by the server).
    pub(crate) now_ms: i64,
    /// Payments and service cards (`cards.rs`).
    pub(crate) cards: super::cards::CardWorld,
}

/// The result of a control operation: `Err` carries a message for the caller.
pub(crate) type Control<T> = std::result::Result<T, String>;

impl World {
    pub(crate) fn new(settings: Settings, seed: u64) -> World {
        World {
            settings,
            apps: HashMap::new(),
            tokens: HashMap::new(),
            delivered: Vec::new(),
            counters: Counters::default(),
            faults: Vec::new(),
            quotas: Quotas::default(),
            next_msgid: 3_162_385_746_202_574_848,
            rng: seed,
            push: Default::default(),
            now_ms: 0,
            cards: Default::default(),
        }
    }

    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(1);
        mix(self.rng ^ 0x5be0_cd19_137e_2179)
    }

    /// A token that looks like WeChat's: a version prefix and ~130 base64url characters.
    fn new_token(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
        let mut s = String::with_capacity(136);
        s.push_str("86_");
        while s.len() < 136 {
            let mut r = self.next_random();
            for _ in 0..10 {
                s.push(ALPHABET[(r & 63) as usize] as char);
                r >>= 6;
            }
        }
        s.truncate(136);
        s
    }

    // ---- control ------------------------------------------------------------

    pub(crate) fn seed_app(&mut self, appid: &str, secret: &str) -> Control<()> {
        fashop_notify::check_appid(appid).map_err(|e| e.to_string())?;
        if secret.is_empty() {
            return Err("secret must not be empty".into());
        }
        match self.apps.get_mut(appid) {
            Some(app) => app.secret = Secret::new(secret),
            None => {
                self.apps.insert(appid.to_string(), AppState::new(secret));
            }
        }
        Ok(())
    }

    fn app_mut(&mut self, appid: &str) -> Control<&mut AppState> {
        self.apps
            .get_mut(appid)
            .ok_or_else(|| format!("unknown appid {appid:?}: seed it first"))
    }

    pub(crate) fn seed_user(&mut self, appid: &str, openid: &str) -> Control<()> {
        if openid.is_empty() {
            return Err("openid must not be empty".into());
        }
        self.app_mut(appid)?.users.insert(openid.to_string());
        Ok(())
    }

    pub(crate) fn grant(
        &mut self,
        appid: &str,
        openid: &str,
        template_id: &str,
        count: u64,
    ) -> Control<()> {
        if template_id.is_empty() {
            return Err("template_id must not be empty".into());
        }
        self.seed_user(appid, openid)?;
        let app = self.app_mut(appid)?;
        // A tap after the user switched the template back on.
        app.revoked
            .remove(&(openid.to_string(), template_id.to_string()));
        let n = app
            .grants
            .entry((openid.to_string(), template_id.to_string()))
            .or_insert(0);
        *n = n.saturating_add(count);
        Ok(())
    }

    pub(crate) fn grants_left(&self, appid: &str, openid: &str, template_id: &str) -> u64 {
        self.apps
            .get(appid)
            .and_then(|a| {
                a.grants
                    .get(&(openid.to_string(), template_id.to_string()))
                    .copied()
            })
            .unwrap_or(0)
    }

    pub(crate) fn add_form_id(
        &mut self,
        appid: &str,
        openid: &str,
        form_id: &str,
        now: i64,
    ) -> Control<()> {
        if form_id.is_empty() {
            return Err("form_id must not be empty".into());
        }
        self.seed_user(appid, openid)?;
        let app = self.app_mut(appid)?;
        app.form_ids
            .entry(form_id.to_string())
            .or_insert_with(|| FormId {
                openid: openid.to_string(),
                created_at: now,
                used: false,
            });
        Ok(())
    }

    pub(crate) fn add_prepay_id(
        &mut self,
        appid: &str,
        openid: &str,
        prepay_id: &str,
        now: i64,
    ) -> Control<()> {
        if prepay_id.is_empty() {
            return Err("prepay_id must not be empty".into());
        }
        self.seed_user(appid, openid)?;
        let app = self.app_mut(appid)?;
        app.prepay_ids
            .entry(prepay_id.to_string())
            .or_insert_with(|| PrepayId {
                openid: openid.to_string(),
                created_at: now,
                paid: false,
                uses: 0,
            });
        Ok(())
    }

    pub(crate) fn mark_paid(&mut self, appid: &str, prepay_id: &str) -> Control<()> {
        let app = self.app_mut(appid)?;
        match app.prepay_ids.get_mut(prepay_id) {
            Some(p) => {
                p.paid = true;
                Ok(())
            }
            None => Err(format!("unknown prepay_id {prepay_id:?}: add it first")),
        }
    }

    /// The account's categories: a shop (服装, 电商平台) holds no long-term
    /// template, so the seeded ones of other categories go.
    pub(crate) fn set_categories(&mut self, appid: &str, categories: Vec<u32>) -> Control<()> {
        if let Some(bad) = categories
            .iter()
            .find(|c| !templates::CATEGORIES.iter().any(|(id, _)| id == *c))
        {
            return Err(format!("category {bad} is not one of the sandbox's"));
        }
        let app = self.app_mut(appid)?;
        app.templates.retain(|id, _| {
            SEEDED
                .iter()
                .find(|(seeded, _, _)| seeded == id)
                .and_then(|(_, tid, _)| templates::library(*tid))
                .is_none_or(|lib| categories.contains(&lib.category_id))
        });
        app.categories = categories;
        Ok(())
    }

    pub(crate) fn set_pages(&mut self, appid: &str, pages: Vec<String>) -> Control<()> {
        self.app_mut(appid)?.pages = pages;
        Ok(())
    }

    /// The user switched the template off in the mini program's settings:
    /// the grants left go (how many) and every later send answers 43101 until
    /// a new grant (the user switched it on and tapped again).
    pub(crate) fn revoke(&mut self, appid: &str, openid: &str, template_id: &str) -> Control<u64> {
        if openid.is_empty() || template_id.is_empty() {
            return Err("openid and template_id must not be empty".into());
        }
        let app = self.app_mut(appid)?;
        let key = (openid.to_string(), template_id.to_string());
        let dropped = app.grants.remove(&key).unwrap_or(0);
        app.revoked.insert(key);
        Ok(dropped)
    }

    /// Words of WeChat's content blacklist for the app (`[]`: none).
    pub(crate) fn set_blacklist(&mut self, appid: &str, words: Vec<String>) -> Control<()> {
        if words.iter().any(String::is_empty) {
            return Err("blacklist words must not be empty".into());
        }
        self.app_mut(appid)?.blacklist = words;
        Ok(())
    }

    pub(crate) fn inject(&mut self, fault: Fault) -> Control<()> {
        if let Some(problem) = fault.problem() {
            return Err(problem);
        }
        let left = fault.count;
        self.faults.push(FaultSlot { fault, left });
        Ok(())
    }

    /// The fault that fires for this request, if any; uses up one of its count.
    pub(crate) fn fire_fault(&mut self, path: &str) -> Option<Fault> {
        if self.faults.is_empty() {
            return None;
        }
        let mut fired = None;
        for i in 0..self.faults.len() {
            if !self.faults[i].fault.matches(path) {
                continue;
            }
            if let Some(p) = self.faults[i].fault.probability {
                let roll = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
                if roll >= p {
                    continue;
                }
            }
            fired = Some(i);
            break;
        }
        let i = fired?;
        let slot = &mut self.faults[i];
        let fault = slot.fault.clone();
        if let Some(left) = slot.left.as_mut() {
            *left -= 1;
            if *left == 0 {
                self.faults.remove(i);
            }
        }
        self.counters.faults_fired += 1;
        Some(fault)
    }

    pub(crate) fn delivered(
        &self,
        appid: Option<&str>,
        openid: Option<&str>,
    ) -> Vec<DeliveredMessage> {
        self.delivered
            .iter()
            .filter(|m| appid.is_none_or(|a| m.appid == a))
            .filter(|m| openid.is_none_or(|o| m.touser == o))
            .cloned()
            .collect()
    }

    /// Back to the state right after start: users, grants, permits, tokens,
    /// deliveries, counters and faults go; apps, their secrets and the settings stay.
    pub(crate) fn reset(&mut self) {
        for app in self.apps.values_mut() {
            let secret = app.secret.expose().to_string();
            *app = AppState::new(&secret);
        }
        self.tokens.clear();
        self.delivered.clear();
        self.counters = Counters::default();
        self.faults.clear();
        self.push.clear();
    }

    pub(crate) fn count_token_fetch(&mut self, appid: &str, endpoint: &str) {
        let per_app = match self.counters.token_fetches.get_mut(appid) {
            Some(m) => m,
            None => self
                .counters
                .token_fetches
                .entry(appid.to_string())
                .or_default(),
        };
        *per_app.entry(endpoint.to_string()).or_insert(0) += 1;
    }

    pub(crate) fn count_answer(&mut self, errcode: i64) {
        if errcode != 0 {
            *self.counters.errors.entry(errcode).or_insert(0) += 1;
        }
    }

    // ---- tokens ---------------------------------------------------------------

    fn check_credentials(&self, appid: Option<&str>, secret: Option<&str>) -> Result<(), Answer> {
        let appid = match appid {
            None | Some("") => return Err(wx_error(41002, "appid missing")),
            Some(a) => a,
        };
        let Some(app) = self.apps.get(appid) else {
            return Err(wx_error(40013, "invalid appid"));
        };
        match secret {
            None | Some("") => Err(wx_error(41004, "appsecret missing")),
            Some(s) if s != app.secret.expose() => Err(wx_error(40125, "invalid appsecret")),
            Some(_) => Ok(()),
        }
    }

    /// `GET /cgi-bin/token`: a new token per call; the previous one keeps
    /// working for the grace period.
    pub(crate) fn classic_token(
        &mut self,
        grant_type: Option<&str>,
        appid: Option<&str>,
        secret: Option<&str>,
        now: i64,
    ) -> Answer {
        if let Err(a) = self.check_credentials(appid, secret) {
            return a;
        }
        if grant_type != Some("client_credential") {
            return wx_error(40002, "invalid grant_type");
        }
        let appid = appid.unwrap_or_default().to_string();
        let token = self.new_token();
        let expires_in = self.settings.expires_in;
        let grace_end = now + self.settings.grace_secs;
        let app = self.apps.get_mut(&appid).expect("checked above");
        if let Some(old) = app.classic_token.replace(token.clone()) {
            if let Some(info) = self.tokens.get_mut(&old) {
                info.valid_until = info.valid_until.min(grace_end);
            }
        }
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                appid,
                expires_at: now + expires_in,
                valid_until: now + expires_in,
            },
        );
        Answer::ok_json(json!({ "access_token": token, "expires_in": expires_in }))
    }

    /// How early normal mode renews a stable token: WeChat's 300 s of 7200,
    /// the same share of a lifetime the sandbox was given.
    fn stable_renew_ahead_secs(&self) -> i64 {
        self.settings.expires_in * STABLE_RENEW_AHEAD_SECS / WECHAT_EXPIRES_IN
    }

    /// `POST /cgi-bin/stable_token`: one token per app while it is valid, a
    /// new one in its last minutes (the old one stays valid to its end);
    /// `force_refresh` replaces it at most once per 30 s and 20 times a day.
    pub(crate) fn stable_token(&mut self, body: &Value, now: i64) -> Answer {
        let field = |k: &str| body.get(k).and_then(Value::as_str);
        if !body.is_object() {
            return wx_error(47001, "data format error");
        }
        if let Err(a) = self.check_credentials(field("appid"), field("secret")) {
            return a;
        }
        if field("grant_type") != Some("client_credential") {
            return wx_error(40002, "invalid grant_type");
        }
        let force = match body.get("force_refresh") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return wx_error(47001, "data format error: force_refresh must be a bool"),
        };
        let appid = field("appid").unwrap_or_default().to_string();
        let current = self.apps[&appid].stable_token.clone();
        // Normal mode renews a token in its last minutes: the caller gets a
        // new one while the old one lives out its time.
        let mut renewing = false;
        if !force {
            if let Some(tok) = &current {
                if let Some(info) = self.tokens.get(tok) {
                    if now < info.valid_until && now < info.expires_at {
                        let left = info.expires_at - now;
                        if left > self.stable_renew_ahead_secs() {
                            return Answer::ok_json(
                                json!({ "access_token": tok, "expires_in": left }),
                            );
                        }
                        renewing = true;
                    }
                }
            }
        } else {
            let app = &self.apps[&appid];
            let day = now.div_euclid(86_400);
            let used_today = if app.force_refresh_day.0 == day {
                app.force_refresh_day.1
            } else {
                0
            };
            // "请保证调用时间隔至少为30s，否则不会刷新": within 30 s the call
            // does not refresh (https://developers.weixin.qq.com/minigame/dev/api-backend/open-api/access-token/auth.getStableAccessToken.html);
            // that it answers the current token is unverified.
            let recent = app
                .last_force_refresh
                .is_some_and(|t| now - t < FORCE_REFRESH_GAP_SECS);
            if recent {
                if let Some(info) = current.as_ref().and_then(|t| self.tokens.get(t)) {
                    if now < info.valid_until && now < info.expires_at {
                        let left = info.expires_at - now;
                        let tok = current.clone().unwrap_or_default();
                        return Answer::ok_json(json!({ "access_token": tok, "expires_in": left }));
                    }
                }
            }
            if used_today >= FORCE_REFRESH_PER_DAY {
                return wx_error(45009, "reach max api daily quota limit");
            }
            let app = self.apps.get_mut(&appid).expect("checked above");
            app.last_force_refresh = Some(now);
            app.force_refresh_day = (day, used_today + 1);
        }
        let token = self.new_token();
        let expires_in = self.settings.expires_in;
        if let Some(old) = current.filter(|_| !renewing) {
            if let Some(info) = self.tokens.get_mut(&old) {
                info.valid_until = info.valid_until.min(now);
            }
        }
        self.apps
            .get_mut(&appid)
            .expect("checked above")
            .stable_token = Some(token.clone());
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                appid,
                expires_at: now + expires_in,
                valid_until: now + expires_in,
            },
        );
        Answer::ok_json(json!({ "access_token": token, "expires_in": expires_in }))
    }

    /// The appid a token belongs to, or WeChat's answer to a bad token.
    /// The app a token was given to, valid or not (for counting its calls).
    pub(crate) fn appid_of_token(&self, token: &str) -> Option<String> {
        self.tokens.get(token).map(|t| t.appid.clone())
    }

    /// `clear_quota/v2`: `appid` and `appsecret` (URL or JSON body), no token.
    pub(crate) fn clear_quota_v2(&mut self, appid: Option<&str>, secret: Option<&str>) -> Answer {
        if let Err(a) = self.check_credentials(appid, secret) {
            return a;
        }
        let appid = appid.unwrap_or_default();
        match self.quotas.clear(appid, self.now_ms) {
            Ok(()) => Answer::ok_json(json!({"errcode": 0, "errmsg": "ok"})),
            Err((code, msg)) => wx_error(code, msg),
        }
    }

    pub(crate) fn check_token(&self, token: Option<&str>, now: i64) -> Result<String, Answer> {
        let token = match token {
            None | Some("") => return Err(wx_error(41001, "access_token missing")),
            Some(t) => t,
        };
        let Some(info) = self.tokens.get(token) else {
            return Err(wx_error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            ));
        };
        if now >= info.expires_at {
            return Err(wx_error(42001, "access_token expired"));
        }
        if now >= info.valid_until {
            return Err(wx_error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            ));
        }
        Ok(info.appid.clone())
    }

    // ---- messages ---------------------------------------------------------------

    fn check_page(app: &AppState, page: Option<&str>) -> Result<(), Answer> {
        let Some(page) = page.filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        if app.pages.is_empty() {
            return Ok(());
        }
        let path = page
            .split('?')
            .next()
            .unwrap_or(page)
            .trim_start_matches('/');
        if app.pages.iter().any(|p| p.trim_start_matches('/') == path) {
            Ok(())
        } else {
            Err(wx_error(41030, "invalid page"))
        }
    }

    /// `POST /cgi-bin/message/subscribe/send`, after the body parsed as JSON.
    pub(crate) fn subscribe_send(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        let appid = match self.check_token(token, now) {
            Ok(a) => a,
            Err(a) => return a,
        };
        let Some(obj) = body.as_object() else {
            return wx_error(47001, "data format error");
        };
        let text = |k: &str| -> Result<Option<&str>, Answer> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(wx_error(
                    47001,
                    &format!("data format error: {k} must be a string"),
                )),
            }
        };
        let (touser, template_id, page, state, lang) = match (
            text("touser"),
            text("template_id"),
            text("page"),
            text("miniprogram_state"),
            text("lang"),
        ) {
            (Ok(a), Ok(b), Ok(c), Ok(d), Ok(e)) => (a, b, c, d, e),
            (Err(x), ..)
            | (_, Err(x), ..)
            | (_, _, Err(x), ..)
            | (.., Err(x), _)
            | (.., Err(x)) => return x,
        };
        let app = self.apps.get(&appid).expect("tokens belong to known apps");
        let Some(touser) = touser.filter(|u| app.users.contains(*u)) else {
            return wx_error(40003, "invalid openid");
        };
        let Some(template) = template_id
            .and_then(|id| app.templates.get(id))
            .filter(|t| !t.legacy)
        else {
            return wx_error(40037, "invalid template_id");
        };
        if template.keywords.is_empty() {
            // A service card's template: set_user_notify only (wechat.md).
            return wx_error(40037, "invalid template_id: a service card template is not sent with subscribeMessage.send");
        }
        if let Err(a) = Self::check_page(app, page) {
            return a;
        }
        if let Some(s) = state {
            if !matches!(s, "formal" | "trial" | "developer") {
                return wx_error(47003, "argument invalid! miniprogram_state invalid");
            }
        }
        if let Some(l) = lang {
            if !matches!(l, "zh_CN" | "en_US" | "zh_HK" | "zh_TW") {
                return wx_error(47003, "argument invalid! lang invalid");
            }
        }
        if let Err(a) = check_subscribe_data(template, obj.get("data")) {
            return a;
        }
        if blacklisted(&app.blacklist, obj.get("data")) {
            return wx_error(45168, "keyword in blacklist");
        }
        let long_term = template.kind == 3;
        let key = (touser.to_string(), template.id.clone());
        let gap = self.settings.concurrent_gap_ms;
        let now_ms = self.now_ms;
        let app = self.apps.get_mut(&appid).expect("known app");
        if gap > 0
            && app
                .last_send_ms
                .get(&key.0)
                .is_some_and(|t| now_ms - t < gap)
        {
            return wx_error(
                43108,
                "Cannot make concurrent calls to the same OpenID, please try again",
            );
        }
        if app.revoked.contains(&key) {
            return wx_error(43101, "user refuse to accept the msg");
        }
        // A long-term template's grant stays after a send.
        match app.grants.get_mut(&key) {
            Some(n) if *n > 0 => {
                if !long_term {
                    *n -= 1
                }
            }
            _ => return wx_error(43101, "user refuse to accept the msg"),
        }
        if gap > 0 {
            app.last_send_ms.insert(key.0.clone(), now_ms);
        }
        let msgid = self.next_msgid;
        self.next_msgid += 1;
        self.counters.sends += 1;
        self.push.sent(&appid, &key.0, &key.1, msgid, now);
        self.delivered.push(DeliveredMessage {
            appid,
            touser: key.0,
            template_id: key.1,
            page: page.map(str::to_string),
            data: obj.get("data").cloned().unwrap_or(Value::Null),
            msgid,
            form_id: None,
            miniprogram_state: state.map(str::to_string),
            lang: lang.map(str::to_string),
            delivered_at: now,
        });
        Answer::raw_ok(format!(r#"{{"errcode":0,"errmsg":"ok","msgid":{msgid}}}"#))
    }

    /// `POST /cgi-bin/message/wxopen/template/send`: switched off (45103) unless
    /// the legacy mode is on, then form_id / prepay_id rules apply.
    pub(crate) fn legacy_send(&mut self, token: Option<&str>, body: &Value, now: i64) -> Answer {
        let appid = match self.check_token(token, now) {
            Ok(a) => a,
            Err(a) => return a,
        };
        if !self.settings.legacy {
            return wx_error(45103, "This API has been unsupported");
        }
        let Some(obj) = body.as_object() else {
            return wx_error(47001, "data format error");
        };
        let s = |k: &str| obj.get(k).and_then(Value::as_str);
        let app = self.apps.get(&appid).expect("tokens belong to known apps");
        let Some(touser) = s("touser").filter(|u| app.users.contains(*u)) else {
            return wx_error(40003, "invalid openid");
        };
        let Some(template) = s("template_id")
            .and_then(|id| app.templates.get(id))
            .filter(|t| t.legacy)
        else {
            return wx_error(40037, "invalid template_id");
        };
        if let Err(a) = Self::check_page(app, s("page")) {
            return a;
        }
        if let Err(a) = check_legacy_data(template, obj.get("data"), s("emphasis_keyword")) {
            return a;
        }
        let template_id = template.id.clone();
        let form_id = s("form_id").unwrap_or_default().to_string();
        let app = self.apps.get_mut(&appid).expect("known app");
        if let Some(f) = app.form_ids.get_mut(&form_id) {
            if f.openid != touser || now >= f.created_at + PERMIT_LIFETIME_SECS {
                return wx_error(41028, "invalid form id");
            }
            if f.used {
                return wx_error(41029, "form id used count reach limit");
            }
            f.used = true;
        } else if let Some(p) = app.prepay_ids.get_mut(&form_id) {
            if p.openid != touser || now >= p.created_at + PERMIT_LIFETIME_SECS || !p.paid {
                return wx_error(41028, "invalid form id");
            }
            if p.uses >= PREPAY_USES {
                return wx_error(41029, "form id used count reach limit");
            }
            p.uses += 1;
        } else {
            return wx_error(41028, "invalid form id");
        }
        let msgid = self.next_msgid;
        self.next_msgid += 1;
        self.counters.sends += 1;
        self.delivered.push(DeliveredMessage {
            appid,
            touser: touser.to_string(),
            template_id,
            page: s("page").map(str::to_string),
            data: obj.get("data").cloned().unwrap_or(Value::Null),
            msgid,
            form_id: Some(form_id),
            miniprogram_state: None,
            lang: None,
            delivered_at: now,
        });
        Answer::raw_ok(format!(r#"{{"errcode":0,"errmsg":"ok","msgid":{msgid}}}"#))
    }

    // ---- template management ------------------------------------------------------

    /// `addtemplate`, its body read from a form or from JSON (numbers may be
    /// strings in a form). New one-time templates (tid 10000001–19999999)
    /// take an empty kidList and get every keyword of the library template.
    pub(crate) fn add_template(&mut self, appid: &str, body: &Value) -> Answer {
        let as_u32 = |v: &Value| match v {
            Value::String(s) => s.trim().parse::<u32>().ok(),
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        };
        let Some(tid_given) = body.get("tid").filter(|v| !v.is_null()) else {
            return wx_error(200014, "missing parameter tid");
        };
        let Some(lib) = as_u32(tid_given).and_then(templates::library) else {
            return wx_error(200014, "tid does not exist");
        };
        // Only the account's own categories' templates (a shop gets no
        // long-term template: those are in public-service categories).
        // WeChat's code for this case is unverified.
        if !self.apps[appid].categories.contains(&lib.category_id) {
            return wx_error(200014, "tid is not in the account's categories");
        }
        let listed = body.get("kidList").and_then(Value::as_array);
        let kids: Option<Vec<u32>> = listed.map(|a| a.iter().filter_map(as_u32).collect());
        let new_one_time = templates::NEW_ONE_TIME_TIDS.contains(&lib.tid);
        let kids = if new_one_time {
            if kids.as_ref().is_some_and(|k| !k.is_empty()) || listed.is_some_and(|a| !a.is_empty())
            {
                return wx_error(200020, "kidList must be empty for this tid");
            }
            lib.keywords.iter().map(|k| k.kid).collect()
        } else {
            let Some(kids) = kids.filter(|k| {
                (2..=5).contains(&k.len())
                    && k.iter().collect::<HashSet<_>>().len() == k.len()
                    && listed.map(Vec::len) == Some(k.len())
            }) else {
                return wx_error(200020, "kidList invalid");
            };
            kids
        };
        let scene = body
            .get("sceneDesc")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if scene.chars().count() > MAX_SCENE_DESC_CHARS {
            return wx_error(200021, "invalid parameter sceneDesc");
        }
        if let Some(same) = self.same_template(appid, lib, &kids) {
            let mut a = wx_error(200022, "template has added already");
            let mut v: Value = serde_json::from_slice(&a.body).unwrap_or_default();
            v["priTmplId"] = json!(same);
            a.body = v.to_string().into_bytes();
            return a;
        }
        let seq = {
            let app = self.apps.get_mut(appid).expect("known app");
            if app.templates.values().filter(|t| !t.legacy).count() >= MAX_PRIVATE_TEMPLATES {
                return wx_error(200012, "private template count reached limit");
            }
            app.next_template_seq += 1;
            app.next_template_seq
        };
        let id = template_id_for(appid, lib.tid, seq);
        let Some(mut t) = Template::from_library(&id, lib, &kids) else {
            return wx_error(200020, "kidList invalid");
        };
        t.scene_desc = scene;
        self.apps
            .get_mut(appid)
            .expect("known app")
            .templates
            .insert(id.clone(), t);
        Answer::ok_json(json!({ "errcode": 0, "errmsg": "ok", "priTmplId": id }))
    }

    /// The app's template with the same title and keywords as `kids` of
    /// `lib`, which WeChat will not add twice (200022, with its id).
    fn same_template(
        &self,
        appid: &str,
        lib: &templates::LibraryTemplate,
        kids: &[u32],
    ) -> Option<String> {
        let wanted = Template::from_library("", lib, kids)?;
        let mut names: Vec<&String> = wanted.keywords.iter().map(|k| &k.0).collect();
        names.sort();
        self.apps[appid]
            .templates
            .values()
            .find(|t| {
                let mut theirs: Vec<&String> = t.keywords.iter().map(|k| &k.0).collect();
                theirs.sort();
                !t.legacy && t.title == wanted.title && theirs == names
            })
            .map(|t| t.id.clone())
    }

    pub(crate) fn del_template(&mut self, appid: &str, body: &Value) -> Answer {
        let app = self.apps.get_mut(appid).expect("known app");
        let Some(id) = body.get("priTmplId").and_then(Value::as_str) else {
            return wx_error(200002, "missing parameter priTmplId");
        };
        // An id the account does not hold: 20001, which the deleteTemplate
        // page's errCode table describes as a system error "including no such
        // template under this account" (see docs/spec/wechat.md).
        match app.templates.get(id) {
            Some(t) if !t.legacy => {
                app.templates.remove(id);
                Answer::ok_json(json!({ "errcode": 0, "errmsg": "ok" }))
            }
            _ => wx_error(20001, "system error: no such template in this account"),
        }
    }

    /// `POST /cgi-bin/wxopen/template/add`: a legacy template from the library,
    /// its keywords named `keyword1..N` in the order asked.
    pub(crate) fn add_legacy_template(&mut self, appid: &str, body: &Value) -> Answer {
        let Some(lib) = body
            .get("id")
            .and_then(Value::as_str)
            .and_then(templates::legacy_library)
        else {
            return wx_error(40037, "invalid template id");
        };
        let ids: Vec<u64> = body
            .get("keyword_id_list")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let listed = body
            .get("keyword_id_list")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let mut labels = Vec::new();
        for id in &ids {
            match lib.keywords.iter().find(|(k, _, _)| u64::from(*k) == *id) {
                Some((_, name, _)) if !labels.contains(name) => labels.push(*name),
                _ => return wx_error(47001, "data format error: keyword_id_list"),
            }
        }
        if labels.is_empty() || labels.len() > 10 || ids.len() != listed {
            return wx_error(47001, "data format error: keyword_id_list");
        }
        let seq = {
            let app = self.apps.get_mut(appid).expect("known app");
            if app.templates.values().filter(|t| t.legacy).count() >= MAX_PRIVATE_TEMPLATES {
                return wx_error(45026, "template num exceeds limit");
            }
            app.next_template_seq += 1;
            app.next_template_seq
        };
        let id = template_id_for(appid, 0, seq);
        let t = Template::legacy(&id, lib.title, &labels);
        self.apps
            .get_mut(appid)
            .expect("known app")
            .templates
            .insert(id.clone(), t);
        Answer::ok_json(json!({ "errcode": 0, "errmsg": "ok", "template_id": id }))
    }

    /// `POST /cgi-bin/wxopen/template/del`.
    pub(crate) fn del_legacy_template(&mut self, appid: &str, body: &Value) -> Answer {
        let app = self.apps.get_mut(appid).expect("known app");
        let id = body
            .get("template_id")
            .and_then(Value::as_str)
            .unwrap_or("");
        match app.templates.get(id) {
            Some(t) if t.legacy => {
                app.templates.remove(id);
                Answer::ok_json(json!({ "errcode": 0, "errmsg": "ok" }))
            }
            _ => wx_error(40037, "invalid template id"),
        }
    }

    /// An id for a new template of the app, as `addtemplate` makes them.
    pub(crate) fn new_template_id(&mut self, appid: &str, tid: u32) -> Control<String> {
        let app = self.app_mut(appid)?;
        app.next_template_seq += 1;
        Ok(template_id_for(appid, tid, app.next_template_seq))
    }

    /// Adds a template to the app (a seed's), replacing one with its id.
    pub(crate) fn insert_template(&mut self, appid: &str, t: Template) -> Control<()> {
        self.app_mut(appid)?.templates.insert(t.id.clone(), t);
        Ok(())
    }

    pub(crate) fn get_templates(&self, appid: &str, legacy: bool) -> Vec<&Template> {
        self.apps[appid]
            .templates
            .values()
            .filter(|t| t.legacy == legacy)
            .collect()
    }
}

/// A stable, WeChat-looking id for a template added through `addtemplate`.
fn template_id_for(appid: &str, tid: u32, seq: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in appid.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    let mut state = h ^ ((tid as u64) << 32) ^ seq;
    let mut s = String::with_capacity(43);
    while s.len() < 43 {
        state = mix(state);
        let mut r = state;
        for _ in 0..10 {
            if s.len() == 43 {
                break;
            }
            s.push(ALPHABET[(r & 63) as usize] as char);
            r >>= 6;
        }
    }
    s
}

/// Every keyword of the template is present, nothing else is, and each value
/// is a string obeying its type's rule (an enum value one of the template's);
/// WeChat's plain 47003 naming the keyword otherwise. A key the template does
/// not have is refused (WeChat's behaviour: unverified). A JSON number is
/// refused like WeChat refused one (`data.character_string1.value i…`,
/// https://developers.weixin.qq.com/community/personal/oCJUsw0UJb7ZfvqobKs9GYxlydAo/question).
fn check_subscribe_data(template: &Template, data: Option<&Value>) -> Result<(), Answer> {
    let Some(data) = data.and_then(Value::as_object) else {
        let first = template.keywords.first().map_or("", |(n, _, _)| n.as_str());
        return Err(keyword_invalid(first, "is empty"));
    };
    for (name, entry) in data {
        if !template.has_keyword(name) {
            return Err(keyword_invalid(name, "invalid"));
        }
        let Some(value) = entry.get("value").and_then(Value::as_str) else {
            return Err(keyword_invalid(name, "invalid"));
        };
        let Some(kind) = KeywordType::of_keyword(name) else {
            return Err(keyword_invalid(name, "invalid"));
        };
        let checked = match template.enums.iter().find(|(n, _)| n == name) {
            Some((_, values)) => KeywordType::check_enum(value, values),
            None => kind.check(value),
        };
        if checked.is_err() {
            return Err(keyword_invalid(name, "invalid"));
        }
    }
    // A const keyword is the template's fixed text: never sent (a value for
    // one is refused above, as WeChat refuses it).
    if let Some((name, _, _)) = template.keywords.iter().find(|(n, _, _)| {
        !data.contains_key(n) && KeywordType::of_keyword(n) != Some(KeywordType::Const)
    }) {
        return Err(keyword_invalid(name, "is empty"));
    }
    Ok(())
}

/// Whether a value of `data` holds a word of the blacklist.
fn blacklisted(words: &[String], data: Option<&Value>) -> bool {
    if words.is_empty() {
        return false;
    }
    data.and_then(Value::as_object).is_some_and(|d| {
        d.values()
            .filter_map(|e| e.get("value").and_then(Value::as_str))
            .any(|v| words.iter().any(|w| v.contains(w.as_str())))
    })
}

/// Legacy data: `keywordN` keys of the template with string values; the
/// emphasis keyword, when given, names one of them.
fn check_legacy_data(
    template: &Template,
    data: Option<&Value>,
    emphasis: Option<&str>,
) -> Result<(), Answer> {
    let Some(data) = data.and_then(Value::as_object) else {
        return Err(wx_error(47003, "argument invalid! data is empty"));
    };
    for (name, entry) in data {
        if !template.has_keyword(name) {
            return Err(wx_error(
                47003,
                &format!("argument invalid! data.{name} is not a keyword of the template"),
            ));
        }
        if entry.get("value").and_then(Value::as_str).is_none() {
            return Err(wx_error(
                47003,
                &format!("argument invalid! data.{name}.value invalid"),
            ));
        }
    }
    if let Some(e) = emphasis.filter(|e| !e.is_empty()) {
        let ok = e
            .strip_suffix(".DATA")
            .is_some_and(|k| template.has_keyword(k));
        if !ok {
            return Err(wx_error(
                47003,
                "argument invalid! emphasis_keyword invalid",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_const() -> Template {
        let kw = |n: &str| (n.to_string(), String::new(), String::new());
        Template {
            id: "T".into(),
            title: "工单提醒".into(),
            keywords: vec![kw("thing1"), kw("const2")],
            legacy: false,
            scene_desc: String::new(),
            kind: 2,
            enums: Vec::new(),
        }
    }

    #[test]
    fn a_const_keyword_is_neither_sent_nor_missing() {
        let t = with_const();
        assert!(check_subscribe_data(&t, Some(&json!({"thing1": {"value": "退款"}}))).is_ok());
        let sent = check_subscribe_data(
            &t,
            Some(&json!({"thing1": {"value": "退款"}, "const2": {"value": "工单"}})),
        )
        .unwrap_err();
        assert_eq!(sent.errcode, 47003);
        assert!(String::from_utf8_lossy(&sent.body).contains("data.const2.value invalid"));
        let empty = check_subscribe_data(&t, Some(&json!({}))).unwrap_err();
        assert!(String::from_utf8_lossy(&empty.body).contains("data.thing1.value is empty"));
    }
}
