//! `--format html` in a real browser (headless Chromium): what the page shows
//! after its script ran, read from the rendered DOM, against the JSON.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use mlsize::testutil::ImageBuilder;
use serde_json::Value;
use support::tools::have;
use support::*;

/// Chromium flags for a quiet, repeatable page load.
const CHROMIUM: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1400,900",
    "--enable-logging=stderr",
    "--v=0",
];

/// Hosts Chromium itself talks to (updates, time, accounts) even with the
/// flags above; any other request comes from the page.
const BROWSER_HOSTS: &[&str] = &[
    "google.com/",
    "googleapis.com/",
    "gvt1.com/",
    "gstatic.com/",
];

/// The DOM after scripts ran, the console lines, and the URLs requested.
struct Loaded {
    dom: String,
    console: Vec<String>,
    requests: Vec<String>,
}

fn load(page: &Path, fragment: &str) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let netlog = dir.path().join("net.json");
    let mut c = Command::new("chromium");
    c.args(CHROMIUM)
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--log-net-log={}", netlog.display()));
    let out = c
        .arg("--dump-dom")
        .arg(format!("file://{}{fragment}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let log = std::fs::read_to_string(&netlog).unwrap_or_default();
    let mut requests: Vec<String> = log
        .split("\"url\":\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|u| u.starts_with("http") || u.starts_with("ws"))
        .filter(|u| !BROWSER_HOSTS.iter().any(|h| u.contains(h)))
        .map(str::to_string)
        .collect();
    requests.sort();
    requests.dedup();
    Loaded {
        dom: String::from_utf8(out.stdout).unwrap(),
        console,
        requests,
    }
}

/// The attributes of every element whose opening tag starts with `open`.
fn elements(dom: &str, open: &str) -> Vec<HashMap<String, String>> {
    dom.split(open)
        .skip(1)
        .map(|rest| {
            let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
            let mut attrs = HashMap::new();
            let mut s = tag;
            while let Some(eq) = s.find("=\"") {
                let name = s[..eq].rsplit(' ').next().unwrap_or("").to_string();
                let after = &s[eq + 2..];
                let end = after.find('"').unwrap_or(after.len());
                attrs.insert(name, after[..end].replace("&amp;", "&"));
                s = &after[(end + 1).min(after.len())..];
            }
            attrs
        })
        .collect()
}

/// `left`, `top`, `width`, `height` of an inline style, in pixels.
fn rect(style: &str) -> [f64; 4] {
    let px = |name: &str| -> f64 {
        let at = style.find(&format!("{name}: ")).unwrap() + name.len() + 2;
        style[at..].split("px").next().unwrap().parse().unwrap()
    };
    [px("left"), px("top"), px("width"), px("height")]
}

fn cells(dom: &str) -> Vec<HashMap<String, String>> {
    elements(dom, "<div ")
        .into_iter()
        .filter(|e| e.get("class").is_some_and(|c| c.starts_with("cell")))
        .collect()
}

/// An image whose directories and fates are known: /usr (visible), /opt
/// (visible), a cache in /root written then deleted (wasted), a file in
/// /srv overwritten by a larger one (wasted + visible).
fn image() -> ImageBuilder {
    ImageBuilder::new()
        .layer("ADD rootfs.tar / # base", |l| {
            l.file("usr/lib/libbig.so", 3_000_000)
                .file("usr/lib/libsmall.so", 1_000_000)
                .file("usr/share/doc/readme", 10_000)
                .file("srv/data.bin", 200_000)
        })
        .layer("RUN pip install thing", |l| {
            l.file("opt/thing/model.bin", 2_000_000)
                .file("root/.cache/pip/http/a/body", 1_500_000)
        })
        .layer("RUN rm -rf /root/.cache && cp big /srv/data.bin", |l| {
            l.whiteout("root/.cache").file("srv/data.bin", 400_000)
        })
        .name("html-test:1")
}

fn need_chromium() -> bool {
    have(&["chromium"])
}

#[test]
fn analyze_page_matches_the_json_in_a_real_browser() {
    if !need_chromium() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = write(dir.path(), "image.tar", &image().docker_archive());
    let page = dir.path().join("page.html");
    let out = mlsize()
        .args(["analyze", &archive, "--format", "html", "-o"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "the page goes to -o, nothing to stdout"
    );
    let json = support::json(&["analyze", &archive, "--tree"]);

    // The data embedded is exactly what --format json --tree prints.
    let html = std::fs::read_to_string(&page).unwrap();
    let embedded = html
        .split("<script type=\"application/json\" id=\"mlsize-data\">")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(embedded).unwrap(), json);

    let l = load(&page, "");
    assert_eq!(l.console, Vec::<String>::new(), "no console messages");
    assert_eq!(
        l.requests,
        Vec::<String>::new(),
        "no request leaves the page"
    );
    assert!(l.dom.contains("data-rendered=\"1\""));

    // Every layer row shows the JSON's figures (exact bytes in the titles).
    let rows: Vec<&str> = l
        .dom
        .split("<tbody>")
        .nth(2)
        .unwrap()
        .split("</tbody>")
        .next()
        .unwrap()
        .split("<tr>")
        .skip(1)
        .collect();
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(rows.len(), layers.len());
    for (row, layer) in rows.iter().zip(layers) {
        let exact: Vec<String> = row
            .split("<span title=\"")
            .skip(1)
            .map(|s| s.split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(
            exact,
            vec![
                layer["content_bytes"].to_string(),
                layer["wasted_bytes"].to_string(),
                layer["compressed_bytes"].to_string(),
            ],
            "{row}"
        );
        assert!(
            row.contains(
                layer["instruction"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
            )
        );
    }

    // The treemap's top-level rectangles: one per top directory with visible
    // bytes, area proportional to its visible bytes (within 1%).
    let top: Vec<_> = cells(&l.dom)
        .into_iter()
        .filter(|c| c["data-depth"] == "1")
        .collect();
    let tree_top: HashMap<String, u64> = json["tree"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| u(c, "/visible_bytes") > 0)
        .map(|c| {
            (
                format!("/{}", c["name"].as_str().unwrap()),
                u(c, "/visible_bytes"),
            )
        })
        .collect();
    let shown: HashMap<String, f64> = top
        .iter()
        .map(|c| {
            let [_, _, w, h] = rect(&c["style"]);
            (c["data-path"].clone(), w * h)
        })
        .collect();
    assert_eq!(
        shown.keys().collect::<std::collections::BTreeSet<_>>(),
        tree_top.keys().collect(),
        "/usr, /opt, /srv: not /root, whose bytes are all wasted"
    );
    let area: f64 = shown.values().sum();
    let bytes: u64 = tree_top.values().sum();
    for (path, b) in &tree_top {
        let share = shown[path] / area;
        let want = *b as f64 / bytes as f64;
        assert!(
            (share - want).abs() / want < 0.01,
            "{path}: {share} vs {want}"
        );
    }

    // Zoom: the fragment's path becomes the top, its entries the rectangles.
    let zoomed = load(&page, "#path=/usr");
    let paths: Vec<String> = cells(&zoomed.dom)
        .into_iter()
        .filter(|c| c["data-depth"] == "1")
        .map(|c| c["data-path"].clone())
        .collect();
    assert_eq!(paths, vec!["/usr/lib", "/usr/share"]);
    assert!(zoomed.dom.contains(">share</button>") || zoomed.dom.contains(">usr</button>"));

    // Wasted bytes drawn: /root appears, as a wasted area.
    let wasted = load(&page, "#wasted=1");
    let root = cells(&wasted.dom)
        .into_iter()
        .find(|c| c["data-path"] == "/root/.cache/pip/http/a/body")
        .expect("the deleted cache is drawn");
    assert!(root["class"].contains("wasted"), "{root:?}");

    // Search: matching cells are marked, the others dimmed, and the
    // largest-files table keeps only matching rows.
    let searched = load(&page, "#search=libsmall");
    let found = cells(&searched.dom);
    let hit: Vec<&str> = found
        .iter()
        .filter(|c| c["class"].contains("hit") && !c["class"].contains("dir"))
        .map(|c| c["data-path"].as_str())
        .collect();
    assert_eq!(hit, vec!["/usr/lib/libsmall.so"]);
    assert!(found.iter().any(|c| c["class"].contains("dim")));
    let largest = searched.dom.split("id=\"largest\"").nth(1).unwrap();
    let visible_rows: Vec<&str> = largest
        .split("<tr")
        .skip(2)
        .filter(|r| !r.starts_with(" class=\"hidden\""))
        .collect();
    assert_eq!(visible_rows.len(), 1, "{visible_rows:?}");
    assert!(visible_rows[0].contains("/usr/lib/libsmall.so"));

    // Clicking layer 3 (index 2, the one that rewrote /srv/data.bin)
    // highlights its files: the state is the same fragment.
    let layered = load(&page, "#layer=2");
    let hit: Vec<String> = cells(&layered.dom)
        .into_iter()
        .filter(|c| c["class"].contains("hit") && !c["class"].contains("dir"))
        .map(|c| c["data-path"].clone())
        .collect();
    assert_eq!(hit, vec!["/srv/data.bin"]);
    assert!(layered.dom.contains(
        "data-layer=\"2\" aria-label=\"Highlight the files of layer 3\" aria-pressed=\"true\""
    ));

    // Without JavaScript the tables are all there: they are in the page as
    // written, not made by the script. (Headless Chromium dumps no DOM with
    // scripts disabled, so this reads the file.)
    for id in ["legend", "layers", "largest", "recommendations"] {
        assert!(html.contains(&format!("<table id=\"{id}\">")), "{id}");
    }
    assert!(html.contains("<noscript>"));
}

#[test]
fn remote_loads_are_caught_by_the_check() {
    // The request check itself: a page without the CSP that loads an image
    // from a server is caught (so an empty list above means something).
    if !need_chromium() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("leak.html");
    std::fs::write(
        &page,
        "<html><body><img src=\"http://127.0.0.1:9/pixel.png\"></body></html>",
    )
    .unwrap();
    assert_eq!(
        load(&page, "").requests,
        vec!["http://127.0.0.1:9/pixel.png"]
    );
}

#[test]
fn diff_and_check_pages_render() {
    if !need_chromium() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "old.tar", &image().docker_archive());
    let new = write(
        dir.path(),
        "new.tar",
        &image()
            .layer("COPY app /app", |l| l.file("app/weights.bin", 700_000))
            .docker_archive(),
    );
    let page = dir.path().join("diff.html");
    mlsize()
        .args(["diff", &old, &new, "--format", "html", "-o"])
        .arg(&page)
        .assert()
        .success();
    let l = load(&page, "");
    assert_eq!(l.console, Vec::<String>::new());
    assert_eq!(l.requests, Vec::<String>::new());
    let grown: Vec<(String, String)> = cells(&l.dom)
        .into_iter()
        .map(|c| (c["data-path"].clone(), c["data-bytes"].clone()))
        .collect();
    // One new file: the chain / -> /app is drawn as its one entry.
    assert_eq!(
        grown,
        vec![("/app/weights.bin".to_string(), "700000".to_string())]
    );

    let budget = write(dir.path(), "mlsize.toml", b"max_visible_bytes = 1000\n");
    let page = dir.path().join("check.html");
    let out = mlsize()
        .args(["check", &new, "--budget", &budget, "--format", "html", "-o"])
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a failed budget still exits 1");
    let l = load(&page, "");
    assert_eq!(l.console, Vec::<String>::new());
    assert!(l.dom.contains("FAIL: a budget rule is exceeded"));
    assert!(l.dom.contains("<code>max_visible_bytes</code>"));
}

#[test]
fn open_without_html_is_a_usage_error() {
    let err = fails(&["analyze", "whatever.tar", "--open"]);
    assert_eq!(err, "mlsize: --open needs --format html\n");
}

/// Nodes of a tree, and the sums of its files' bytes (visible, wasted).
fn walk(node: &Value, count: &mut usize, sums: &mut (u64, u64)) {
    *count += 1;
    match node["children"].as_array() {
        Some(children) => {
            let (v, w) = children.iter().fold((0, 0), |(v, w), c| {
                (v + u(c, "/visible_bytes"), w + u(c, "/wasted_bytes"))
            });
            assert_eq!(
                (v, w),
                (u(node, "/visible_bytes"), u(node, "/wasted_bytes")),
                "a directory is the sum of its entries: {}",
                node["name"]
            );
            for c in children {
                walk(c, count, sums);
            }
        }
        None => {
            sums.0 += u(node, "/visible_bytes");
            sums.1 += u(node, "/wasted_bytes");
        }
    }
}

#[test]
fn a_40000_file_image_makes_a_page_under_3_mb_with_every_byte_in_the_tree() {
    // 40,000 files in 400 directories, sizes 1..=1,000 bytes (20 MB in all:
    // the test archive stays small), and a cache of 2,000 files deleted by a
    // later layer.
    let image = ImageBuilder::new()
        .layer("RUN make lots", |mut l| {
            for i in 0..40_000usize {
                l = l.file(&format!("usr/share/d{:03}/f{i}", i % 400), 1 + i % 1000);
            }
            for i in 0..2_000usize {
                l = l.file(&format!("tmp/cache/c{i}"), 100 + i);
            }
            l
        })
        .layer("RUN rm -rf /tmp/cache", |l| l.whiteout("tmp/cache"));
    let dir = tempfile::tempdir().unwrap();
    let archive = write(dir.path(), "many.tar", &image.docker_archive());
    let json = support::json(&["analyze", &archive, "--tree"]);
    let (mut count, mut sums) = (0, (0, 0));
    walk(&json["tree"], &mut count, &mut sums);
    assert_eq!(
        sums,
        (
            u(&json, "/image/visible_bytes"),
            u(&json, "/image/wasted_bytes")
        )
    );
    assert_eq!(sums, (20_020_000, 2_199_000));
    // Over the budget, small files are gathered into "N small files" nodes.
    assert!(json["tree"].to_string().contains("\"aggregated\":true"));
    // The budget (12,000 nodes, plus at most two gathered nodes per directory kept).
    assert!(count <= 12_000 + 2 * 402 + 3, "{count} nodes");
    let page = dir.path().join("many.html");
    mlsize()
        .args(["analyze", &archive, "--format", "html", "-o"])
        .arg(&page)
        .assert()
        .success();
    let bytes = std::fs::metadata(&page).unwrap().len();
    assert!(bytes < 3_000_000, "{bytes} bytes");
}
