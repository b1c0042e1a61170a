//! index.json / manifest.json / manifests / configs: the input is split on
//! `\n--\n` into index.json, manifest.json and blobs named by their digests.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
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
    if let Some(i) = parts.next() {
        files.insert("index.json".to_string(), i.to_vec());
    }
    if let Some(m) = parts.next()
        && !m.is_empty()
    {
        files.insert("manifest.json".to_string(), m.to_vec());
    }
    for blob in parts {
        if let Some(d) = digest_bytes("sha256", blob) {
            files.insert(format!("blobs/sha256/{}", &d[7..]), blob.to_vec());
        }
    }
    let store = Mem { files };
    for verify in [true, false] {
        for platform in [None, Some(Platform::host())] {
            let sel = Selection {
                image: None,
                platform,
                verify,
            };
            let _ = resolve(&store, &sel);
        }
    }
});
