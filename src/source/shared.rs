//! What images read together (`mlsize diff`, `check --baseline`) share: the
//! scans of layers they have in common, and the census of file sizes that
//! decides which files need a content hash.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use super::cache::Fetched;
use crate::layer::LayerScan;

/// Layer scans shared by several images read at once (`mlsize diff`): a layer
/// both images contain (same diff_id) is read once, by whichever gets to it
/// first; the other waits for that scan.
#[derive(Debug, Default)]
pub struct ScanCache {
    cells: Mutex<HashMap<String, Arc<ScanCell>>>,
}

/// One layer's scan, filled by the first reader, and how it was obtained.
type ScanCell = OnceLock<(Result<LayerScan, String>, Fetched)>;

impl ScanCache {
    pub(super) fn cell(&self, diff_id: &str) -> Option<Arc<ScanCell>> {
        let mut m = self.cells.lock().ok()?;
        Some(m.entry(diff_id.to_string()).or_default().clone())
    }
}

/// File sizes that occur more than once across every image read together.
///
/// Only files of those sizes need a content hash: duplicate groups, moved
/// files and `identical` CUDA copies all compare (size, hash), so a file whose
/// size is unique is never compared. When every layer is an uncompressed tar
/// that can be read at any offset (docker-save archives, Docker 25+ and
/// uncompressed OCI layouts), mlsize first indexes all layers from their tar
/// headers, counts the sizes here, and then reads and hashes only the files
/// whose size repeats; the rest of the data is never read unless digests are
/// verified. Images read together (`mlsize diff`) share one census, so a file
/// moved between them is still found. An image that cannot be indexed this way
/// makes everybody hash everything.
#[derive(Debug)]
pub struct SizeCensus {
    state: Mutex<CensusState>,
    ready: Condvar,
}

/// File-size counts over layers, each layer counted once however many
/// images (or positions in an image) hold it: the files of a layer two images
/// share sit at the same paths in both, so they are never compared with each
/// other, and counting them twice would hash every one of them.
#[derive(Debug, Default)]
pub(super) struct Tally {
    layers: HashSet<String>,
    counts: HashMap<u64, u32>,
}

/// A layer's identity (`shared_key`, or its blob in its image) and how many
/// regular files of each size it holds.
pub(super) type LayerSizes = (String, HashMap<u64, u32>);

impl Tally {
    pub(super) fn add(&mut self, layers: &[LayerSizes]) {
        for (key, counts) in layers {
            if self.layers.insert(key.clone()) {
                for (&size, &n) in counts {
                    *self.counts.entry(size).or_insert(0) += n;
                }
            }
        }
    }

    /// The sizes that more than one file has.
    pub(super) fn repeated(&self) -> Arc<HashSet<u64>> {
        Arc::new(
            self.counts
                .iter()
                .filter(|&(_, &n)| n > 1)
                .map(|(&s, _)| s)
                .collect(),
        )
    }
}

#[derive(Debug, Default)]
struct CensusState {
    /// Images that have not contributed yet.
    pending: usize,
    tally: Tally,
    /// Some image could not tell its sizes in advance.
    hash_all: bool,
    /// Computed once, when the last image has contributed.
    result: Option<Option<Arc<HashSet<u64>>>>,
}

impl SizeCensus {
    /// A census of `images` images, each with its seat.
    pub fn seats(images: usize) -> Vec<Arc<CensusSeat>> {
        let census = Arc::new(SizeCensus {
            state: Mutex::new(CensusState {
                pending: images,
                ..CensusState::default()
            }),
            ready: Condvar::new(),
        });
        (0..images)
            .map(|_| {
                Arc::new(CensusSeat {
                    census: census.clone(),
                    done: AtomicBool::new(false),
                })
            })
            .collect()
    }
}

/// One image's place in a [`SizeCensus`]. It contributes once; dropping it
/// before that counts as "cannot tell" (so everything is hashed), which keeps
/// a reader that failed from leaving the others waiting.
#[derive(Debug)]
pub struct CensusSeat {
    census: Arc<SizeCensus>,
    done: AtomicBool,
}

impl CensusSeat {
    /// Adds this image's file-size counts, layer by layer (`None`: not known
    /// in advance). Later calls do nothing.
    pub(crate) fn contribute(&self, layers: Option<&[LayerSizes]>) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(mut st) = self.census.state.lock() else {
            return;
        };
        match layers {
            Some(l) => st.tally.add(l),
            None => st.hash_all = true,
        }
        st.pending = st.pending.saturating_sub(1);
        if st.pending == 0 {
            let result = (!st.hash_all).then(|| st.tally.repeated());
            st.tally = Tally::default();
            st.result = Some(result);
            self.census.ready.notify_all();
        }
    }

    /// Waits for every image's contribution; the sizes to hash (`None`: all).
    pub(super) fn sizes_to_hash(&self) -> Option<Arc<HashSet<u64>>> {
        let Ok(mut st) = self.census.state.lock() else {
            return None;
        };
        loop {
            if let Some(r) = &st.result {
                return r.clone();
            }
            st = match self.census.ready.wait(st) {
                Ok(st) => st,
                Err(_) => return None,
            };
        }
    }
}

impl Drop for CensusSeat {
    fn drop(&mut self) {
        self.contribute(None);
    }
}
