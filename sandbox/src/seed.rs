//! The seed document: what `--seed FILE.json` applies at start and what the
//! state file (`--state`, `state.rs`) holds. Each part has the shape of the
//! control API body that does the same (`POST /sandbox/apps`, `grants`, `push`,
//! …); a template has the shape `GET /sandbox/templates?appid=` lists.

use std::collections::BTreeMap;

use fashop_notify::rules::KeywordType;
use serde::{Deserialize, Serialize};

use super::push_state::target;
pub use super::push_state::SeedPush;
use super::templates;
use super::world::{Template, World};

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedApp {
    pub appid: String,
    pub secret: String,
    #[serde(default)]
    pub pages: Vec<String>,
    /// The account's categories (ids of `templates::CATEGORIES`); all when absent.
    #[serde(default)]
    pub categories: Option<Vec<u32>>,
}

impl std::fmt::Debug for SeedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedApp")
            .field("appid", &self.appid)
            .field("secret", &"***")
            .field("pages", &self.pages)
            .field("categories", &self.categories)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub appid: String,
    pub openid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedGrant {
    pub appid: String,
    pub openid: String,
    pub template_id: String,
    #[serde(default = "one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFormId {
    pub appid: String,
    pub openid: String,
    pub form_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPrepayId {
    pub appid: String,
    pub openid: String,
    pub prepay_id: String,
    #[serde(default)]
    pub paid: bool,
}

/// A keyword of a seeded template: its name (`thing3`: the prefix is WeChat's
/// value rule), or the name with the label and example gettemplate shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SeedKeyword {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        label: String,
        #[serde(default)]
        example: String,
    },
}

/// A template of an app, as `GET /sandbox/templates?appid=` lists it, with
/// the app: either `tid` (and `kids`) of the public library, whose title and
/// keywords it takes as `addtemplate` does, or a `title` and `keywords` of
/// its own. Without `id` it gets one as `addtemplate` gives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedTemplate {
    pub appid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kids: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub keywords: Vec<SeedKeyword>,
    /// A legacy template message template (keywords `keyword1`…).
    #[serde(default)]
    pub legacy: bool,
    /// WeChat's `type`: 2 one-time (the default), 3 long-term.
    #[serde(default = "one_time", rename = "type")]
    pub kind: u8,
    /// The values of each enum keyword (`enum_string2`), by keyword name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub enums: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scene_desc: String,
}

fn one_time() -> u8 {
    2
}

impl SeedTemplate {
    /// The template it describes, checked as WeChat would have made it.
    pub(crate) fn template(&self, id: &str) -> Result<Template, String> {
        let what = format!("template {id:?} of {}", self.appid);
        let mut t = match self.tid {
            Some(tid) => {
                if self.title.is_some() || !self.keywords.is_empty() {
                    return Err(format!(
                        "{what}: give tid and kids, or title and keywords, not both"
                    ));
                }
                let lib = templates::library(tid)
                    .ok_or(format!("{what}: no library template with tid {tid}"))?;
                let kids = if self.kids.is_empty() {
                    lib.keywords.iter().map(|k| k.kid).collect()
                } else {
                    self.kids.clone()
                };
                Template::from_library(id, lib, &kids).ok_or(format!(
                    "{what}: kids {kids:?} are not all keywords of tid {tid}"
                ))?
            }
            None => self.own_template(id, &what)?,
        };
        t.scene_desc = self.scene_desc.clone();
        Ok(t)
    }

    fn own_template(&self, id: &str, what: &str) -> Result<Template, String> {
        let title = self
            .title
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or(format!("{what}: title missing"))?;
        if self.keywords.is_empty() {
            return Err(format!("{what}: keywords missing"));
        }
        if !matches!(self.kind, 2 | 3) {
            return Err(format!(
                "{what}: type is 2 (one-time) or 3 (long-term), not {}",
                self.kind
            ));
        }
        let mut keywords = Vec::new();
        for k in &self.keywords {
            let (name, label, example) = match k {
                SeedKeyword::Name(n) => (n.clone(), n.clone(), String::new()),
                SeedKeyword::Full {
                    name,
                    label,
                    example,
                } => (name.clone(), label.clone(), example.clone()),
            };
            let known = if self.legacy {
                name.strip_prefix("keyword")
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            } else {
                KeywordType::of_keyword(&name).is_some_and(|k| !matches!(k, KeywordType::Other))
            };
            if !known || keywords.iter().any(|(n, _, _)| *n == name) {
                return Err(format!(
                    "{what}: keyword {name:?} is not a distinct {} name",
                    if self.legacy {
                        "keywordN"
                    } else {
                        "rule+number (thing3)"
                    }
                ));
            }
            keywords.push((name, label, example));
        }
        for (name, values) in &self.enums {
            if !name.starts_with("enum_string")
                || !keywords.iter().any(|(n, _, _)| n == name)
                || values.is_empty()
            {
                return Err(format!(
                    "{what}: enums names {name:?}, not an enum_string keyword of it with values"
                ));
            }
        }
        Ok(Template {
            id: id.to_string(),
            title,
            keywords,
            legacy: self.legacy,
            scene_desc: String::new(),
            kind: self.kind,
            enums: self
                .enums
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}

/// The `--seed FILE.json` document of the binary, and its state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub apps: Vec<SeedApp>,
    #[serde(default)]
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub templates: Vec<SeedTemplate>,
    #[serde(default)]
    pub grants: Vec<SeedGrant>,
    #[serde(default)]
    pub form_ids: Vec<SeedFormId>,
    #[serde(default)]
    pub prepay_ids: Vec<SeedPrepayId>,
    #[serde(default)]
    pub push: Vec<SeedPush>,
    #[serde(default)]
    pub legacy: Option<bool>,
}

impl SeedFile {
    /// Applies the seed; apps first, so the rest may refer to them.
    pub(crate) fn apply(&self, world: &mut World, now: i64) -> Result<(), String> {
        for a in &self.apps {
            world.seed_app(&a.appid, &a.secret)?;
            world.set_pages(&a.appid, a.pages.clone())?;
            if let Some(categories) = &a.categories {
                world.set_categories(&a.appid, categories.clone())?;
            }
        }
        for u in &self.users {
            world.seed_user(&u.appid, &u.openid)?;
        }
        for t in &self.templates {
            let id = match &t.id {
                Some(id) if id.is_empty() => return Err("a template's id must not be empty".into()),
                Some(id) => id.clone(),
                None => world.new_template_id(&t.appid, t.tid.unwrap_or(0))?,
            };
            world.insert_template(&t.appid, t.template(&id)?)?;
        }
        for g in &self.grants {
            world.grant(&g.appid, &g.openid, &g.template_id, g.count)?;
        }
        for f in &self.form_ids {
            world.add_form_id(&f.appid, &f.openid, &f.form_id, now)?;
        }
        for p in &self.prepay_ids {
            world.add_prepay_id(&p.appid, &p.openid, &p.prepay_id, now)?;
            if p.paid {
                world.mark_paid(&p.appid, &p.prepay_id)?;
            }
        }
        for p in &self.push {
            let target = target(p)?;
            if !world.apps.contains_key(&p.appid) {
                return Err(format!("push: unknown appid {:?}: seed it first", p.appid));
            }
            world.push.targets.insert(p.appid.clone(), target);
        }
        if let Some(l) = self.legacy {
            world.settings.legacy = l;
        }
        Ok(())
    }
}
