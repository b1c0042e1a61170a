//! The committed JSON Schemas (`schema/`) are the ones the types make, and
//! they accept what mlsize prints (every JSON the other tests parse is
//! validated by `support::checked` too).

mod support;

use support::*;

#[test]
fn committed_schemas_are_up_to_date() {
    for kind in ["analyze", "diff", "check", "fix"] {
        let out = mlsize()
            .args(["--generate", &format!("schema-{kind}")])
            .output()
            .unwrap();
        assert!(out.status.success());
        let path = format!("{}/schema/{kind}.schema.json", env!("CARGO_MANIFEST_DIR"));
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(
            String::from_utf8(out.stdout).unwrap() == committed,
            "{path} is out of date: run `cargo run -- --generate schema-{kind} > schema/{kind}.schema.json` and commit it"
        );
    }
}

#[test]
fn every_output_matches_its_schema_with_and_without_trees() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "old.tar", &kitchen_sink().docker_archive());
    let new = write(
        dir.path(),
        "new.tar",
        &kitchen_sink()
            .layer("COPY app /app", |l| l.file("app/weights.bin", 70_000))
            .docker_archive(),
    );
    let tree = json(&["analyze", &new, "--tree"]);
    assert!(tree["tree"]["children"].is_array());
    json(&["analyze", &new]);
    let growth = json(&["diff", &old, &new, "--tree"]);
    assert_eq!(growth["growth"]["added_bytes"], 70_000);
    json(&["diff", &old, &new]);
    let budget = write(
        dir.path(),
        "b.toml",
        b"max_visible_bytes = 1\nmax_layers = 50\n",
    );
    let out = mlsize()
        .args(["check", &new, "--budget", &budget, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = checked(serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(v["passed"], false);
}

#[test]
fn a_wrong_type_is_caught() {
    // The validation itself: a retyped field fails.
    let dir = tempfile::tempdir().unwrap();
    let image = write(dir.path(), "i.tar", &kitchen_sink().docker_archive());
    let mut v = json(&["analyze", &image]);
    v["image"]["visible_bytes"] = "a lot".into();
    let caught = std::panic::catch_unwind(|| checked(v));
    assert!(caught.is_err());
}
