//! The sandbox's message push: an app given a push URL and credentials gets the
//! subscribe events WeChat would push, signed (and in safe mode encrypted) as
//! WeChat does. Events queue in the world (`push_state.rs`) and go out when a
//! test flushes them (`POST /sandbox/pushes/flush`), so a test decides when they
//! arrive, and the sandbox never waits on a shop that is itself waiting on the
//! sandbox.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tiny_http::Method;

use super::push_state::{
    cdata, target, to_user, Item, Pending, PushStage, SeedPush, Target, MAX_ATTEMPTS,
};
use super::shared::{bad, ok, parse, Shared};
use super::world::{Answer, Control, World};
use fashop_notify::push::{encrypt, signature, PushFormat};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Taps {
    appid: String,
    openid: String,
    /// template_id → "accept" | "reject" | "acceptWithAudio" | "acceptWithAlert".
    choices: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    popup_scene: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    appid: String,
    openid: String,
    template_id: String,
}

/// The control paths of the push: `push` (set a target, checked like the
/// admin's submit), `taps`, `revoke`, `pushes` (GET the log), `pushes/flush`.
pub(crate) fn is_push_path(rest: &str) -> bool {
    matches!(rest, "push" | "taps" | "revoke" | "pushes" | "pushes/flush")
}

pub(crate) fn handle(shared: &Shared, method: &Method, rest: &str, body: &[u8]) -> Answer {
    let run = || -> Result<Answer, Answer> {
        let now = shared.clock.now();
        Ok(match (rest, method) {
            ("push", Method::Post) => {
                let spec: SeedPush = parse("push", body)?;
                let target = target(&spec).map_err(|e| bad(400, &e))?;
                if !shared.world.lock().apps.contains_key(&spec.appid) {
                    return Err(bad(
                        400,
                        &format!("unknown appid {:?}: seed it first", spec.appid),
                    ));
                }
                // The admin checks the URL before saving it: a signed GET to echo.
                let echostr = format!("{}", now.wrapping_mul(2_654_435_761).rem_euclid(1 << 40));
                let reply = deliver(
                    &target,
                    &spec.appid,
                    now,
                    "sandbox-check",
                    Some(&echostr),
                    None,
                )
                .map_err(|e| bad(400, &format!("push URL check failed: {e}")))?;
                if reply.0 != 200 || reply.1 != echostr {
                    return Err(bad(
                        400,
                        &format!(
                            "push URL check failed: HTTP {} without the echostr",
                            reply.0
                        ),
                    ));
                }
                shared.world.lock().push.targets.insert(spec.appid, target);
                ok(json!({ "verified": true }))
            }
            ("taps", Method::Post) => {
                let t: Taps = parse("taps", body)?;
                let mut w = shared.world.lock();
                tap(&mut w, &t, now).map_err(|e| bad(400, &e))?;
                ok(json!({ "queued": w.push.queue.len() }))
            }
            ("revoke", Method::Post) => {
                let r: Revoke = parse("revoke", body)?;
                let mut w = shared.world.lock();
                let dropped = w
                    .revoke(&r.appid, &r.openid, &r.template_id)
                    .map_err(|e| bad(400, &e))?;
                let item = Item {
                    template_id: &r.template_id,
                    fields: vec![("SubscribeStatusString", "reject".into())],
                };
                w.push.queue(
                    &r.appid,
                    "subscribe_msg_change_event",
                    &r.openid,
                    now,
                    &[item],
                );
                ok(json!({ "dropped": dropped, "queued": w.push.queue.len() }))
            }
            ("pushes", Method::Get) => {
                let w = shared.world.lock();
                ok(json!({ "queued": w.push.waiting(), "pushes": w.push.log }))
            }
            ("pushes/flush", Method::Post) => ok(json!({ "pushes": flush(shared, now) })),
            _ => bad(
                405,
                &format!("method {method} not allowed on /sandbox/{rest}"),
            ),
        })
    };
    match run() {
        Ok(a) | Err(a) => a,
    }
}

/// The buyer's choices in one popup: accepts become grants, one popup event.
fn tap(w: &mut World, t: &Taps, now: i64) -> Control<()> {
    if t.choices.is_empty() {
        return Err("choices must not be empty".into());
    }
    if let Some(other) = t.choices.values().find(|c| {
        !matches!(
            c.as_str(),
            "accept" | "acceptWithAudio" | "acceptWithAlert" | "reject"
        )
    }) {
        return Err(format!(
            "a choice is \"accept\", \"acceptWithAudio\", \"acceptWithAlert\" or \"reject\", got {other:?}"
        ));
    }
    w.seed_user(&t.appid, &t.openid)?;
    for (template_id, choice) in &t.choices {
        if choice != "reject" {
            w.grant(&t.appid, &t.openid, template_id, 1)?;
        }
    }
    let scene = t.popup_scene.clone().unwrap_or_else(|| "0".into());
    let items: Vec<Item<'_>> = t
        .choices
        .iter()
        .map(|(template_id, choice)| Item {
            template_id,
            fields: vec![
                ("SubscribeStatusString", choice.clone()),
                ("PopupScene", scene.clone()),
            ],
        })
        .collect();
    if w.push.has_target(&t.appid) {
        w.push.queue(
            &t.appid,
            "subscribe_msg_popup_event",
            &t.openid,
            now,
            &items,
        );
    }
    Ok(())
}

/// Tries every waiting push once, in order, without holding the world's lock.
/// One the endpoint did not take stays queued for the next flush, until
/// `MAX_ATTEMPTS`; then it is given up. Answers this flush's attempts.
fn flush(shared: &Shared, now: i64) -> Vec<Value> {
    let batch: Vec<(Pending, Option<Target>)> = {
        let mut w = shared.world.lock();
        let queue = std::mem::take(&mut w.push.queue);
        queue
            .into_iter()
            .map(|mut p| {
                if p.signed.is_none() {
                    w.push.nonce += 1;
                    p.signed = Some((now, format!("n{}", w.push.nonce)));
                }
                let t = w.push.targets.get(&p.appid).cloned();
                (p, t)
            })
            .collect()
    };
    let outcomes: Vec<(Pending, Value, Option<bool>)> = batch
        .into_iter()
        .map(|(mut p, t)| {
            p.attempts += 1;
            let (result, taken) = match t {
                None => (
                    json!({"error": "the app has no push target any more"}),
                    None,
                ),
                Some(target) => {
                    let (result, taken) = attempt(&target, &p);
                    (result, Some(taken))
                }
            };
            (p, result, taken)
        })
        .collect();
    let mut w = shared.world.lock();
    let mut retry = Vec::new();
    let results = outcomes
        .into_iter()
        .map(|(p, result, taken)| {
            let stage = match taken {
                Some(true) => PushStage::Delivered,
                Some(false) if p.attempts < MAX_ATTEMPTS => PushStage::Retrying,
                Some(false) | None => PushStage::GivenUp,
            };
            let r = w.push.record(&p, stage, &result);
            if stage == PushStage::Retrying {
                retry.push(p);
            }
            r
        })
        .collect();
    // Retries are older than anything queued while this flush ran: first.
    retry.append(&mut w.push.queue);
    w.push.queue = retry;
    results
}

/// One attempt at a push: the endpoint's status and reply (or why there was
/// none), and whether WeChat would count it as received. WeChat's guide
/// says a push not answered within 5 s is retried and asks for `success` or
/// an empty reply; that an error status or another reply is retried like a
/// timeout is unverified (the sandbox retries them).
fn attempt(target: &Target, p: &Pending) -> (Value, bool) {
    let (ts, nonce) = p.signed.clone().unwrap_or_default();
    match deliver(target, &p.appid, ts, &nonce, None, Some(&p.message)) {
        Ok((status, reply)) => {
            let taken = (200..300).contains(&status) && matches!(reply.trim(), "" | "success");
            (json!({"status": status, "reply": reply}), taken)
        }
        Err(e) => (json!({ "error": e }), false),
    }
}

/// One request to the shop's endpoint: the URL check (GET with `echostr`) or a
/// push (POST). Answers the HTTP status and body.
fn deliver(
    t: &Target,
    appid: &str,
    now: i64,
    nonce: &str,
    echostr: Option<&str>,
    message: Option<&str>,
) -> Control<(u16, String)> {
    let ts = now.to_string();
    let mut query = format!(
        "signature={}&timestamp={ts}&nonce={nonce}",
        signature(&[t.token.expose(), &ts, nonce])
    );
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // "微信服务器在五秒内收不到响应会断掉连接" (see README): 5 s, then a retry.
        .timeout_global(Some(Duration::from_secs(5)))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let sep = if t.url.contains('?') { '&' } else { '?' };
    let result = match (echostr, message) {
        (Some(e), _) => {
            query.push_str(&format!("&echostr={e}"));
            agent.get(format!("{}{sep}{query}", t.url)).call()
        }
        (None, message) => {
            let message = message.unwrap_or_default();
            let body = match &t.key {
                None => message.to_string(),
                Some(key) => {
                    let mut random = [0u8; 16];
                    for (i, b) in nonce.bytes().chain(ts.bytes()).take(16).enumerate() {
                        random[i] = b;
                    }
                    let ct = encrypt(key, &random, message, appid);
                    query.push_str(&format!(
                        "&encrypt_type=aes&msg_signature={}",
                        signature(&[t.token.expose(), &ts, nonce, &ct])
                    ));
                    match t.format {
                        PushFormat::Json => {
                            json!({"ToUserName": to_user(appid), "Encrypt": ct}).to_string()
                        }
                        PushFormat::Xml => format!(
                            "<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt></xml>",
                            cdata(&to_user(appid)),
                            cdata(&ct)
                        ),
                    }
                }
            };
            let content_type = match t.format {
                PushFormat::Json => "application/json",
                PushFormat::Xml => "text/xml",
            };
            agent
                .post(format!("{}{sep}{query}", t.url))
                .header("Content-Type", content_type)
                .send(body)
        }
    };
    let mut resp = result.map_err(|e| format!("the push endpoint did not answer: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("the push endpoint's answer could not be read: {e}"))?;
    Ok((status, text))
}
