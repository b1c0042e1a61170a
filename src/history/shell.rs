//! Just enough of the shell to edit a `RUN` line: split it into its
//! `&&`/`;` commands, read a command's words, and match the paths a command
//! names (`rm -rf /opt/x*`) against the paths of the image.

/// One command of a `RUN` line: an item of its `&&`/`;` list (a pipeline,
/// possibly with `|| true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command's text, trimmed.
    pub text: String,
    /// What follows it in the list.
    pub sep: Sep,
}

/// What separates a command from the next in a `RUN` line's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sep {
    /// `&&`: the next runs if this one succeeded.
    And,
    /// `;` or a newline: the next runs whatever this one's status.
    Seq,
    /// The last command.
    End,
}

/// The commands of `cmds` for which `keep` holds, joined again with the
/// separators that keep what runs: where removed commands stood, `; `
/// when any separator passed over was `;`, ` && ` otherwise (so `a && rm
/// x; b` becomes `a; b`, and `b` still runs when `a` fails).
pub fn join_kept(cmds: &[Command], keep: impl Fn(&Command) -> bool) -> String {
    let mut out = String::new();
    let mut pending: Option<Sep> = None;
    for c in cmds {
        if keep(c) {
            match pending {
                Some(Sep::Seq) => out.push_str("; "),
                Some(_) => out.push_str(" && "),
                None => {}
            }
            out.push_str(&c.text);
            pending = Some(c.sep);
        } else if let Some(p) = pending {
            // Past a removed command: the weaker of the two separators.
            pending = Some(if p == Sep::Seq || c.sep == Sep::Seq {
                Sep::Seq
            } else {
                p
            });
        }
    }
    out
}

impl Command {
    /// The words, quotes removed (`'a b'` is one word).
    pub fn words(&self) -> Vec<String> {
        words(&self.text)
    }

    /// The program run, past `VAR=value` assignments and `sudo`.
    pub fn program(&self) -> Option<String> {
        let w = self.words();
        w.into_iter()
            .find(|w| is_program(w))
            .map(|w| w.rsplit('/').next().unwrap_or(&w).to_string())
    }

    /// The arguments of the program (the words after it, up to `|`, `||`,
    /// `>` or `2>`).
    pub fn args(&self) -> Vec<String> {
        let w = self.words();
        let start = w
            .iter()
            .position(|w| is_program(w))
            .map_or(w.len(), |p| p + 1);
        w[start.min(w.len())..]
            .iter()
            .take_while(|w| !matches!(w.as_str(), "|" | "||" | "&" | ">" | ">>" | "2>" | "2>&1"))
            .cloned()
            .collect()
    }
}

/// Whether a word can be the program: not `VAR=value`, not `sudo`.
fn is_program(w: &str) -> bool {
    (w.starts_with('-') || !w.contains('=')) && w != "sudo"
}

/// Splits a shell command line at top-level `&&` and `;` (and newlines),
/// respecting quotes and backslashes. `None` for what this cannot follow
/// safely: subshells, braces, control flow, here-documents.
pub fn split(line: &str) -> Option<Vec<Command>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let (mut single, mut double) = (false, false);
    while let Some(c) = chars.next() {
        match c {
            '\\' if !single => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '\'' if !double => {
                single = !single;
                cur.push(c);
            }
            '"' if !single => {
                double = !double;
                cur.push(c);
            }
            _ if single || double => cur.push(c),
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                push(&mut out, &mut cur, Sep::And);
            }
            ';' | '\n' => push(&mut out, &mut cur, Sep::Seq),
            '(' | ')' | '{' | '}' | '`' => return None,
            '<' if chars.peek() == Some(&'<') => return None,
            _ => cur.push(c),
        }
    }
    if single || double {
        return None;
    }
    push(&mut out, &mut cur, Sep::End);
    let control = [
        "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    ];
    if out.iter().any(|c: &Command| {
        c.words()
            .first()
            .is_some_and(|w| control.contains(&w.as_str()))
    }) {
        return None;
    }
    Some(out)
}

fn push(out: &mut Vec<Command>, cur: &mut String, sep: Sep) {
    let t = cur.trim();
    if !t.is_empty() {
        out.push(Command {
            text: t.to_string(),
            sep,
        });
    } else if let Some(last) = out.last_mut() {
        // `a ; ; b`, or a list that ends with `;`.
        if sep == Sep::Seq || last.sep == Sep::End {
            last.sep = sep;
        }
    }
    cur.clear();
}

/// Shell words with quotes removed (no expansion).
pub fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut chars = s.chars();
    let (mut single, mut double) = (false, false);
    while let Some(c) = chars.next() {
        match c {
            '\\' if !single => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            '\'' if !double => {
                single = !single;
                any = true;
            }
            '"' if !single => {
                double = !double;
                any = true;
            }
            c if c.is_whitespace() && !single && !double => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// Whether `path` is named by `pattern` (a shell glob: `*`, `?`, `[...]`
/// within one component), or, with `recursive`, lies under a directory it
/// names. Both are absolute.
pub fn names(pattern: &str, path: &str, recursive: bool) -> bool {
    let pat: Vec<&str> = pattern
        .trim_end_matches('/')
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if pat.is_empty() || comps.len() < pat.len() || (!recursive && comps.len() != pat.len()) {
        return false;
    }
    pat.iter().zip(&comps).all(|(p, c)| glob(p, c))
}

/// Glob match of one path component.
fn glob(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    // Classic two-pointer match with backtracking on the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && (p[i] == '?' || (p[i] != '[' && p[i] == t[j])) {
            i += 1;
            j += 1;
        } else if i < p.len()
            && p[i] == '['
            && let Some((ok, len)) = class(&p[i..], t[j])
            && ok
        {
            i += len;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// A `[...]` class at the start of `p`: whether `c` is in it, and its length.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let end = p.iter().skip(1).position(|&x| x == ']')? + 1;
    let body = &p[1..end];
    let (neg, body) = match body.first() {
        Some('!') | Some('^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut hit = false;
    let mut k = 0;
    while k < body.len() {
        if k + 2 < body.len() && body[k + 1] == '-' {
            hit |= body[k] <= c && c <= body[k + 2];
            k += 3;
        } else {
            hit |= body[k] == c;
            k += 1;
        }
    }
    Some((hit != neg, end + 1))
}

/// `arg` made absolute against `workdir` (`None` when it is relative and the
/// working directory is unknown, or when it holds a variable).
pub fn absolute(arg: &str, workdir: Option<&str>) -> Option<String> {
    if arg.contains('$') || arg.starts_with('~') {
        return None;
    }
    if arg.starts_with('/') {
        return Some(arg.to_string());
    }
    let w = workdir?;
    Some(format!(
        "{}/{}",
        w.trim_end_matches('/'),
        arg.trim_start_matches("./")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_commands_keeps_what_runs() {
        let c = split("a && rm -rf /x; b && rm -f /y && c; rm /z").unwrap();
        let seps: Vec<Sep> = c.iter().map(|c| c.sep).collect();
        assert_eq!(
            seps,
            [Sep::And, Sep::Seq, Sep::And, Sep::And, Sep::Seq, Sep::End]
        );
        let without_rm = |c: &Command| !c.text.starts_with("rm ");
        assert_eq!(join_kept(&c, without_rm), "a; b && c");
        assert_eq!(
            join_kept(&c, |_| true),
            "a && rm -rf /x; b && rm -f /y && c; rm /z"
        );
        assert_eq!(
            join_kept(&c, |c| c.text.starts_with("rm ")),
            "rm -rf /x; rm -f /y; rm /z"
        );
        // Removing the first or the last drops its separator.
        let c = split("rm -rf /x; a && b; rm /y").unwrap();
        assert_eq!(join_kept(&c, without_rm), "a && b");
        assert_eq!(join_kept(&split("a ; ; b ;").unwrap(), |_| true), "a; b");
    }

    #[test]
    fn splits_lists() {
        let c = split("apt-get update && apt-get install -y 'a b' ; rm -rf /x || true").unwrap();
        let t: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            t,
            [
                "apt-get update",
                "apt-get install -y 'a b'",
                "rm -rf /x || true"
            ]
        );
        assert_eq!(c[1].words(), ["apt-get", "install", "-y", "a b"]);
        assert_eq!(c[2].program().as_deref(), Some("rm"));
        assert_eq!(c[2].args(), ["-rf", "/x"]);
        assert_eq!(split("echo 'a && b'").unwrap().len(), 1);
        assert!(split("if true; then rm x; fi").is_none());
        assert!(split("(cd /x && make)").is_none());
        assert_eq!(
            split("DEBIAN_FRONTEND=noninteractive sudo /bin/rm x").unwrap()[0]
                .program()
                .as_deref(),
            Some("rm")
        );
    }

    #[test]
    fn globs() {
        assert!(names("/opt/data.bin", "/opt/data.bin", false));
        assert!(!names("/opt/data.bin", "/opt/data.bin2", false));
        assert!(names("/opt/*.bin", "/opt/x.bin", false));
        assert!(!names("/opt/*.bin", "/opt/d/x.bin", false));
        assert!(names("/opt/d", "/opt/d/x/y", true));
        assert!(!names("/opt/d", "/opt/d/x/y", false));
        assert!(names(
            "/var/lib/apt/lists/*",
            "/var/lib/apt/lists/partial/a",
            true
        ));
        assert!(names("/tmp/[a-c]?", "/tmp/bz", false));
        assert!(!names("/tmp/[!a-c]?", "/tmp/bz", false));
        assert_eq!(absolute("x", Some("/app")).as_deref(), Some("/app/x"));
        assert_eq!(absolute("./x", Some("/app/")).as_deref(), Some("/app/x"));
        assert_eq!(absolute("x", None), None);
    }
}
