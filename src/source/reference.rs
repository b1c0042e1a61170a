//! Stage 1, read: what the user typed (`app.tar`, `oci:dir:v1`,
//! `docker-daemon:app:dev`, `python:3.11`) → a [`Reference`] that says where
//! the image lives. Nothing is opened here except a look at whether a bare
//! argument names an existing path.
//!
//! The prefixed forms follow skopeo's transport names and syntax
//! (containers/image `transports/alltransports`): the transport name is what
//! comes before the first `:`, and each transport parses the rest its own
//! way. Where mlsize accepts more than skopeo, it is said at the place.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where an image is read from, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `-`: a docker-save or OCI archive on standard input.
    Stdin,
    /// A file or directory read by its content (archive, OCI layout, skopeo
    /// `dir:` layout): a bare argument that is an existing path or can only
    /// be a path (`./x`, `/x`, `x.tar`), and `dir:DIR`.
    Path(PathBuf),
    /// `oci:DIR[:REF]`: an OCI image layout directory, optionally the
    /// manifest whose `org.opencontainers.image.ref.name` is `REF`.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// The `REF` after the directory.
        tag: Option<String>,
    },
    /// `oci-archive:FILE[:REF]`: a tar of an OCI image layout.
    OciArchive {
        /// The archive.
        file: PathBuf,
        /// The `REF` after the file name.
        tag: Option<String>,
    },
    /// `docker-archive:FILE[:NAME[:TAG]]`: a `docker save` archive,
    /// optionally one of its images by name.
    DockerArchive {
        /// The archive.
        file: PathBuf,
        /// `NAME[:TAG]` as typed.
        name: Option<String>,
    },
    /// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: a registry. Holds what
    /// follows `docker://`, as typed; the registry source parses and
    /// normalises it.
    Registry(String),
    /// `docker-daemon:NAME[:TAG]`, `docker-daemon:sha256:ID` or
    /// `podman:NAME[:TAG]`: an image in a local engine.
    Engine {
        /// Which engine.
        engine: EngineKind,
        /// The name or ID as typed; the engine resolves it.
        name: String,
    },
    /// `NAME[:TAG]` (or `NAME@DIGEST`) that is not an existing path: the
    /// local engine if one answers and has it, else the registry (the caller
    /// decides).
    Bare(String),
}

/// A local container engine speaking the Docker Engine API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// The Docker Engine (`dockerd`).
    Docker,
    /// Podman's Docker-compatible API service (`podman system service`).
    Podman,
}

impl EngineKind {
    /// The transport prefix that names it: `docker-daemon` or `podman`.
    pub fn transport(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker-daemon",
            EngineKind::Podman => "podman",
        }
    }

    /// Its name in messages: `Docker` or `Podman`.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Docker => "Docker",
            EngineKind::Podman => "Podman",
        }
    }
}

/// Every accepted form, for usage errors.
const FORMS: &str = "expected a file or directory, '-', oci:DIR[:REF], oci-archive:FILE[:REF], \
docker-archive:FILE[:NAME[:TAG]], dir:DIR, docker://HOST[:PORT]/REPO[:TAG|@DIGEST], \
docker-daemon:NAME[:TAG], docker-daemon:sha256:ID, podman:NAME[:TAG] or NAME[:TAG]";

/// Transports of skopeo that mlsize does not read.
const UNSUPPORTED: [&str; 4] = ["containers-storage", "ostree", "sif", "tarball"];

fn invalid(arg: &str, why: &str) -> Error {
    Error::Usage(format!("invalid image reference '{arg}': {why}; {FORMS}"))
}

impl Reference {
    /// Parses a command-line image argument.
    ///
    /// A transport prefix (`oci:`, `docker-daemon:`, …) decides; without one,
    /// an existing path always wins (a file literally named `app:dev` is a
    /// file), and `./oci:x` reaches a file named `oci:x`.
    ///
    /// ```
    /// use mlsize::source::reference::{EngineKind, Reference};
    /// let r = Reference::parse("docker-daemon:app:dev").unwrap();
    /// assert_eq!(r, Reference::Engine { engine: EngineKind::Docker, name: "app:dev".into() });
    /// assert_eq!(r.describe(), "docker-daemon:app:dev");
    /// ```
    pub fn parse(arg: &str) -> Result<Reference> {
        if arg == "-" {
            return Ok(Reference::Stdin);
        }
        if arg.is_empty() {
            return Err(invalid(arg, "it is empty"));
        }
        if let Some((transport, rest)) = arg.split_once(':') {
            match transport {
                "oci" | "oci-archive" => return parse_oci(arg, transport, rest),
                "docker-archive" => return parse_docker_archive(arg, rest),
                "dir" if rest.is_empty() => return Err(invalid(arg, "dir: needs a directory")),
                "dir" => return Ok(Reference::Path(PathBuf::from(rest))),
                // skopeo's docker transport is `docker:` followed by `//`.
                // Without the slashes it is a bare `NAME:TAG` whose name is
                // `docker` (the `docker:24-dind` image), which skopeo would
                // refuse.
                "docker" if rest.starts_with("//") => return parse_registry(arg, rest),
                "docker-daemon" => return parse_engine(arg, EngineKind::Docker, rest),
                "podman" => return parse_engine(arg, EngineKind::Podman, rest),
                t if UNSUPPORTED.contains(&t) => {
                    return Err(invalid(arg, &format!("mlsize does not read {t}: images")));
                }
                _ => {}
            }
        }
        // A dangling symlink is a path too: opening it says what is wrong.
        if Path::new(arg).symlink_metadata().is_ok() || looks_like_path(arg) {
            return Ok(Reference::Path(PathBuf::from(arg)));
        }
        match DockerRef::parse(arg) {
            Ok(_) => Ok(Reference::Bare(arg.to_string())),
            // `MyApp:1.0`, `app:bad tag`: meant as a reference, but invalid.
            Err(why) if arg.contains([':', '@']) => Err(invalid(arg, &why)),
            // Anything else can only be a file that is missing; opening it
            // says so in the usual words.
            Err(_) => Ok(Reference::Path(PathBuf::from(arg))),
        }
    }

    /// What was read, for the report header and JSON `image.source`:
    /// `docker-daemon:app:dev`, `oci:out:v1`, `docker://reg/app:1`, `app.tar`.
    pub fn describe(&self) -> String {
        let with = |prefix: &str, p: &Path, tail: &Option<String>| match tail {
            Some(t) => format!("{prefix}:{}:{t}", p.display()),
            None => format!("{prefix}:{}", p.display()),
        };
        match self {
            Reference::Stdin => "-".to_string(),
            Reference::Path(p) => p.display().to_string(),
            Reference::OciLayout { dir, tag } => with("oci", dir, tag),
            Reference::OciArchive { file, tag } => with("oci-archive", file, tag),
            Reference::DockerArchive { file, name } => with("docker-archive", file, name),
            Reference::Registry(r) => format!("docker://{r}"),
            Reference::Engine { engine, name } => format!("{}:{name}", engine.transport()),
            Reference::Bare(s) => s.clone(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// `oci:DIR[:REF]` and `oci-archive:FILE[:REF]`. containers/image
/// `oci/internal/oci_util.go`: the path ends at the first `:` (so a path
/// cannot hold one), and REF follows the `org.opencontainers.image.ref.name`
/// grammar. Its `@INDEX` form (the N-th manifest) is not supported here.
fn parse_oci(arg: &str, transport: &str, rest: &str) -> Result<Reference> {
    let (path, tag) = match rest.split_once(':') {
        Some((p, t)) => (p, (!t.is_empty()).then(|| t.to_string())),
        None => (rest, None),
    };
    if path.is_empty() {
        let what = if transport == "oci" {
            "directory"
        } else {
            "file"
        };
        return Err(invalid(arg, &format!("{transport}: needs a {what}")));
    }
    if let Some(t) = &tag {
        if t.starts_with('@') {
            return Err(invalid(
                arg,
                &format!(
                    "selecting a manifest by index ({t}) is not supported, name its ref instead"
                ),
            ));
        }
        if !oci_ref_name_ok(t) {
            return Err(invalid(
                arg,
                &format!(
                    "'{t}' is not a valid OCI ref name (letters, digits and -._:@+ between them, / between components)"
                ),
            ));
        }
    }
    let path = PathBuf::from(path);
    Ok(if transport == "oci" {
        Reference::OciLayout { dir: path, tag }
    } else {
        Reference::OciArchive { file: path, tag }
    })
}

/// `docker-archive:FILE[:NAME[:TAG]]`. containers/image
/// `docker/archive/transport.go`: the path ends at the first `:`, the rest
/// is a docker reference without a digest (`@INDEX` is not supported here).
fn parse_docker_archive(arg: &str, rest: &str) -> Result<Reference> {
    let (path, name) = match rest.split_once(':') {
        Some((p, n)) => (p, Some(n)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(invalid(arg, "docker-archive: needs a file"));
    }
    if let Some(n) = name {
        if n.starts_with('@') {
            return Err(invalid(
                arg,
                &format!("selecting an image by index ({n}) is not supported, name it instead"),
            ));
        }
        let r = DockerRef::parse(n).map_err(|why| invalid(arg, &why))?;
        if r.digest.is_some() {
            return Err(invalid(
                arg,
                "docker-archive: names an image by NAME[:TAG], not by digest",
            ));
        }
    }
    Ok(Reference::DockerArchive {
        file: PathBuf::from(path),
        name: name.map(str::to_string),
    })
}

/// `docker://…`: only checked for being there; the registry source parses it.
fn parse_registry(arg: &str, rest: &str) -> Result<Reference> {
    let r = rest.trim_start_matches('/');
    if r.is_empty() {
        return Err(invalid(arg, "docker:// needs HOST/REPO[:TAG]"));
    }
    if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(arg, "it contains a space or control character"));
    }
    Ok(Reference::Registry(r.to_string()))
}

/// `docker-daemon:` / `podman:`. containers/image
/// `docker/daemon/daemon_transport.go`: `sha256:<64 hex>` is an image ID;
/// otherwise a docker reference, not both tagged and digested, and the
/// repository name `sha256` is reserved for IDs. mlsize also accepts a name
/// without a tag (`:latest`, as `docker save` does) and an ID without its
/// `sha256:` prefix, full or short (the engine resolves those as `docker
/// save` does).
fn parse_engine(arg: &str, engine: EngineKind, rest: &str) -> Result<Reference> {
    let t = engine.transport();
    if rest.is_empty() {
        return Err(invalid(arg, &format!("{t}: needs an image name or ID")));
    }
    let ok = || {
        Ok(Reference::Engine {
            engine,
            name: rest.to_string(),
        })
    };
    if let Some(hex) = rest.strip_prefix("sha256:") {
        if hex.len() == 64 && is_lower_hex(hex) {
            return ok();
        }
        return Err(invalid(
            arg,
            "'sha256:' takes a full 64-digit image ID (give a short ID without the prefix)",
        ));
    }
    // go-digest knows sha256, sha384 and sha512; `app:<hex>` is a tag.
    if let Some((alg, hex)) = rest.split_once(':')
        && matches!(alg, "sha384" | "sha512")
        && is_lower_hex(hex)
    {
        return Err(invalid(arg, "only sha256 image IDs are accepted"));
    }
    if rest.len() == 64 && is_lower_hex(rest) {
        return ok();
    }
    let r = DockerRef::parse(rest).map_err(|why| invalid(arg, &why))?;
    if r.tag.is_some() && r.digest.is_some() {
        return Err(invalid(
            arg,
            &format!("{t}: takes a tag or a digest, not both"),
        ));
    }
    ok()
}

/// Whether a bare argument that does not exist can only be a path.
fn looks_like_path(s: &str) -> bool {
    let last = s.rsplit('/').next().unwrap_or(s);
    s.starts_with(['/', '.', '~'])
        || s.ends_with('/')
        || [
            ".tar", ".tgz", ".gz", ".zst", ".zstd", ".xz", ".bz2", ".json", ".toml",
        ]
        .iter()
        .any(|ext| last.ends_with(ext) && !last.contains(':'))
}

fn is_lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An OCI ref name (image-spec annotations.md, as containers/image checks it):
/// components of alphanumerics joined by one of `-._:@+` or `--`, separated
/// by `/`.
fn oci_ref_name_ok(s: &str) -> bool {
    s.split('/').all(|c| {
        runs_ok(
            c,
            |b| b.is_ascii_alphanumeric(),
            |sep| matches!(sep, "-" | "." | "_" | ":" | "@" | "+" | "--"),
        )
    })
}

/// Whether `s` is alphanumeric runs (per `alnum`) joined by separators that
/// `sep_ok` accepts, starting and ending with a run.
fn runs_ok(s: &str, alnum: impl Fn(u8) -> bool, sep_ok: impl Fn(&str) -> bool) -> bool {
    let mut run_start = true;
    let mut sep = String::new();
    for b in s.bytes() {
        if alnum(b) {
            if !sep.is_empty() && !sep_ok(&sep) {
                return false;
            }
            sep.clear();
            run_start = false;
        } else {
            if run_start {
                return false;
            }
            sep.push(char::from(b));
        }
    }
    !run_start && sep.is_empty()
}

/// A docker image reference, split (distribution/reference `reference.go`):
/// `[DOMAIN/]PATH[:TAG][@DIGEST]`. Only checked here; normalising names for a
/// registry is the registry source's work.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DockerRef<'a> {
    /// `HOST[:PORT]` when the first component is one.
    pub domain: Option<&'a str>,
    /// The repository path.
    pub path: &'a str,
    /// The tag.
    pub tag: Option<&'a str>,
    /// The digest.
    pub digest: Option<&'a str>,
}

impl<'a> DockerRef<'a> {
    /// Splits and checks a reference; the error says what is wrong.
    pub(crate) fn parse(s: &'a str) -> std::result::Result<DockerRef<'a>, String> {
        if s.len() == 64 && is_lower_hex(s) {
            return Err("a 64-digit hex string is an image ID, not a name".into());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest
            && !digest_ok(d)
        {
            return Err(format!("'{d}' is not a digest (ALGORITHM:HEX)"));
        }
        let slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(c) if slash.is_none_or(|sl| c > sl) => (
                rest.get(..c).unwrap_or_default(),
                Some(rest.get(c + 1..).unwrap_or_default()),
            ),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !tag_ok(t)
        {
            return Err(format!(
                "'{t}' is not a valid tag (up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')"
            ));
        }
        if name.is_empty() {
            return Err("the name is empty".into());
        }
        if name.len() > 255 {
            return Err("the name is longer than 255 characters".into());
        }
        // distribution/reference `splitDockerDomain`: the first component is
        // a registry when it has a '.' or ':', is `localhost`, or has
        // uppercase letters (which a path component cannot).
        let (domain, path) = match name.split_once('/') {
            Some((d, p)) if d.contains(['.', ':']) || d == "localhost" || d.to_lowercase() != d => {
                (Some(d), p)
            }
            _ => (None, name),
        };
        if let Some(d) = domain
            && !domain_ok(d)
        {
            return Err(format!("'{d}' is not a valid registry host[:port]"));
        }
        if path.to_lowercase() != path {
            return Err("repository name must be lowercase".into());
        }
        let component_ok = |c: &str| {
            runs_ok(
                c,
                |b| b.is_ascii_lowercase() || b.is_ascii_digit(),
                |sep| matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-'),
            )
        };
        if !path.split('/').all(component_ok) {
            return Err(format!(
                "'{path}' is not a valid repository name (lowercase letters and digits, joined by '.', '_', '__' or dashes, '/' between components)"
            ));
        }
        Ok(DockerRef {
            domain,
            path,
            tag,
            digest,
        })
    }
}

fn tag_ok(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut bytes = t.bytes();
    t.len() <= 128
        && bytes.next().is_some_and(word)
        && bytes.all(|b| word(b) || b == b'.' || b == b'-')
}

fn digest_ok(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|c| {
        let mut b = c.bytes();
        b.next().is_some_and(|f| f.is_ascii_alphabetic()) && b.all(|x| x.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn domain_ok(d: &str) -> bool {
    let (host, port) = if let Some(v6) = d.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after.strip_prefix(':') {
            Some(p) => ("v6", Some(p)),
            None if after.is_empty() => ("v6", None),
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(e: EngineKind, name: &str) -> Reference {
        Reference::Engine {
            engine: e,
            name: name.into(),
        }
    }

    const ID: &str = "831bafb011900d457a5e84b1900423ba77c6f2569e09d2597b6f750260146ab0";

    #[test]
    fn transports_parse_as_skopeo_does() {
        use EngineKind::{Docker, Podman};
        let full_id = format!("sha256:{ID}");
        let cases: Vec<(&str, Reference)> = vec![
            ("-", Reference::Stdin),
            (
                "oci:out",
                Reference::OciLayout {
                    dir: "out".into(),
                    tag: None,
                },
            ),
            (
                "oci:/tmp/out:v1.0",
                Reference::OciLayout {
                    dir: "/tmp/out".into(),
                    tag: Some("v1.0".into()),
                },
            ),
            // The path ends at the first colon; the ref may hold colons.
            (
                "oci:out:app:v1",
                Reference::OciLayout {
                    dir: "out".into(),
                    tag: Some("app:v1".into()),
                },
            ),
            (
                "oci:out:",
                Reference::OciLayout {
                    dir: "out".into(),
                    tag: None,
                },
            ),
            (
                "oci:out:example.com/app--x+y@z",
                Reference::OciLayout {
                    dir: "out".into(),
                    tag: Some("example.com/app--x+y@z".into()),
                },
            ),
            (
                "oci-archive:img.tar",
                Reference::OciArchive {
                    file: "img.tar".into(),
                    tag: None,
                },
            ),
            (
                "oci-archive:./img.tar:latest",
                Reference::OciArchive {
                    file: "./img.tar".into(),
                    tag: Some("latest".into()),
                },
            ),
            (
                "docker-archive:app.tar",
                Reference::DockerArchive {
                    file: "app.tar".into(),
                    name: None,
                },
            ),
            (
                "docker-archive:app.tar:app",
                Reference::DockerArchive {
                    file: "app.tar".into(),
                    name: Some("app".into()),
                },
            ),
            (
                "docker-archive:/x/app.tar:reg:5000/team/app:1.2",
                Reference::DockerArchive {
                    file: "/x/app.tar".into(),
                    name: Some("reg:5000/team/app:1.2".into()),
                },
            ),
            ("dir:/tmp/layout", Reference::Path("/tmp/layout".into())),
            (
                "docker://127.0.0.1:5000/app:1",
                Reference::Registry("127.0.0.1:5000/app:1".into()),
            ),
            (
                "docker://python:3.11-slim",
                Reference::Registry("python:3.11-slim".into()),
            ),
            (
                "docker://ghcr.io/o/app@sha256:0123456789abcdef0123456789abcdef",
                Reference::Registry("ghcr.io/o/app@sha256:0123456789abcdef0123456789abcdef".into()),
            ),
            ("docker-daemon:app:dev", engine(Docker, "app:dev")),
            ("docker-daemon:app", engine(Docker, "app")),
            (
                "docker-daemon:localhost:5000/team/app:1",
                engine(Docker, "localhost:5000/team/app:1"),
            ),
            (
                "docker-daemon:app@sha256:0123456789abcdef0123456789abcdef",
                engine(Docker, "app@sha256:0123456789abcdef0123456789abcdef"),
            ),
            (
                "docker-daemon:app:0123456789abcdef0123456789abcdef",
                engine(Docker, "app:0123456789abcdef0123456789abcdef"),
            ),
            ("docker-daemon:831bafb01190", engine(Docker, "831bafb01190")),
            (
                "podman:localhost/app:dev",
                engine(Podman, "localhost/app:dev"),
            ),
            ("podman:app", engine(Podman, "app")),
            // Bare references that are no existing path.
            ("python:3.11", Reference::Bare("python:3.11".into())),
            ("python", Reference::Bare("python".into())),
            (
                "ghcr.io/org/app:1.2",
                Reference::Bare("ghcr.io/org/app:1.2".into()),
            ),
            (
                "localhost:5000/app",
                Reference::Bare("localhost:5000/app".into()),
            ),
            (
                "[::1]:5000/app:x",
                Reference::Bare("[::1]:5000/app:x".into()),
            ),
            (
                "app@sha256:0123456789abcdef0123456789abcdef",
                Reference::Bare("app@sha256:0123456789abcdef0123456789abcdef".into()),
            ),
            // `docker:` without `//` is the image named docker.
            ("docker:24-dind", Reference::Bare("docker:24-dind".into())),
            (
                "a__b-d---e/f.g:T_1.x-y",
                Reference::Bare("a__b-d---e/f.g:T_1.x-y".into()),
            ),
            // Missing files stay files, so opening them says "no such file".
            ("missing.tar", Reference::Path("missing.tar".into())),
            ("./app", Reference::Path("./app".into())),
            ("/nonexistent/x", Reference::Path("/nonexistent/x".into())),
            ("out/", Reference::Path("out/".into())),
            ("My Image", Reference::Path("My Image".into())),
            ("image.tar.gz", Reference::Path("image.tar.gz".into())),
        ];
        for (arg, want) in cases {
            assert_eq!(Reference::parse(arg).unwrap(), want, "{arg}");
        }
        for id in [ID.to_string(), full_id] {
            assert_eq!(
                Reference::parse(&format!("docker-daemon:{id}")).unwrap(),
                engine(Docker, &id),
                "an image ID"
            );
        }
    }

    #[test]
    fn describe_gives_back_the_form() {
        for arg in [
            "-",
            "app.tar",
            "oci:out",
            "oci:out:v1",
            "oci-archive:x.tar:v1",
            "docker-archive:x.tar",
            "docker-archive:x.tar:app:1",
            "docker://reg:5000/app:1",
            "docker-daemon:app:dev",
            "podman:localhost/app:dev",
            "python:3.11",
        ] {
            let r = Reference::parse(arg).unwrap();
            assert_eq!(r.describe(), arg, "describe of {arg}");
            assert_eq!(r.to_string(), arg, "display of {arg}");
            assert_eq!(
                Reference::parse(&r.describe()).unwrap(),
                r,
                "round trip of {arg}"
            );
        }
        assert_eq!(
            Reference::parse("dir:lay").unwrap().describe(),
            "lay",
            "dir: is a path read by content"
        );
    }

    #[test]
    fn existing_paths_win_over_bare_references() {
        let t = tempfile::tempdir().unwrap();
        let cwd_file = t.path().join("a:b");
        std::fs::write(&cwd_file, b"x").unwrap();
        let dir = t.path().join("app:dev");
        std::fs::create_dir(&dir).unwrap();
        let link = t.path().join("dangling:1");
        std::os::unix::fs::symlink("nowhere", &link).unwrap();
        for p in [&cwd_file, &dir, &link] {
            let arg = p.to_str().unwrap();
            assert_eq!(
                Reference::parse(arg).unwrap(),
                Reference::Path(p.clone()),
                "{arg} exists, so it is a path"
            );
        }
        // Relative to the working directory (the crate root) too.
        let here = std::env::current_dir().unwrap();
        assert!(here.join("Cargo.toml").exists());
        assert_eq!(
            Reference::parse("src").unwrap(),
            Reference::Path("src".into()),
            "an existing directory named like an image is a path"
        );
    }

    #[test]
    fn invalid_forms_are_one_line_usage_errors() {
        let cases = [
            ("", "it is empty"),
            ("oci:", "oci: needs a directory"),
            ("oci::v1", "oci: needs a directory"),
            ("oci-archive:", "oci-archive: needs a file"),
            (
                "oci:out:@0",
                "selecting a manifest by index (@0) is not supported, name its ref instead",
            ),
            (
                "oci:out:bad ref",
                "'bad ref' is not a valid OCI ref name (letters, digits and -._:@+ between them, / between components)",
            ),
            (
                "oci:out:-x",
                "'-x' is not a valid OCI ref name (letters, digits and -._:@+ between them, / between components)",
            ),
            ("docker-archive:", "docker-archive: needs a file"),
            ("docker-archive::app", "docker-archive: needs a file"),
            (
                "docker-archive:x.tar:App",
                "repository name must be lowercase",
            ),
            (
                "docker-archive:x.tar:app@sha256:0123456789abcdef0123456789abcdef",
                "docker-archive: names an image by NAME[:TAG], not by digest",
            ),
            (
                "docker-archive:x.tar:@1",
                "selecting an image by index (@1) is not supported, name it instead",
            ),
            ("dir:", "dir: needs a directory"),
            ("docker://", "docker:// needs HOST/REPO[:TAG]"),
            (
                "docker://reg/a b",
                "it contains a space or control character",
            ),
            ("docker-daemon:", "docker-daemon: needs an image name or ID"),
            ("podman:", "podman: needs an image name or ID"),
            (
                "docker-daemon:sha256:831baf",
                "'sha256:' takes a full 64-digit image ID (give a short ID without the prefix)",
            ),
            (
                "docker-daemon:sha512:0123456789abcdef0123456789abcdef0123456789abcdef",
                "only sha256 image IDs are accepted",
            ),
            (
                "docker-daemon:app:1@sha256:0123456789abcdef0123456789abcdef",
                "docker-daemon: takes a tag or a digest, not both",
            ),
            ("podman:App:1", "repository name must be lowercase"),
            (
                "docker-daemon:app:-x",
                "'-x' is not a valid tag (up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')",
            ),
            (
                "docker-daemon:app@sha256:abc",
                "'sha256:abc' is not a digest (ALGORITHM:HEX)",
            ),
            (
                "docker-daemon:a-/b",
                "'a-/b' is not a valid repository name (lowercase letters and digits, joined by '.', '_', '__' or dashes, '/' between components)",
            ),
            (
                "docker-daemon:reg_x.io:5000/a",
                "'reg_x.io:5000' is not a valid registry host[:port]",
            ),
            (
                "docker-daemon:localhost:x/a",
                "'localhost:x' is not a valid registry host[:port]",
            ),
            (
                "containers-storage:app",
                "mlsize does not read containers-storage: images",
            ),
            ("sif:x.sif", "mlsize does not read sif: images"),
            ("MyApp:1.0", "repository name must be lowercase"),
            (
                "app:bad!tag",
                "'bad!tag' is not a valid tag (up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')",
            ),
            (
                "a:b:c",
                "'a:b' is not a valid repository name (lowercase letters and digits, joined by '.', '_', '__' or dashes, '/' between components)",
            ),
        ];
        for (arg, why) in cases {
            let err = Reference::parse(arg).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("invalid image reference '{arg}': {why}; {FORMS}"),
                "{arg}"
            );
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let e = Reference::parse("").unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "a usage error: {e:?}");
    }

    #[test]
    fn docker_references_split_as_distribution_does() {
        let r = |s| DockerRef::parse(s).unwrap();
        let want = |domain, path, tag, digest| DockerRef {
            domain,
            path,
            tag,
            digest,
        };
        assert_eq!(r("app"), want(None, "app", None, None));
        assert_eq!(r("app:1"), want(None, "app", Some("1"), None));
        assert_eq!(r("team/app:1"), want(None, "team/app", Some("1"), None));
        assert_eq!(
            r("localhost/app"),
            want(Some("localhost"), "app", None, None)
        );
        assert_eq!(
            r("reg:5000/a/b:c"),
            want(Some("reg:5000"), "a/b", Some("c"), None)
        );
        assert_eq!(
            r("Reg.IO/a"),
            want(Some("Reg.IO"), "a", None, None),
            "uppercase first component is a host"
        );
        assert_eq!(
            r("a@sha256:0123456789abcdef0123456789abcdef"),
            want(
                None,
                "a",
                None,
                Some("sha256:0123456789abcdef0123456789abcdef")
            )
        );
        for bad in [
            ID,
            ":tag",
            "a/",
            "/a",
            "a//b",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "[::1/a",
            "[zz]:5000/a",
            "reg:/a",
            "a@sha256",
            "a@1sha:0123456789abcdef0123456789abcdef",
        ] {
            assert!(DockerRef::parse(bad).is_err(), "{bad} is not a reference");
        }
        assert!(DockerRef::parse(&format!("a:{}", "t".repeat(128))).is_ok());
        assert!(DockerRef::parse(&format!("a:{}", "t".repeat(129))).is_err());
        assert!(DockerRef::parse(&"a".repeat(256)).is_err());
    }
}
