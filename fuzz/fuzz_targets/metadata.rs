//! index.json / manifest.json / manifests / configs: the input is split on
//! `0xff` into index.json, manifest.json and blobs, each blob stored under
//! its digest (`blobs/sha256/<hex>`, for indexes and manifests) and under its
//! position (`0.json`, `1.json`, ..., for a docker-save `manifest.json` to
//! name as its `Config`). Every layer of a resolved image is then named the
//! way messages name it (`source::layer_label`), which is where a non-ASCII
//! diff_id once panicked.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use mlsize::source::layer_label;
use mlsize::source::meta::{Platform, Selection, Store, digest_bytes, resolve};

struct Mem {
    files: HashMap<String, Vec<u8>>,
}

impl Store for Mem {
    fn read_doc(&self, path: &str) -> mlsize::Result<Option<Vec<u8>>> {
        Ok(self.files.get(path).cloned())
    }
    fn size_of(&self, path: &str) -> Option<u64> {
        self.files.get(path).map(|f| f.len() as u64)
    }
    fn origin(&self) -> &str {
        "fuzz"
    }
    fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
    fn sample_names(&self) -> Vec<String> {
        self.files.keys().take(3).cloned().collect()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xff);
    let mut files = HashMap::new();
    // An empty first part means no index.json: a legacy docker-save archive.
    if let Some(i) = parts.next()
        && !i.is_empty()
    {
        files.insert("index.json".to_string(), i.to_vec());
    }
    if let Some(m) = parts.next()
        && !m.is_empty()
    {
        files.insert("manifest.json".to_string(), m.to_vec());
    }
    for (i, blob) in parts.enumerate() {
        if let Some(d) = digest_bytes("sha256", blob) {
            files.insert(format!("blobs/sha256/{}", &d[7..]), blob.to_vec());
        }
        files.insert(format!("{i}.json"), blob.to_vec());
    }
    let store = Mem { files };
    for verify in [true, false] {
        for platform in [None, Some(Platform::host())] {
            let sel = Selection {
                image: None,
                platform,
                verify,
            };
            if let Ok(meta) = resolve(&store, &sel) {
                for i in 0..meta.layers.len() {
                    let _ = layer_label(&meta, i);
                }
            }
        }
    }
});
