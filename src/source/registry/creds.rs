//! Registry credentials, found where docker, podman and skopeo keep them.
//!
//! Order (the first source with credentials for the registry wins):
//! 1. explicit credentials: `--creds USER:PASS`, or `MLSIZE_REGISTRY_USER` and
//!    `MLSIZE_REGISTRY_PASSWORD` ([`RegistryOptions::creds`]);
//! 2. the auth files, in containers/image's order (`pkg/docker/config`,
//!    `getAuthFilePaths`; containers-auth.json(5)):
//!    - `$REGISTRY_AUTH_FILE` when set, and then no other file (it is podman's
//!      and skopeo's `--authfile` override);
//!    - otherwise `$XDG_RUNTIME_DIR/containers/auth.json` (podman login),
//!      `$XDG_CONFIG_HOME/containers/auth.json` (default
//!      `~/.config/containers/auth.json`), `$DOCKER_CONFIG/config.json`
//!      (default `~/.docker/config.json`, docker login) and the legacy
//!      `~/.dockercfg`.
//!
//! Within one file, as the docker CLI resolves it: `credHelpers[registry]`
//! (run `docker-credential-<name> get`), then an `auths` entry with an `auth`
//! (base64 `user:password`) or `username`/`password`, tried from the most
//! specific key (`host/namespace/repo`, as containers-auth.json allows) to the
//! host, and keys written as URLs (`https://index.docker.io/v1/` is
//! docker.io), then `credsStore` (the helper docker uses for every registry
//! without a `credHelpers` entry).
//!
//! A helper is called as docker does: `docker-credential-<name> get`, the
//! server on stdin (`https://index.docker.io/v1/` for Docker Hub, else
//! `host[:port]`), `{"Username": …, "Secret": …}` on stdout. Identity tokens
//! (`"Username": "<token>"`, `identitytoken`) are OAuth refresh tokens that
//! need docker's OAuth flow, which mlsize does not do: they are skipped.
//!
//! [`RegistryOptions::creds`]: super::RegistryOptions::creds

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;

use crate::error::{Error, Result};

/// Largest credential file read (docker's are a few KiB).
const MAX_AUTH_FILE_BYTES: u64 = 1 << 20;

/// Where credentials are looked for. [`CredentialEnv::from_process`] reads the
/// environment variables named in the [module docs](self); tests build one by
/// hand.
#[derive(Debug, Clone, Default)]
pub struct CredentialEnv {
    /// `$REGISTRY_AUTH_FILE`.
    pub registry_auth_file: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// `$DOCKER_CONFIG`.
    pub docker_config: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$PATH`, searched for `docker-credential-<name>` helpers.
    pub path: Option<String>,
}

impl CredentialEnv {
    /// The current process's environment.
    pub fn from_process() -> CredentialEnv {
        let p = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        CredentialEnv {
            registry_auth_file: p("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: p("XDG_RUNTIME_DIR"),
            xdg_config_home: p("XDG_CONFIG_HOME"),
            docker_config: p("DOCKER_CONFIG"),
            home: p("HOME"),
            path: std::env::var("PATH").ok(),
        }
    }

    /// The auth files in lookup order, with whether each is the legacy
    /// `.dockercfg` format (a bare map of registry → entry).
    fn files(&self) -> Vec<(PathBuf, bool)> {
        if let Some(f) = &self.registry_auth_file {
            return vec![(f.clone(), false)];
        }
        let mut v = Vec::new();
        if let Some(d) = &self.xdg_runtime_dir {
            v.push((d.join("containers/auth.json"), false));
        }
        match (&self.xdg_config_home, &self.home) {
            (Some(d), _) => v.push((d.join("containers/auth.json"), false)),
            (None, Some(h)) => v.push((h.join(".config/containers/auth.json"), false)),
            (None, None) => {}
        }
        match (&self.docker_config, &self.home) {
            (Some(d), _) => v.push((d.join("config.json"), false)),
            (None, Some(h)) => v.push((h.join(".docker/config.json"), false)),
            (None, None) => {}
        }
        if let Some(h) = &self.home {
            v.push((h.join(".dockercfg"), true));
        }
        v
    }

    /// `docker-credential-<name>` on `$PATH`.
    fn helper(&self, name: &str) -> Option<PathBuf> {
        // A helper name is a word, never a path.
        if name.is_empty() || name.contains(['/', '\0']) {
            return None;
        }
        let exe = format!("docker-credential-{name}");
        self.path
            .as_deref()?
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(&exe))
            .find(|p| p.is_file())
    }
}

/// A user name and secret, and where they came from. `Debug` never shows the
/// secret.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password or token.
    pub(crate) secret: String,
    /// Where they were found, e.g. `/root/.docker/config.json` or
    /// `docker-credential-pass (credsStore in /root/.docker/config.json)`.
    pub source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// The result of a credential lookup: what was found and every source asked.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// The credentials to use, if any source had some.
    pub found: Option<Credentials>,
    /// Each source consulted, with what it gave, e.g.
    /// `/root/.docker/config.json (no entry for ghcr.io)`.
    pub tried: Vec<String>,
}

/// Label of the explicit credentials in messages.
pub const EXPLICIT_SOURCE: &str = "--creds/MLSIZE_REGISTRY_USER";

/// `MLSIZE_REGISTRY_USER` and `MLSIZE_REGISTRY_PASSWORD`, when both are set.
pub fn creds_from_env() -> Option<(String, String)> {
    let user = std::env::var("MLSIZE_REGISTRY_USER").ok()?;
    let pass = std::env::var("MLSIZE_REGISTRY_PASSWORD").ok()?;
    (!user.is_empty()).then_some((user, pass))
}

/// Parses `--creds USER[:PASSWORD]` (split at the first `:`, as skopeo does).
pub fn parse_creds(s: &str) -> Result<(String, String)> {
    match s.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok((u.to_string(), p.to_string())),
        _ => Err(Error::Usage(
            "invalid --creds: expected USER:PASSWORD (the password may also come from MLSIZE_REGISTRY_PASSWORD)"
                .to_string(),
        )),
    }
}

/// Finds credentials for `registry` (as users name it: `docker.io` or
/// `host[:port]`) and `repository`, in the order of the module docs.
pub fn find_credentials(
    registry: &str,
    repository: &str,
    explicit: Option<&(String, String)>,
    env: &CredentialEnv,
) -> Lookup {
    let mut lookup = Lookup::default();
    if let Some((u, p)) = explicit {
        lookup.found = Some(Credentials {
            user: u.clone(),
            secret: p.clone(),
            source: EXPLICIT_SOURCE.to_string(),
        });
        return lookup;
    }
    lookup.tried.push(format!("{EXPLICIT_SOURCE} (not set)"));
    for (file, legacy) in env.files() {
        let shown = file.display().to_string();
        let doc = match read_json(&file) {
            Ok(Some(doc)) => doc,
            Ok(None) => {
                lookup.tried.push(format!("{shown} (absent)"));
                continue;
            }
            Err(why) => {
                lookup.tried.push(format!("{shown} ({why})"));
                continue;
            }
        };
        match from_file(&doc, legacy, registry, repository, &shown, env) {
            Ok(Some(c)) => {
                lookup.found = Some(c);
                return lookup;
            }
            Ok(None) => lookup
                .tried
                .push(format!("{shown} (no entry for {registry})")),
            Err(why) => lookup.tried.push(format!("{shown} ({why})")),
        }
    }
    lookup
}

/// A JSON file, `None` when it does not exist.
fn read_json(path: &Path) -> std::result::Result<Option<Value>, String> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("unreadable: {}", e.kind())),
    };
    let mut bytes = Vec::new();
    f.take(MAX_AUTH_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("unreadable: {}", e.kind()))?;
    if bytes.len() as u64 > MAX_AUTH_FILE_BYTES {
        return Err("larger than 1 MiB, skipped".to_string());
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| "not valid JSON, skipped".to_string())
}

/// Keys that name `registry` in a credential file, most specific first.
fn keys(registry: &str, repository: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut path = format!("{registry}/{repository}");
    loop {
        v.push(path.clone());
        match path.rfind('/') {
            Some(i) => path.truncate(i),
            None => break,
        }
    }
    if registry == "docker.io" {
        v.extend(
            [
                "https://index.docker.io/v1/",
                "index.docker.io",
                "registry-1.docker.io",
            ]
            .map(String::from),
        );
    }
    v
}

/// A key written as a URL (`https://host/v1/`) reduced to its host, as
/// containers/image's `normalizeAuthFileKey` does for legacy keys.
fn normalise_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"));
    let host = match k {
        Some(rest) => rest.split('/').next().unwrap_or(rest),
        None => key,
    };
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// Credentials for `registry` in one parsed file.
fn from_file(
    doc: &Value,
    legacy: bool,
    registry: &str,
    repository: &str,
    shown: &str,
    env: &CredentialEnv,
) -> std::result::Result<Option<Credentials>, String> {
    let keys = keys(registry, repository);
    if !legacy && let Some(helpers) = doc.get("credHelpers").and_then(Value::as_object) {
        for k in &keys {
            if let Some(name) = helpers.get(k).and_then(Value::as_str) {
                return from_helper(name, "credHelpers", registry, shown, env);
            }
        }
    }
    let auths = if legacy {
        doc.as_object()
    } else {
        doc.get("auths").and_then(Value::as_object)
    };
    if let Some(auths) = auths {
        let entry = keys.iter().find_map(|k| auths.get(k.as_str())).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| normalise_key(k) == registry)
                .map(|(_, v)| v)
        });
        if let Some(e) = entry
            && let Some((user, secret)) = decode_entry(e)?
        {
            return Ok(Some(Credentials {
                user,
                secret,
                source: shown.to_string(),
            }));
        }
    }
    if !legacy && let Some(name) = doc.get("credsStore").and_then(Value::as_str) {
        return from_helper(name, "credsStore", registry, shown, env);
    }
    Ok(None)
}

/// Credentials from `docker-credential-NAME`, named by the `key`
/// (`credHelpers`, `credsStore`) of the file `shown` that chose it.
fn from_helper(
    name: &str,
    key: &str,
    registry: &str,
    shown: &str,
    env: &CredentialEnv,
) -> std::result::Result<Option<Credentials>, String> {
    let source = format!("docker-credential-{name} ({key} in {shown})");
    run_helper(name, registry, env)
        .map(|c| {
            c.map(|(user, secret)| Credentials {
                user,
                secret,
                source,
            })
        })
        .map_err(|why| format!("{key} '{name}': {why}"))
}

/// An `auths` entry: `auth` (base64 of `user:password`) or
/// `username`/`password`. `None` for an empty entry (docker writes `{}` when a
/// helper holds the secret) or an identity token.
fn decode_entry(e: &Value) -> std::result::Result<Option<(String, String)>, String> {
    if let Some(auth) = e
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "an 'auth' value is not base64".to_string())?;
        let text =
            String::from_utf8(raw).map_err(|_| "an 'auth' value is not UTF-8".to_string())?;
        return match text.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Some((u.to_string(), p.to_string()))),
            _ => Err("an 'auth' value is not base64 of user:password".to_string()),
        };
    }
    let user = e.get("username").and_then(Value::as_str);
    let pass = e.get("password").and_then(Value::as_str);
    Ok(match (user, pass) {
        (Some(u), Some(p)) if !u.is_empty() => Some((u.to_string(), p.to_string())),
        _ => None,
    })
}

/// Runs `docker-credential-<name> get`. `Ok(None)` when the helper has no
/// credentials for the server.
fn run_helper(
    name: &str,
    registry: &str,
    env: &CredentialEnv,
) -> std::result::Result<Option<(String, String)>, String> {
    let exe = env
        .helper(name)
        .ok_or_else(|| format!("docker-credential-{name} not found on PATH"))?;
    let server = if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let mut child = Command::new(&exe)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {}", exe.display(), e.kind()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives EPIPE: its exit status says more.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {}", exe.display(), e.kind()))?;
    if !out.status.success() {
        // docker-credential-helpers' `credentials.ErrCredentialsNotFound`.
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase()
            + &String::from_utf8_lossy(&out.stderr).to_lowercase();
        if text.contains("credentials not found") {
            return Ok(None);
        }
        // Its output could echo a secret: only the status is shown.
        return Err(format!(
            "docker-credential-{name} get failed ({})",
            out.status
        ));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| format!("docker-credential-{name} printed no JSON"))?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
    Ok(
        (!user.is_empty() && user != "<token>" && !secret.is_empty())
            .then(|| (user.to_string(), secret.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path) -> CredentialEnv {
        CredentialEnv {
            home: Some(dir.join("home")),
            xdg_runtime_dir: Some(dir.join("run")),
            path: Some(dir.join("bin").display().to_string()),
            ..CredentialEnv::default()
        }
    }

    fn put(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn order_and_sources() {
        let t = tempfile::tempdir().unwrap();
        let e = env(t.path());
        // Nothing anywhere: every source named, none found.
        let l = find_credentials("reg.example:5000", "app", None, &e);
        assert!(l.found.is_none());
        let home = t.path().join("home");
        assert_eq!(
            l.tried,
            vec![
                format!("{EXPLICIT_SOURCE} (not set)"),
                format!(
                    "{} (absent)",
                    t.path().join("run/containers/auth.json").display()
                ),
                format!(
                    "{} (absent)",
                    home.join(".config/containers/auth.json").display()
                ),
                format!("{} (absent)", home.join(".docker/config.json").display()),
                format!("{} (absent)", home.join(".dockercfg").display()),
            ]
        );
        // docker's file with a URL key for Hub.
        put(
            &home.join(".docker/config.json"),
            &format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
                b64("hub:pw1")
            ),
        );
        let l = find_credentials("docker.io", "library/python", None, &e);
        let c = l.found.unwrap();
        assert_eq!((c.user.as_str(), c.secret.as_str()), ("hub", "pw1"));
        // podman's file comes first and a namespaced key beats the host key.
        put(
            &t.path().join("run/containers/auth.json"),
            &format!(
                r#"{{"auths":{{"docker.io":{{"auth":"{}"}},"docker.io/org/app":{{"auth":"{}"}}}}}}"#,
                b64("host:pw2"),
                b64("ns:pw3")
            ),
        );
        let c = find_credentials("docker.io", "org/app", None, &e)
            .found
            .unwrap();
        assert_eq!(c.user, "ns");
        let c = find_credentials("docker.io", "library/python", None, &e)
            .found
            .unwrap();
        assert_eq!(c.user, "host");
        // Explicit credentials win; REGISTRY_AUTH_FILE replaces the default files.
        let x = ("me".to_string(), "pw".to_string());
        assert_eq!(
            find_credentials("docker.io", "a/b", Some(&x), &e)
                .found
                .unwrap()
                .source,
            EXPLICIT_SOURCE
        );
        let only = CredentialEnv {
            registry_auth_file: Some(t.path().join("only.json")),
            ..e.clone()
        };
        let l = find_credentials("docker.io", "org/app", None, &only);
        assert!(l.found.is_none());
        assert_eq!(l.tried.len(), 2, "{:?}", l.tried);
    }

    #[test]
    fn helpers_and_bad_files() {
        let t = tempfile::tempdir().unwrap();
        let e = env(t.path());
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        // A helper that answers for one server and records what it was asked.
        let helper = bin.join("docker-credential-fake");
        put(
            &helper,
            &format!(
                "#!/bin/sh\nread s\necho \"$1 $s\" > {}/asked\nif [ \"$s\" = reg.example ]; then echo '{{\"ServerURL\":\"x\",\"Username\":\"hu\",\"Secret\":\"hs\"}}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
                t.path().display()
            ),
        );
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&helper)
            .status()
            .unwrap();
        let cfg = t.path().join("home/.docker/config.json");
        put(&cfg, r#"{"auths":{"reg.example":{}},"credsStore":"fake"}"#);
        let c = find_credentials("reg.example", "app", None, &e)
            .found
            .unwrap();
        assert_eq!((c.user.as_str(), c.secret.as_str()), ("hu", "hs"));
        assert!(
            c.source
                .starts_with("docker-credential-fake (credsStore in"),
            "{}",
            c.source
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join("asked")).unwrap(),
            "get reg.example\n"
        );
        assert!(!format!("{c:?}").contains("hs"), "Debug hides the secret");
        // Not found in the helper: no credentials, and the file is listed.
        let l = find_credentials("other.example", "app", None, &e);
        assert!(l.found.is_none());
        assert!(
            l.tried
                .iter()
                .any(|s| s.contains("no entry for other.example")),
            "{:?}",
            l.tried
        );
        // credHelpers naming a missing helper; garbage files; bad base64.
        put(&cfg, r#"{"credHelpers":{"reg.example":"nope"}}"#);
        let l = find_credentials("reg.example", "app", None, &e);
        assert!(
            l.tried
                .iter()
                .any(|s| s.contains("docker-credential-nope not found on PATH")),
            "{:?}",
            l.tried
        );
        put(&cfg, "{not json");
        let l = find_credentials("reg.example", "app", None, &e);
        assert!(
            l.tried.iter().any(|s| s.contains("not valid JSON")),
            "{:?}",
            l.tried
        );
        put(&cfg, r#"{"auths":{"reg.example":{"auth":"%%%"}}}"#);
        let l = find_credentials("reg.example", "app", None, &e);
        assert!(
            l.tried.iter().any(|s| s.contains("not base64")),
            "{:?}",
            l.tried
        );
    }

    #[test]
    fn creds_flag() {
        assert_eq!(parse_creds("u:p:q").unwrap(), ("u".into(), "p:q".into()));
        assert!(parse_creds("nocolon").is_err());
        assert!(parse_creds(":p").is_err());
    }
}
