//! The state file (`--state FILE`): the apps, users, templates, grants, push
//! targets and legacy setting as a seed document, written after each request
//! that may have changed them and loaded at start, so that a restarted
//! sandbox goes on where it stopped. Written whole to a temporary file that
//! then replaces it (rename): a killed sandbox leaves the old file or the
//! new one, never half of one. Not synced to disk: a power cut may lose the
//! last writes, which a test tool can afford.

use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::seed::{SeedApp, SeedFile, SeedGrant, SeedKeyword, SeedTemplate, SeedUser};
use super::templates::{SEEDED, SEEDED_LEGACY};
use super::world::World;

/// Where the state goes, and what was written last (a request that changed
/// nothing writes nothing). The lock also orders writers: the snapshot taken
/// last is the one left in the file.
pub(crate) struct StateFile {
    path: PathBuf,
    last: Mutex<String>,
}

impl StateFile {
    pub(crate) fn new(path: PathBuf) -> StateFile {
        StateFile {
            path,
            last: Mutex::new(String::new()),
        }
    }

    /// Writes the world's state if it changed since the last write.
    pub(crate) fn save(&self, world: &Mutex<World>) -> Result<(), String> {
        let mut last = self.last.lock();
        let text = {
            let w = world.lock();
            serde_json::to_string_pretty(&snapshot(&w)).map_err(|e| e.to_string())?
        };
        if *last == text {
            return Ok(());
        }
        write_replacing(&self.path, text.as_bytes())
            .map_err(|e| format!("cannot write the state file {}: {e}", self.path.display()))?;
        *last = text;
        Ok(())
    }
}

/// Reads a state (or seed) file.
pub(crate) fn load(path: &Path) -> Result<SeedFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_replacing(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map_or("state".into(), |n| n.to_string_lossy());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        // It holds the apps' secrets and push tokens.
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The world as a seed document: what a restart needs to go on.
pub(crate) fn snapshot(w: &World) -> SeedFile {
    let mut appids: Vec<&String> = w.apps.keys().collect();
    appids.sort();
    let mut seed = SeedFile {
        legacy: Some(w.settings.legacy),
        ..SeedFile::default()
    };
    for appid in appids {
        let app = &w.apps[appid];
        seed.apps.push(SeedApp {
            appid: appid.clone(),
            secret: app.secret.expose().to_string(),
            pages: app.pages.clone(),
            categories: Some(app.categories.clone()),
        });
        let mut users: Vec<&String> = app.users.iter().collect();
        users.sort();
        seed.users.extend(users.into_iter().map(|openid| SeedUser {
            appid: appid.clone(),
            openid: openid.clone(),
        }));
        let mut grants: Vec<(&(String, String), &u64)> =
            app.grants.iter().filter(|(_, n)| **n > 0).collect();
        grants.sort();
        seed.grants
            .extend(grants.into_iter().map(|((openid, tpl), n)| SeedGrant {
                appid: appid.clone(),
                openid: openid.clone(),
                template_id: tpl.clone(),
                count: *n,
            }));
        seed.templates.extend(added_templates(appid, w));
        if let Some(t) = w.push.targets.get(appid) {
            seed.push.push(t.spec.clone());
        }
    }
    seed
}

/// The app's templates other than those every app starts with.
fn added_templates<'w>(appid: &'w str, w: &'w World) -> impl Iterator<Item = SeedTemplate> + 'w {
    let seeded = |id: &str| {
        SEEDED.iter().any(|(s, _, _)| *s == id) || SEEDED_LEGACY.iter().any(|(s, _, _)| *s == id)
    };
    w.apps[appid]
        .templates
        .values()
        .filter(move |t| !seeded(&t.id))
        .map(move |t| SeedTemplate {
            appid: appid.to_string(),
            id: Some(t.id.clone()),
            tid: None,
            kids: Vec::new(),
            title: Some(t.title.clone()),
            keywords: t
                .keywords
                .iter()
                .map(|(name, label, example)| SeedKeyword::Full {
                    name: name.clone(),
                    label: label.clone(),
                    example: example.clone(),
                })
                .collect(),
            legacy: t.legacy,
            kind: t.kind,
            enums: t.enums.iter().cloned().collect(),
            scene_desc: t.scene_desc.clone(),
        })
}
