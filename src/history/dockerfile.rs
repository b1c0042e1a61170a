//! A Dockerfile's instructions with their line numbers, to point annotations
//! at the line that created a layer. Matching is by normalised text: the
//! flags BuildKit leaves out of history (`RUN --mount`, `COPY --from`) are
//! dropped, whitespace is folded.

use super::one_line;

/// One instruction of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileInstruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// The instruction as it would appear in history (see module docs).
    pub key: String,
}

fn strip_flags(keyword: &str, rest: &str) -> String {
    let drop: &[&str] = match keyword {
        "RUN" => &["--mount=", "--network=", "--security="],
        "COPY" | "ADD" => &["--from=", "--link"],
        _ => &[],
    };
    rest.split_whitespace()
        .filter(|w| !drop.iter().any(|d| w.starts_with(d)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses a Dockerfile (line continuations, comments, heredoc bodies, the
/// `# escape=` directive).
pub fn parse(text: &str) -> Vec<DockerfileInstruction> {
    let mut escape = '\\';
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut directives = true;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with('#') {
            if directives
                && let Some(v) = line.trim_start_matches('#').trim().strip_prefix("escape=")
            {
                escape = v.trim().chars().next().unwrap_or('\\');
            }
            i += 1;
            continue;
        }
        directives = false;
        if line.is_empty() {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut text = String::new();
        let mut heredocs: Vec<String> = Vec::new();
        loop {
            let l = lines[i].trim_end();
            let cont = l.ends_with(escape);
            let body = if cont {
                &l[..l.len() - escape.len_utf8()]
            } else {
                l
            };
            if !body.trim_start().starts_with('#') || text.is_empty() {
                text.push_str(body);
                text.push(' ');
            }
            for w in body.split_whitespace() {
                if let Some(t) = w.strip_prefix("<<") {
                    let t = t
                        .trim_start_matches('-')
                        .trim_matches(|c| c == '"' || c == '\'');
                    if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        heredocs.push(t.to_string());
                    }
                }
            }
            i += 1;
            if !cont || i >= lines.len() {
                break;
            }
        }
        // Heredoc bodies belong to the instruction; skip to their terminators.
        for term in heredocs {
            while i < lines.len() {
                let l = lines[i].trim();
                text.push_str(l);
                text.push(' ');
                i += 1;
                if l == term {
                    break;
                }
            }
        }
        let text = text.trim();
        let (kw, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let kw = kw.to_ascii_uppercase();
        let key = one_line(&format!("{kw} {}", strip_flags(&kw, rest)));
        out.push(DockerfileInstruction { line: start, key });
    }
    out
}

/// The line of the Dockerfile instruction that matches a layer's instruction
/// (the last one, since the final stage comes last).
pub fn find_line(instructions: &[DockerfileInstruction], instruction: &str) -> Option<usize> {
    let (kw, rest) = instruction
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((instruction, ""));
    let want = one_line(&format!("{kw} {}", strip_flags(kw, rest)));
    instructions
        .iter()
        .rev()
        .find(|d| d.key == want)
        .map(|d| d.line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
FROM nvidia/cuda:12.4.1-devel-ubuntu22.04 AS build
RUN apt-get update && \
    apt-get install -y python3-pip
FROM python:3.11-slim
# a comment
COPY --from=build /out /app
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install torch
RUN <<EOF
set -e
echo hi
EOF
COPY   app.py   /app/
RUN pip install torch
"#;

    #[test]
    fn lines_of_instructions() {
        let d = parse(DOCKERFILE);
        let lines: Vec<(usize, &str)> = d.iter().map(|x| (x.line, x.key.as_str())).collect();
        assert_eq!(
            lines[0],
            (2, "FROM nvidia/cuda:12.4.1-devel-ubuntu22.04 AS build")
        );
        assert_eq!(
            lines[1],
            (3, "RUN apt-get update && apt-get install -y python3-pip")
        );
        assert_eq!(lines[3], (7, "COPY /out /app"));
        assert_eq!(lines[4], (8, "RUN pip install torch"));
        assert_eq!(lines[5].0, 10);
        assert_eq!(lines[6], (14, "COPY app.py /app/"));
        assert_eq!(lines.len(), 8);
    }

    #[test]
    fn finds_layers_in_the_dockerfile() {
        let d = parse(DOCKERFILE);
        assert_eq!(
            find_line(
                &d,
                "RUN apt-get update &&     apt-get install -y python3-pip"
            ),
            Some(3)
        );
        assert_eq!(find_line(&d, "COPY /out /app"), Some(7));
        assert_eq!(
            find_line(&d, "RUN pip install torch"),
            Some(15),
            "the last match wins"
        );
        assert_eq!(find_line(&d, "RUN make"), None);
    }
}
