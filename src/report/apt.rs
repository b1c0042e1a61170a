//! What `--no-install-recommends` takes out of an `apt-get install` (the
//! `apt-install-recommends` recommendation, and `mlsize fix`'s edit): the
//! packages a layer installed that the requested ones do not depend on
//! (`Depends`, `Pre-Depends`, through alternatives and virtual packages), as
//! the layer's own dpkg status database records them, and their files, as
//! the layer's `/var/lib/dpkg/info/PKG.list` files list them.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use crate::history::shell;
use crate::overlay::Inode;

/// One installed package of a dpkg status database.
#[derive(Debug, Default, Clone)]
struct Pkg {
    /// `Depends` and `Pre-Depends`: groups of alternatives.
    depends: Vec<Vec<String>>,
    /// Virtual packages it provides.
    provides: Vec<String>,
}

/// The installed packages of a dpkg status file.
fn parse_status(text: &str) -> HashMap<String, Pkg> {
    let mut out = HashMap::new();
    for para in text.split("\n\n") {
        let mut name = None;
        let mut pkg = Pkg::default();
        let mut installed = false;
        // Fields may continue on lines that start with a space.
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in para.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = fields.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        for (k, v) in fields {
            match k.as_str() {
                "Package" => name = Some(v),
                "Status" => installed = v.ends_with(" installed"),
                "Depends" | "Pre-Depends" => pkg.depends.extend(groups(&v)),
                "Provides" => pkg.provides.extend(groups(&v).into_iter().flatten()),
                _ => {}
            }
        }
        if let (Some(n), true) = (name, installed) {
            out.insert(n, pkg);
        }
    }
    out
}

/// `a (>= 1) | b:any, c` → `[[a, b], [c]]`.
fn groups(v: &str) -> Vec<Vec<String>> {
    v.split(',')
        .map(|g| g.split('|').map(name).filter(|n| !n.is_empty()).collect())
        .filter(|g: &Vec<String>| !g.is_empty())
        .collect()
}

/// A package name without version constraint, architecture or suite.
fn name(s: &str) -> String {
    let s = s.trim();
    let s = s.split([' ', '(', '=']).next().unwrap_or(s);
    let s = s.split(':').next().unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    s.to_string()
}

/// The packages `installed_here` holds that `requested` does not need: what
/// apt installed as recommendations (and their dependencies). `None` when
/// a requested package is not in the status database (a name mlsize cannot
/// resolve, such as a glob or a virtual package with several providers).
pub fn recommended_only(
    status: &str,
    requested: &[String],
    installed_here: &BTreeSet<String>,
) -> Option<BTreeSet<String>> {
    let pkgs = parse_status(status);
    let mut providers: HashMap<&str, Vec<&str>> = HashMap::new();
    for (n, p) in &pkgs {
        for v in &p.provides {
            providers.entry(v.as_str()).or_default().push(n.as_str());
        }
    }
    let resolve = |n: &str| -> Option<String> {
        if pkgs.contains_key(n) {
            return Some(n.to_string());
        }
        let mut p = providers.get(n)?.clone();
        p.sort_unstable();
        p.first().map(|s| s.to_string())
    };
    let mut needed: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    for r in requested {
        let n = resolve(&name(r))?;
        if needed.insert(n.clone()) {
            queue.push_back(n);
        }
    }
    while let Some(n) = queue.pop_front() {
        let Some(p) = pkgs.get(&n) else { continue };
        for g in &p.depends {
            // The first alternative that is installed (as apt picks).
            if let Some(dep) = g.iter().find_map(|a| resolve(a))
                && needed.insert(dep.clone())
            {
                queue.push_back(dep);
            }
        }
    }
    Some(
        installed_here
            .iter()
            .filter(|p| !needed.contains(*p))
            .cloned()
            .collect(),
    )
}

/// The package a `/var/lib/dpkg/info/` file belongs to (`gcc-12.list`,
/// `libc6:amd64.md5sums` → `gcc-12`, `libc6`), when it is one.
pub fn info_package(path: &str) -> Option<&str> {
    let file = path.strip_prefix("/var/lib/dpkg/info/")?;
    let (stem, _) = file.rsplit_once('.')?;
    Some(stem.split(':').next().unwrap_or(stem))
}

/// The packages an instruction's `apt-get install` / `apt install`
/// commands request, as written (`RUN apt-get update && apt-get install -y
/// gcc`: `gcc`). `None` when the line cannot be followed (subshells,
/// here-documents).
pub fn requested(instruction: &str) -> Option<Vec<String>> {
    let run = instruction.strip_prefix("RUN ")?.trim_start();
    // BuildKit's flags (`--mount=...`) come before the command.
    let mut run = run;
    while run.starts_with("--") {
        run = run
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r)
            .trim_start();
    }
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let mut out = Vec::new();
    for c in shell::split(run)? {
        let w = c.words();
        let Some(at) = (0..w.len()).find(|&j| {
            w[j] == "install"
                && (0..j).rev().any(|k| {
                    matches!(base(&w[k]).as_str(), "apt-get" | "apt")
                        && w[k + 1..j].iter().all(|x| x.starts_with('-'))
                })
        }) else {
            continue;
        };
        let mut skip = false;
        for x in &w[at + 1..] {
            if matches!(x.as_str(), "|" | "||" | "&" | ">" | ">>" | "2>" | "2>&1") {
                break;
            }
            if std::mem::take(&mut skip) {
                continue;
            }
            if matches!(x.as_str(), "-o" | "-t" | "--option" | "--target-release") {
                skip = true;
            } else if !x.starts_with('-') {
                out.push(x.clone());
            }
        }
    }
    Some(out)
}

/// The files (indexes into `inodes`) of the packages that layer `layer`'s
/// `apt-get install` (in `instruction`) brought only as recommendations
/// ([`recommended_only`], from the layer's own dpkg status), with their
/// `info/` files, and those packages, sorted. `None` when the layer holds
/// no readable status database or the requests cannot be resolved.
pub fn recommended_files(
    inodes: &[Inode],
    layer: u32,
    instruction: &str,
) -> Option<(Vec<u32>, Vec<String>)> {
    let requested = requested(instruction)?;
    if requested.is_empty() {
        return None;
    }
    let status = inodes
        .iter()
        .find(|n| n.layer == layer && &*n.path == "/var/lib/dpkg/status")?
        .data()?;
    let list_before: BTreeSet<&str> = inodes
        .iter()
        .filter(|n| n.layer < layer && n.path.ends_with(".list"))
        .filter_map(|n| info_package(&n.path))
        .collect();
    let mut lists: HashMap<&str, &[u8]> = HashMap::new();
    for n in inodes
        .iter()
        .filter(|n| n.layer == layer && n.path.ends_with(".list"))
    {
        if let (Some(p), Some(d)) = (info_package(&n.path), n.data())
            && !list_before.contains(p)
        {
            lists.insert(p, d);
        }
    }
    let here: BTreeSet<String> = lists.keys().map(|s| s.to_string()).collect();
    let only = recommended_only(&String::from_utf8_lossy(status), &requested, &here)?;
    let paths: HashSet<&str> = only
        .iter()
        .filter_map(|p| lists.get(p.as_str()))
        .flat_map(|d| std::str::from_utf8(d).unwrap_or("").lines())
        .collect();
    let files = (0..inodes.len() as u32)
        .filter(|&f| {
            let n = &inodes[f as usize];
            n.layer == layer
                && (paths.contains(&*n.path)
                    || info_package(&n.path).is_some_and(|p| only.contains(p)))
        })
        .collect();
    Some((files, only.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: libc6-dev
Status: install ok installed
Depends: libc6 (= 2.36-9), libc-dev-bin (= 2.36-9), linux-libc-dev, libcrypt-dev
Recommends: gcc | c-compiler, libnsl-dev

Package: libc6
Status: install ok installed

Package: libc-dev-bin
Status: install ok installed
Depends: libc6 (>> 2.36)

Package: linux-libc-dev
Status: install ok installed

Package: libcrypt-dev
Status: install ok installed
Depends: libcrypt1 (= 1:4.4.33-2)

Package: libcrypt1
Status: install ok installed

Package: gcc-12
Status: install ok installed
Provides: c-compiler
Depends: cpp-12 (= 12.2.0-14), libgcc-s1:any

Package: gcc
Status: install ok installed
Depends: cpp (= 4:12.2.0-3), gcc-12 (>= 12.2.0-1~)

Package: cpp-12
Status: install ok installed

Package: cpp
Status: install ok installed
Depends: cpp-12

Package: libgcc-s1
Status: install ok installed

Package: removed
Status: deinstall ok config-files
";

    #[test]
    fn recommendations_are_what_depends_do_not_reach() {
        let here: BTreeSet<String> = [
            "libc6-dev",
            "libc-dev-bin",
            "linux-libc-dev",
            "libcrypt-dev",
            "gcc-12",
            "gcc",
            "cpp-12",
            "cpp",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got = recommended_only(STATUS, &["libc6-dev".into()], &here).unwrap();
        let want: BTreeSet<String> = ["cpp", "cpp-12", "gcc", "gcc-12"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, want);
        // Asking for gcc keeps it and what it depends on.
        let got = recommended_only(
            STATUS,
            &["libc6-dev".into(), "gcc=4:12.2.0-3".into()],
            &here,
        )
        .unwrap();
        assert!(got.is_empty(), "{got:?}");
        // A virtual package resolves to its provider.
        let got = recommended_only(STATUS, &["c-compiler".into()], &here).unwrap();
        assert!(!got.contains("gcc-12") && got.contains("libc6-dev"));
        assert_eq!(recommended_only(STATUS, &["nope".into()], &here), None);
        assert_eq!(
            info_package("/var/lib/dpkg/info/libc6:amd64.md5sums"),
            Some("libc6")
        );
        assert_eq!(
            info_package("/var/lib/dpkg/info/gcc-12.list"),
            Some("gcc-12")
        );
    }
}
