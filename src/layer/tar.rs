//! A small, hardened, zero-copy streaming tar reader for untrusted layers.
//!
//! [`TarStream`] reads a tar stream once, front to back, from any [`BufRead`],
//! and hands each entry's data to the caller in slices borrowed straight from
//! the reader's buffer. It understands what container layers contain in
//! practice:
//!
//! - POSIX ustar headers (POSIX.1-2017, `pax` utility, "ustar Interchange
//!   Format"), including the `prefix` field, and pre-POSIX (v7) headers;
//! - pax extended headers (same page, "pax Interchange Format"): typeflag `x`
//!   (and Solaris `X`), records `path`, `linkpath` and `size`; global `g`
//!   headers are skipped;
//! - GNU long names and links (`L` / `K`) and GNU base-256 numbers (GNU tar
//!   manual, "Basic Tar Format" and "GNU Extensions to the Archive Format");
//! - GNU sparse files, old format (`S` with extension headers) and the pax
//!   formats 0.0, 0.1 and 1.0 (GNU tar manual, "Storing Sparse Files").
//!
//! Layers come from anywhere, so every declared size is distrusted: nothing is
//! allocated from a declared size beyond [`Limits::max_extension_bytes`], all
//! arithmetic on header values is checked, every loop consumes input, and no
//! byte is read twice. Where the specifications leave room, the reader follows
//! Go's `archive/tar`, which containerd, Docker and most image tools use to
//! apply layers, so that sizes are counted the way runtimes see them.

use std::io::{self, BufRead};

/// Size of a tar block: headers are one block, data is padded to blocks.
const BLOCK: usize = 512;
/// [`BLOCK`] as a `u64`, for size arithmetic.
const BLOCK_U64: u64 = 512;

/// Limits that keep hostile archives from exhausting memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest pax (`x`, `g`) or GNU long name/link (`L`, `K`) record, and
    /// largest GNU sparse map, in bytes. Larger ones are errors. Go's
    /// `archive/tar` uses the same 1 MiB default (`maxSpecialFileSize`).
    pub max_extension_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_extension_bytes: 1 << 20,
        }
    }
}

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A regular file: typeflag `0`, NUL (old tars), `7` (contiguous) and GNU
    /// sparse `S`.
    File,
    /// A directory (`5`, or a pre-POSIX NUL typeflag with a trailing `/`).
    Dir,
    /// A symbolic link (`2`); the target is in [`Header::link`].
    Symlink,
    /// A hard link (`1`) to the earlier entry named in [`Header::link`].
    HardLink,
    /// A character device (`3`).
    Char,
    /// A block device (`4`).
    Block,
    /// A FIFO (`6`).
    Fifo,
    /// Any other typeflag (GNU `D`, `M`, `V`, vendor letters, reserved digits):
    /// the caller decides. Its data is skipped like a file's.
    Other(u8),
}

/// One entry's header, with GNU long names and pax records applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Full path as stored: pax `path` (or, for pax sparse files,
    /// `GNU.sparse.name`) over GNU `L` over the ustar `prefix` + `/` + `name`.
    pub path: Vec<u8>,
    /// Link target: pax `linkpath` over GNU `K` over the `linkname` field.
    pub link: Vec<u8>,
    /// What the entry is.
    pub kind: Kind,
    /// Bytes of data this entry stores in the archive, exactly what
    /// [`TarStream::read_data`] feeds: the pax `size` record over the `size`
    /// field. Always 0 for links, devices, FIFOs and directories, whose `size`
    /// field POSIX says carries no data (Go's `archive/tar` ignores it too).
    /// For pax 1.0 sparse files it excludes the sparse map stored at the start
    /// of the data, which [`TarStream::next_header`] has already consumed.
    pub size: u64,
    /// The file's real size: [`Header::size`] except for sparse files, where it
    /// counts the holes too.
    pub apparent_size: u64,
    /// A GNU sparse file (old `S` or pax format 0.0, 0.1 or 1.0).
    pub sparse: bool,
}

/// A tar stream read once, front to back, from any [`BufRead`].
///
/// Call [`TarStream::next_header`] until it returns `Ok(None)`, and
/// [`TarStream::read_data`] for the entries whose data is wanted. After an
/// error the stream is unusable: further calls fail (as in Go's `archive/tar`),
/// so a caller that ignores an error cannot resynchronise on garbage.
pub struct TarStream<R: BufRead> {
    inner: R,
    limits: Limits,
    /// Bytes consumed from `inner`.
    pos: u64,
    /// Data of the current entry not yet consumed.
    data_left: u64,
    /// Padding after the current entry's data not yet consumed (< 512).
    pad_left: u64,
    state: State,
    /// Reused buffer for pax extended headers, so they cost no allocation per
    /// entry once warm.
    ext_buf: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// The end-of-archive marker or a clean EOF was seen.
    End,
    /// An error was returned; the position in the stream is meaningless.
    Failed,
}

impl<R: BufRead> TarStream<R> {
    /// Starts reading a tar stream at the current position of `inner`.
    pub fn new(inner: R, limits: Limits) -> Self {
        TarStream {
            inner,
            limits,
            pos: 0,
            data_left: 0,
            pad_left: 0,
            state: State::Open,
            ext_buf: Vec::new(),
        }
    }

    /// The next entry's header; skips whatever data of the previous entry was
    /// not consumed.
    ///
    /// Returns `Ok(None)` at the end-of-archive marker (a zero block) or at a
    /// clean EOF exactly on a header boundary, since some writers (umoci 0.4.7)
    /// omit the end blocks. EOF inside a header or inside data is an
    /// [`io::ErrorKind::UnexpectedEof`] error; malformed headers are
    /// [`io::ErrorKind::InvalidData`] errors.
    pub fn next_header(&mut self) -> io::Result<Option<Header>> {
        match self.state {
            State::Open => {}
            State::End => return Ok(None),
            State::Failed => return Err(failed()),
        }
        let result = self.next_header_inner();
        match &result {
            Ok(Some(_)) => {}
            Ok(None) => self.state = State::End,
            Err(_) => self.state = State::Failed,
        }
        result
    }

    /// Feeds the current entry's data to `f` in slices borrowed straight from
    /// the reader's buffer (no copy), and returns the number of bytes fed.
    ///
    /// For sparse entries it feeds the stored data segments only, back to back,
    /// and returns their total ([`Header::size`]); [`Header::apparent_size`]
    /// is the file's size with its holes. Consumes exactly the entry's data and
    /// its padding to the next 512-byte boundary; a second call feeds nothing.
    pub fn read_data(&mut self, f: impl FnMut(&[u8])) -> io::Result<u64> {
        match self.state {
            State::Open => {}
            State::End => return Ok(0),
            State::Failed => return Err(failed()),
        }
        let result = self.read_data_inner(f);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Reads the next part of the current entry's data into `dst` and returns
    /// its length: at most `dst.len()` bytes, 0 only at the end of the data
    /// (which also consumes the padding after it) or for an empty `dst`.
    ///
    /// Unlike [`TarStream::read_data`] it goes through `Read::read` of the
    /// inner reader: a `BufReader` with nothing buffered reads a `dst` at
    /// least as large as its buffer straight from its source, so a large
    /// member's data is copied once, from the source into `dst`, instead of
    /// into the buffer first. For sparse entries it reads the stored data, as
    /// [`TarStream::read_data`] feeds it.
    pub fn read_data_into(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        match self.state {
            State::Open => {}
            State::End => return Ok(0),
            State::Failed => return Err(failed()),
        }
        if dst.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.data_left).map_or(dst.len(), |l| l.min(dst.len()));
        if want == 0 {
            let r = self.skip_padding();
            if r.is_err() {
                self.state = State::Failed;
            }
            return r.map(|()| 0);
        }
        let n = loop {
            match self.inner.read(&mut dst[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.state = State::Failed;
                    return Err(e);
                }
            }
        };
        if n == 0 {
            self.state = State::Failed;
            return Err(truncated_data(self.pos));
        }
        self.pos = self.pos.saturating_add(n as u64);
        self.data_left -= n as u64;
        Ok(n)
    }

    /// Skips the current entry's data and padding without looking at them,
    /// through `skip`, which must move `inner` forward by up to `n` bytes and
    /// return how many it moved (fewer only at the end of the input). A reader
    /// that can seek skips a large file without reading it.
    pub fn skip_data(
        &mut self,
        skip: impl FnOnce(&mut R, u64) -> io::Result<u64>,
    ) -> io::Result<()> {
        match self.state {
            State::Open => {}
            State::End => return Ok(()),
            State::Failed => return Err(failed()),
        }
        let want = self.data_left.saturating_add(self.pad_left);
        let result = skip(&mut self.inner, want);
        let got = match result {
            Ok(got) => got.min(want),
            Err(e) => {
                self.state = State::Failed;
                return Err(e);
            }
        };
        self.pos = self.pos.saturating_add(got);
        let data_got = got.min(self.data_left);
        self.data_left -= data_got;
        self.pad_left -= (got - data_got).min(self.pad_left);
        if got < want {
            self.state = State::Failed;
            return Err(truncated_data(self.pos));
        }
        Ok(())
    }

    /// Bytes consumed from the inner reader so far: right after
    /// [`TarStream::next_header`], where the entry's stored data starts.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Gives back the reader (e.g. to drain the end blocks for hashing). After
    /// `Ok(None)` from [`TarStream::next_header`] it is positioned just after
    /// the first zero block.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn read_data_inner(&mut self, f: impl FnMut(&[u8])) -> io::Result<u64> {
        let want = self.data_left;
        let got = pull(&mut self.inner, &mut self.pos, want, f)?;
        self.data_left = want.saturating_sub(got);
        if got < want {
            return Err(truncated_data(self.pos));
        }
        self.skip_padding()?;
        Ok(got)
    }

    /// Consumes the rest of the current entry: unread data and padding.
    fn skip_rest(&mut self) -> io::Result<()> {
        let want = self.data_left;
        let got = pull(&mut self.inner, &mut self.pos, want, |_| {})?;
        self.data_left = want.saturating_sub(got);
        if got < want {
            return Err(truncated_data(self.pos));
        }
        self.skip_padding()
    }

    fn skip_padding(&mut self) -> io::Result<()> {
        let want = self.pad_left;
        let got = pull(&mut self.inner, &mut self.pos, want, |_| {})?;
        self.pad_left = want.saturating_sub(got);
        if got < want {
            return Err(truncated_data(self.pos));
        }
        Ok(())
    }

    /// Reads one block; `None` at a clean EOF before its first byte.
    fn read_block(&mut self) -> io::Result<Option<[u8; BLOCK]>> {
        let mut block = [0u8; BLOCK];
        let mut filled = 0usize;
        let got = pull(&mut self.inner, &mut self.pos, BLOCK_U64, |s| {
            // `pull` never hands out more than the 512 bytes asked for.
            if let Some(dst) = block.get_mut(filled..filled + s.len()) {
                dst.copy_from_slice(s);
            }
            filled += s.len();
        })?;
        match got {
            0 => Ok(None),
            BLOCK_U64 => Ok(Some(block)),
            _ => Err(eof(format!(
                "tar stream ends inside a header at offset {}",
                self.pos
            ))),
        }
    }

    /// Reads a block that must be there (a sparse map block).
    fn read_needed_block(&mut self, what: &str) -> io::Result<[u8; BLOCK]> {
        match self.read_block()? {
            Some(b) => Ok(b),
            None => Err(eof(format!(
                "tar stream ends inside {what} at offset {}",
                self.pos
            ))),
        }
    }

    /// Reads an extension record's data (`size` bytes, already checked against
    /// the limit) into `dst`, and skips its padding. Grows `dst` only as bytes
    /// actually arrive, so a truncated stream cannot make it allocate the
    /// declared size.
    fn read_extension(&mut self, size: u64, dst: &mut Vec<u8>) -> io::Result<()> {
        dst.clear();
        let got = pull(&mut self.inner, &mut self.pos, size, |s| {
            dst.extend_from_slice(s)
        })?;
        if got < size {
            return Err(truncated_data(self.pos));
        }
        self.pad_left = padding(size);
        self.skip_padding()
    }

    fn check_limit(&self, size: u64, what: &str) -> io::Result<()> {
        let limit = self.limits.max_extension_bytes;
        if size > limit {
            return Err(invalid(format!(
                "{what} of {size} bytes exceeds the {limit}-byte limit"
            )));
        }
        Ok(())
    }

    fn next_header_inner(&mut self) -> io::Result<Option<Header>> {
        self.skip_rest()?;
        let mut ext = Pending::default();
        loop {
            let at = self.pos;
            let Some(block) = self.read_block()? else {
                if ext.any {
                    return Err(eof(format!(
                        "tar stream ends after an extension header, at offset {at}"
                    )));
                }
                return Ok(None);
            };
            // POSIX: "At the end of the archive file there shall be two
            // 512-octet logical records filled with binary zeros". The first
            // one ends the archive; the caller drains the rest.
            if block.iter().all(|&b| b == 0) {
                if ext.any {
                    return Err(invalid(format!(
                        "end-of-archive marker after an extension header, at offset {at}"
                    )));
                }
                return Ok(None);
            }
            verify_checksum(&block, at)?;
            let size = parse_numeric(&block[124..136])
                .map_err(|e| invalid(format!("size field of the header at offset {at}: {e}")))?;
            match block[156] {
                // pax extended header for the next entry; 'X' is Solaris'
                // pre-POSIX spelling, which GNU tar also reads as pax.
                b'x' | b'X' => {
                    self.check_limit(size, "PAX header")?;
                    let mut buf = std::mem::take(&mut self.ext_buf);
                    let read = self.read_extension(size, &mut buf);
                    let parsed = read.and_then(|()| parse_pax(&buf, &mut ext.pax));
                    self.ext_buf = buf;
                    parsed.map_err(|e| annotate(e, at))?;
                    ext.any = true;
                }
                // pax global header: its records (mtime defaults, charset)
                // change nothing this reader reports, so skip it.
                b'g' => {
                    self.check_limit(size, "PAX global header")?;
                    self.data_left = size;
                    self.pad_left = padding(size);
                    self.skip_rest()?;
                }
                // GNU long name / long link: the data is the NUL-terminated
                // name of the next entry. The last one before an entry wins,
                // as in GNU tar and Go.
                b'L' => {
                    self.check_limit(size, "GNU long name")?;
                    let mut name = Vec::new();
                    self.read_extension(size, &mut name)?;
                    truncate_at_nul(&mut name);
                    ext.long_name = Some(name);
                    ext.any = true;
                }
                b'K' => {
                    self.check_limit(size, "GNU long link")?;
                    let mut link = Vec::new();
                    self.read_extension(size, &mut link)?;
                    truncate_at_nul(&mut link);
                    ext.long_link = Some(link);
                    ext.any = true;
                }
                _ => return self.entry_header(&block, at, size, ext).map(Some),
            }
        }
    }

    /// Builds the header of a real entry from its block and the extension
    /// headers before it, reads any sparse map, and sets up its data.
    fn entry_header(
        &mut self,
        block: &[u8; BLOCK],
        at: u64,
        field_size: u64,
        ext: Pending,
    ) -> io::Result<Header> {
        let Pending {
            long_name,
            long_link,
            mut pax,
            ..
        } = ext;
        let typeflag = block[156];
        let mut path = match pax.path.take().or(long_name) {
            Some(p) => p,
            None => ustar_path(block),
        };
        let link = match pax.linkpath.take().or(long_link) {
            Some(l) => l,
            None => until_nul(&block[157..257]).to_vec(),
        };
        let kind = match typeflag {
            b'0' | b'7' | b'S' => Kind::File,
            // POSIX: "AREGTYPE ... reserved for backward compatibility" with
            // v7 tar, where directories were regular entries whose name ends
            // in '/' (GNU tar and Go read them as directories).
            0 if path.last() == Some(&b'/') => Kind::Dir,
            0 => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => Kind::Other(other),
        };
        // POSIX: the pax `size` record overrides the header's size field.
        let stored = pax.size.unwrap_or(field_size);
        let header_only = matches!(
            kind,
            Kind::HardLink | Kind::Symlink | Kind::Char | Kind::Block | Kind::Dir | Kind::Fifo
        );
        if header_only {
            // POSIX ustar: "No data logical records are stored for types
            // LNKTYPE, SYMTYPE, or DIRTYPE" (nor for devices and FIFOs). Go's
            // archive/tar reads no data for them whatever `size` says, and it
            // is what unpacks layers, so do the same.
            let header = Header {
                path,
                link,
                kind,
                size: 0,
                apparent_size: 0,
                sparse: false,
            };
            return Ok(self.start_data(header, 0));
        }
        let pad = padding(stored);
        if typeflag == b'S' {
            let (map, apparent) = self.old_gnu_sparse_map(block, at)?;
            map.check(stored, apparent).map_err(|e| annotate(e, at))?;
            let header = Header {
                path,
                link,
                kind,
                size: stored,
                apparent_size: apparent,
                sparse: true,
            };
            return Ok(self.start_data(header, pad));
        }
        if kind == Kind::File
            && let Some(version) = pax.sparse_version()
        {
            if let Some(name) = pax.sparse_name.take() {
                path = name;
            }
            let (map, data) = match version {
                SparseVersion::V0 => (pax.sparse_map_0x().map_err(|e| annotate(e, at))?, stored),
                SparseVersion::V1 => self.pax_sparse_map_1x0(stored, at)?,
            };
            if let Some(n) = pax.sparse_numblocks
                && n != map.count
            {
                let msg = format!(
                    "GNU.sparse.numblocks is {n} but the map has {} segments",
                    map.count
                );
                return Err(annotate(invalid(msg), at));
            }
            let apparent = pax.sparse_size.or(pax.sparse_realsize).unwrap_or(map.end);
            map.check(data, apparent).map_err(|e| annotate(e, at))?;
            let header = Header {
                path,
                link,
                kind,
                size: data,
                apparent_size: apparent,
                sparse: true,
            };
            return Ok(self.start_data(header, pad));
        }
        let header = Header {
            path,
            link,
            kind,
            size: stored,
            apparent_size: stored,
            sparse: false,
        };
        Ok(self.start_data(header, pad))
    }

    /// Makes `header` the current entry, whose data (`header.size` bytes) and
    /// `pad` bytes of padding come next in the stream.
    fn start_data(&mut self, header: Header, pad: u64) -> Header {
        self.data_left = header.size;
        self.pad_left = pad;
        header
    }

    /// Reads the old GNU sparse map: four segments in the header, then
    /// 512-byte extension blocks of 21 while `isextended` is set (GNU tar
    /// manual, "Basic Tar Format": `struct oldgnu_header`, `struct
    /// sparse_header`). Returns the map and the `realsize` field.
    fn old_gnu_sparse_map(&mut self, block: &[u8; BLOCK], at: u64) -> io::Result<(SparseMap, u64)> {
        // The old GNU layout overlays the ustar `prefix`; a 'S' entry in any
        // other format (star uses the same flag differently) cannot be read.
        if &block[257..265] != b"ustar  \0" {
            return Err(invalid(format!(
                "GNU sparse entry at offset {at} does not have the GNU header magic"
            )));
        }
        let mut map = SparseMap::default();
        add_old_gnu_segments(&block[386..482], &mut map)
            .map_err(|e| invalid(format!("sparse map of the header at offset {at}: {e}")))?;
        // Extension blocks follow whenever `isextended` is set, even if the
        // list above ended early: they must be consumed either way.
        let mut extended = block[482] != 0;
        let apparent = parse_numeric(&block[483..495])
            .map_err(|e| invalid(format!("realsize field of the header at offset {at}: {e}")))?;
        let mut map_bytes = 0u64;
        while extended {
            map_bytes = map_bytes.saturating_add(BLOCK_U64);
            self.check_limit(map_bytes, "GNU sparse map")?;
            let ext = self.read_needed_block("a GNU sparse map")?;
            add_old_gnu_segments(&ext[..504], &mut map)
                .map_err(|e| invalid(format!("sparse map of the header at offset {at}: {e}")))?;
            extended = ext[504] != 0;
        }
        Ok((map, apparent))
    }

    /// Reads the pax 1.0 sparse map from the start of the entry's data: decimal
    /// numbers, each followed by a newline: the segment count, then an offset
    /// and a size per segment; padded with NULs to a block boundary (GNU tar
    /// manual, "PAX Format, Version 1.0"). Returns the map and the bytes of
    /// data left after it.
    fn pax_sparse_map_1x0(&mut self, stored: u64, at: u64) -> io::Result<(SparseMap, u64)> {
        let mut map = SparseMap::default();
        let mut left = stored;
        let mut map_bytes = 0u64;
        let mut count: Option<u64> = None;
        let mut offset: Option<u64> = None;
        let mut number = 0u64;
        let mut digits = 0usize;
        let mut done = false;
        let bad =
            |what: &str| invalid(format!("GNU sparse map of the entry at offset {at} {what}"));
        while !done {
            if left < BLOCK_U64 {
                return Err(bad("runs past its data"));
            }
            map_bytes = map_bytes.saturating_add(BLOCK_U64);
            self.check_limit(map_bytes, "GNU sparse map")?;
            let block = self.read_needed_block("a GNU sparse map")?;
            left -= BLOCK_U64;
            for &b in &block {
                match b {
                    b'0'..=b'9' => {
                        number = number
                            .checked_mul(10)
                            .and_then(|n| n.checked_add(u64::from(b - b'0')))
                            .ok_or_else(|| bad("has a number out of range"))?;
                        digits += 1;
                    }
                    b'\n' if digits > 0 => {
                        let n = std::mem::take(&mut number);
                        digits = 0;
                        match (count, offset.take()) {
                            (None, _) => count = Some(n),
                            (Some(_), None) => offset = Some(n),
                            (Some(_), Some(off)) => {
                                map.add(off, n).map_err(|e| annotate(e, at))?;
                            }
                        }
                        if count == Some(map.count) && offset.is_none() {
                            done = true;
                            break;
                        }
                    }
                    _ => return Err(bad("is malformed")),
                }
            }
        }
        Ok((map, left))
    }
}

/// Extension headers seen before an entry.
#[derive(Default)]
struct Pending {
    /// Any extension header was seen: the entry must follow.
    any: bool,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Pax,
}

/// The pax records this reader uses. Consecutive `x` headers merge, later
/// records overriding earlier ones.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    sparse_major: Option<u64>,
    sparse_minor: Option<u64>,
    sparse_name: Option<Vec<u8>>,
    /// `GNU.sparse.size` (formats 0.0 and 0.1).
    sparse_size: Option<u64>,
    /// `GNU.sparse.realsize` (format 1.0).
    sparse_realsize: Option<u64>,
    sparse_numblocks: Option<u64>,
    /// `GNU.sparse.map` (format 0.1).
    map_0x1: Option<SparseMap>,
    /// Repeated `GNU.sparse.offset` / `GNU.sparse.numbytes` (format 0.0).
    map_0x0: Option<SparseMap>,
    /// A `GNU.sparse.offset` waiting for its `GNU.sparse.numbytes`.
    offset_0x0: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SparseVersion {
    /// 0.0 or 0.1: the map is in the pax records.
    V0,
    /// 1.0: the map is at the start of the data.
    V1,
}

impl Pax {
    /// Which pax sparse format the records describe, if any. As in Go's
    /// `archive/tar`: an explicit version other than 0.0, 0.1 or 1.0 means
    /// "not a sparse file we know", and 0.x archives carry no version at all.
    fn sparse_version(&self) -> Option<SparseVersion> {
        match (self.sparse_major, self.sparse_minor) {
            (Some(0), Some(0 | 1)) => Some(SparseVersion::V0),
            (Some(1), Some(0)) => Some(SparseVersion::V1),
            (None, None)
                if self.map_0x1.is_some()
                    || self.map_0x0.is_some()
                    || self.offset_0x0.is_some() =>
            {
                Some(SparseVersion::V0)
            }
            _ => None,
        }
    }

    /// The 0.0 or 0.1 map (0.1's single record wins over 0.0's pairs).
    fn sparse_map_0x(&self) -> io::Result<SparseMap> {
        if self.offset_0x0.is_some() {
            return Err(invalid("GNU.sparse.offset without GNU.sparse.numbytes"));
        }
        self.map_0x1
            .or(self.map_0x0)
            .ok_or_else(|| invalid("GNU sparse 0.x entry without a sparse map"))
    }
}

/// A sparse map, checked as it is read and not stored: only its totals matter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SparseMap {
    /// End of the last segment in the file.
    end: u64,
    /// Sum of the segment sizes: the bytes stored in the archive.
    stored: u64,
    /// Number of segments.
    count: u64,
}

impl SparseMap {
    fn add(&mut self, offset: u64, len: u64) -> io::Result<()> {
        // Segments must be in order and not overlap (as GNU tar writes them and
        // Go's `validateSparseEntries` requires).
        if offset < self.end {
            return Err(invalid("sparse map segments overlap or are out of order"));
        }
        self.end = offset
            .checked_add(len)
            .ok_or_else(|| invalid("sparse map segment ends beyond 2^64"))?;
        self.stored = self
            .stored
            .checked_add(len)
            .ok_or_else(|| invalid("sparse map covers more than 2^64 bytes"))?;
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    fn check(&self, stored: u64, apparent: u64) -> io::Result<()> {
        if self.stored != stored {
            return Err(invalid(format!(
                "sparse map covers {} bytes but the entry stores {stored}",
                self.stored
            )));
        }
        if self.end > apparent {
            return Err(invalid(format!(
                "sparse map reaches offset {} beyond the file's size {apparent}",
                self.end
            )));
        }
        Ok(())
    }
}

/// Adds the 24-byte `{offset[12], numbytes[12]}` entries of an old GNU sparse
/// area to `map`, up to the first whose offset starts with NUL (the rule GNU
/// tar, bsdtar and Go share).
fn add_old_gnu_segments(area: &[u8], map: &mut SparseMap) -> Result<(), String> {
    for entry in area.chunks_exact(24) {
        let (offset, len) = entry.split_at(12);
        if offset.first() == Some(&0) {
            break;
        }
        let offset = parse_numeric(offset)?;
        let len = parse_numeric(len)?;
        map.add(offset, len).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Parses pax extended header records into `pax`.
///
/// POSIX pax, "pax Extended Header": each record is `"%d %s=%s\n", <length>,
/// <keyword>, <value>`, where the length counts the whole record in decimal,
/// itself and the newline included. A value may contain any byte, `=` and
/// newlines included; only the length delimits it.
fn parse_pax(data: &[u8], pax: &mut Pax) -> io::Result<()> {
    let mut rest = data;
    while let Some(&first) = rest.first() {
        if first == 0 {
            // Tolerate NUL padding after the last record, nothing else.
            if rest.iter().all(|&b| b == 0) {
                break;
            }
            return Err(invalid("malformed PAX record"));
        }
        // 20 digits are enough for any length that fits in memory.
        let space = rest
            .iter()
            .take(21)
            .position(|&b| b == b' ')
            .ok_or_else(|| invalid("malformed PAX record: no length"))?;
        let len = parse_decimal(&rest[..space])
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| invalid("malformed PAX record length"))?;
        if len < space + 3 || len > rest.len() {
            return Err(invalid(format!("PAX record length {len} out of range")));
        }
        let (record, next) = rest.split_at(len);
        let Some((&b'\n', body)) = record[space + 1..].split_last() else {
            return Err(invalid("PAX record does not end with a newline"));
        };
        let eq = body
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| invalid("PAX record without '='"))?;
        let (key, value) = (&body[..eq], &body[eq + 1..]);
        if key.is_empty() {
            return Err(invalid("PAX record with an empty keyword"));
        }
        apply_pax_record(key, value, pax)?;
        rest = next;
    }
    Ok(())
}

/// Applies one pax record. POSIX: a record with an empty value deletes the
/// keyword, so the header field applies again.
fn apply_pax_record(key: &[u8], value: &[u8], pax: &mut Pax) -> io::Result<()> {
    let number = |what: &str| -> io::Result<Option<u64>> {
        if value.is_empty() {
            return Ok(None);
        }
        parse_decimal(value)
            .map(Some)
            .map_err(|e| invalid(format!("PAX record {what}: {e}")))
    };
    // Paths are C strings on every system that unpacks layers; a NUL inside
    // one can only make readers disagree (Go rejects it too).
    let name = |what: &str| -> io::Result<Option<Vec<u8>>> {
        if value.contains(&0) {
            return Err(invalid(format!("PAX record {what} contains a NUL byte")));
        }
        Ok((!value.is_empty()).then(|| value.to_vec()))
    };
    match key {
        b"path" => pax.path = name("path")?,
        b"linkpath" => pax.linkpath = name("linkpath")?,
        b"size" => pax.size = number("size")?,
        b"GNU.sparse.major" => pax.sparse_major = number("GNU.sparse.major")?,
        b"GNU.sparse.minor" => pax.sparse_minor = number("GNU.sparse.minor")?,
        b"GNU.sparse.name" => pax.sparse_name = name("GNU.sparse.name")?,
        b"GNU.sparse.size" => pax.sparse_size = number("GNU.sparse.size")?,
        b"GNU.sparse.realsize" => pax.sparse_realsize = number("GNU.sparse.realsize")?,
        b"GNU.sparse.numblocks" => pax.sparse_numblocks = number("GNU.sparse.numblocks")?,
        // Format 0.0 repeats these two keys once per segment, which POSIX does
        // not allow for other keywords; the pairs must alternate.
        b"GNU.sparse.offset" => {
            if pax.offset_0x0.is_some() {
                return Err(invalid("GNU.sparse.offset without GNU.sparse.numbytes"));
            }
            pax.offset_0x0 = Some(parse_decimal(value).map_err(invalid)?);
        }
        b"GNU.sparse.numbytes" => {
            let offset = pax
                .offset_0x0
                .take()
                .ok_or_else(|| invalid("GNU.sparse.numbytes without GNU.sparse.offset"))?;
            let len = parse_decimal(value).map_err(invalid)?;
            pax.map_0x0
                .get_or_insert_with(SparseMap::default)
                .add(offset, len)?;
        }
        // Format 0.1: "offset,size,offset,size,..." in one record.
        b"GNU.sparse.map" => {
            if value.is_empty() {
                pax.map_0x1 = None;
                return Ok(());
            }
            let mut map = SparseMap::default();
            let mut numbers = value.split(|&b| b == b',');
            while let Some(offset) = numbers.next() {
                let len = numbers
                    .next()
                    .ok_or_else(|| invalid("GNU.sparse.map has an odd number of values"))?;
                map.add(
                    parse_decimal(offset).map_err(invalid)?,
                    parse_decimal(len).map_err(invalid)?,
                )?;
            }
            pax.map_0x1 = Some(map);
        }
        _ => {}
    }
    Ok(())
}

/// Checks the header checksum: POSIX ustar, "chksum": the sum of all header
/// bytes as unsigned octets, the checksum field itself taken as eight spaces.
/// Some historic tars summed signed chars; GNU tar accepts either, so do we.
fn verify_checksum(block: &[u8; BLOCK], at: u64) -> io::Result<()> {
    let mut unsigned = 8 * u64::from(b' ');
    let mut signed = 8 * i64::from(b' ');
    for &b in block[..148].iter().chain(&block[156..]) {
        unsigned += u64::from(b);
        signed += i64::from(i8::from_ne_bytes([b]));
    }
    let ok = match parse_octal(&block[148..156]) {
        Ok(stored) => stored == unsigned || u64::try_from(signed) == Ok(stored),
        Err(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("header checksum mismatch at offset {at}")))
    }
}

/// The ustar path: `prefix` + `/` + `name` for POSIX ustar headers (magic
/// `"ustar\0"`), `name` alone otherwise (v7, and old GNU, which keeps other
/// fields where the prefix would be).
fn ustar_path(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = until_nul(&block[..100]);
    let prefix = if &block[257..263] == b"ustar\0" {
        // star's variant of ustar (trailer "tar\0") has a 131-byte prefix
        // followed by atime and ctime; Go reads it the same way.
        if &block[508..512] == b"tar\0" {
            until_nul(&block[345..476])
        } else {
            until_nul(&block[345..500])
        }
    } else {
        &[]
    };
    if prefix.is_empty() {
        return name.to_vec();
    }
    let mut path = Vec::with_capacity(prefix.len() + 1 + name.len());
    path.extend_from_slice(prefix);
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

/// Parses a numeric header field: octal ASCII, or GNU base-256 when the high
/// bit of the first byte is set (GNU tar manual, "Basic Tar Format": "the
/// field is a base-256 number in two's-complement big-endian order").
fn parse_numeric(field: &[u8]) -> Result<u64, String> {
    let Some((&first, rest)) = field.split_first() else {
        return Ok(0);
    };
    if first & 0x80 == 0 {
        return parse_octal(field);
    }
    // Bit 6 is the sign bit of the two's-complement value: no size, offset or
    // count is negative.
    if first & 0x40 != 0 {
        return Err("negative base-256 number".to_string());
    }
    rest.iter().try_fold(u64::from(first & 0x3f), |acc, &b| {
        acc.checked_mul(256)
            .and_then(|v| v.checked_add(u64::from(b)))
            .ok_or_else(|| "base-256 number out of range".to_string())
    })
}

/// Parses an octal field. POSIX fills numeric fields with leading zeros and
/// ends them with a space or NUL; older writers pad with spaces or NULs on
/// either side, so those are skipped, and an empty field is 0 (as in Go).
fn parse_octal(field: &[u8]) -> Result<u64, String> {
    let blank = |b: &u8| *b == b' ' || *b == 0;
    let start = field.iter().position(|b| !blank(b)).unwrap_or(field.len());
    let field = &field[start..];
    let end = field
        .iter()
        .position(|b| !(b'0'..=b'7').contains(b))
        .unwrap_or(field.len());
    let (digits, trailer) = field.split_at(end);
    if !trailer.iter().all(blank) {
        return Err(format!("invalid octal number '{}'", field.escape_ascii()));
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| "octal number out of range".to_string())
    })
}

/// Parses a non-empty string of decimal digits (pax values allow no sign, no
/// spaces).
fn parse_decimal(s: &[u8]) -> Result<u64, String> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(format!("invalid decimal number '{}'", s.escape_ascii()));
    }
    s.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| format!("number '{}' out of range", s.escape_ascii()))
    })
}

/// Consumes up to `max` bytes of `inner`, handing each slice of its buffer to
/// `sink`; returns how many, fewer than `max` only at EOF. The one loop that
/// reads input: every iteration consumes at least one byte or stops.
fn pull<R: BufRead>(
    inner: &mut R,
    pos: &mut u64,
    max: u64,
    mut sink: impl FnMut(&[u8]),
) -> io::Result<u64> {
    let mut done = 0u64;
    while done < max {
        let buf = match inner.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        let left = max - done;
        let n = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
        sink(&buf[..n]);
        inner.consume(n);
        done += n as u64;
        *pos = pos.saturating_add(n as u64);
    }
    Ok(done)
}

/// Bytes of zero padding after `size` bytes of data, up to the next block.
fn padding(size: u64) -> u64 {
    (BLOCK_U64 - size % BLOCK_U64) % BLOCK_U64
}

/// A NUL-terminated header field: up to its first NUL, or all of it.
fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn truncate_at_nul(v: &mut Vec<u8>) {
    if let Some(end) = v.iter().position(|&b| b == 0) {
        v.truncate(end);
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn eof(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, msg)
}

fn truncated_data(pos: u64) -> io::Error {
    eof(format!(
        "tar stream ends inside an entry's data at offset {pos}"
    ))
}

fn failed() -> io::Error {
    io::Error::other("tar stream unusable after an earlier error")
}

/// Adds the header's offset to a parse error, keeping its kind.
fn annotate(e: io::Error, at: u64) -> io::Error {
    io::Error::new(e.kind(), format!("header at offset {at}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Read};

    // ---- helpers: reading ----

    /// One entry as read: its header and its data.
    type Read1 = (Header, Vec<u8>);

    fn read_all_with(bytes: &[u8], cap: usize, limits: Limits) -> io::Result<Vec<Read1>> {
        let mut ts = TarStream::new(BufReader::with_capacity(cap, bytes), limits);
        let mut out = Vec::new();
        while let Some(h) = ts.next_header()? {
            let mut data = Vec::new();
            let n = ts.read_data(|s| data.extend_from_slice(s))?;
            assert_eq!(n, data.len() as u64);
            assert_eq!(n, h.size, "read_data feeds exactly `size` bytes");
            out.push((h, data));
        }
        Ok(out)
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<Read1>> {
        read_all_with(bytes, 64 * 1024, Limits::default())
    }

    /// Reads with buffers of several sizes, so slices straddle block
    /// boundaries, and checks that every size gives the same answer.
    fn read_all_caps(bytes: &[u8]) -> Vec<Read1> {
        let want = read_all(bytes).unwrap();
        for cap in [1, 7, 511, 512, 513, 4096] {
            let got = read_all_with(bytes, cap, Limits::default()).unwrap();
            assert_eq!(got, want, "buffer capacity {cap}");
        }
        want
    }

    fn err_of(bytes: &[u8]) -> io::Error {
        read_all(bytes).expect_err("expected an error")
    }

    // ---- helpers: writing by hand ----

    /// An octal size field: 11 digits and a NUL, or 12 digits without one
    /// (which GNU tar reads too).
    fn octal(v: u64) -> [u8; 12] {
        let mut f = [0u8; 12];
        let digits = format!("{v:011o}");
        f[..digits.len()].copy_from_slice(digits.as_bytes());
        f
    }

    fn base256(v: u128) -> [u8; 12] {
        let mut f = [0u8; 12];
        f[1..].copy_from_slice(&v.to_be_bytes()[5..]);
        f[0] = 0x80;
        f
    }

    fn set_checksum(b: &mut [u8]) {
        b[148..156].fill(b' ');
        let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
        b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    }

    /// A POSIX ustar header with a raw size field.
    fn header_raw(name: &[u8], typeflag: u8, size: [u8; 12]) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK];
        b[..name.len()].copy_from_slice(name);
        b[100..108].copy_from_slice(b"0000644\0");
        b[108..116].copy_from_slice(b"0000000\0");
        b[116..124].copy_from_slice(b"0000000\0");
        b[124..136].copy_from_slice(&size);
        b[136..148].copy_from_slice(&octal(0));
        b[156] = typeflag;
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        set_checksum(&mut b);
        b
    }

    fn header(name: &[u8], typeflag: u8, size: u64) -> Vec<u8> {
        header_raw(name, typeflag, octal(size))
    }

    fn pad_to_block(v: &mut Vec<u8>) {
        v.resize(v.len().div_ceil(BLOCK) * BLOCK, 0);
    }

    /// A header of type `typeflag` followed by `data`, padded.
    fn entry(name: &[u8], typeflag: u8, data: &[u8]) -> Vec<u8> {
        let mut v = header(name, typeflag, data.len() as u64);
        v.extend_from_slice(data);
        pad_to_block(&mut v);
        v
    }

    fn file(name: &str, data: &[u8]) -> Vec<u8> {
        entry(name.as_bytes(), b'0', data)
    }

    /// One pax record, with its self-counting length.
    fn rec(key: &str, value: &[u8]) -> Vec<u8> {
        let body = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while body + len.to_string().len() != len {
            len += 1;
        }
        let mut r = format!("{len} {key}=").into_bytes();
        r.extend_from_slice(value);
        r.push(b'\n');
        assert_eq!(r.len(), len);
        r
    }

    fn pax(records: &[Vec<u8>]) -> Vec<u8> {
        entry(b"PaxHeaders/x", b'x', &records.concat())
    }

    fn end() -> Vec<u8> {
        vec![0u8; 2 * BLOCK]
    }

    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    /// Expands a fixture stored as runs of non-zero bytes.
    fn fixture(runs: &[(usize, &str)]) -> Vec<u8> {
        let mut v = vec![0u8; 10240];
        for &(at, hex) in runs {
            for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
                let s = std::str::from_utf8(pair).unwrap();
                v[at + i] = u8::from_str_radix(s, 16).unwrap();
            }
        }
        v
    }

    // ---- helpers: the tar crate ----

    fn builder_archive(add: impl FnOnce(&mut ::tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = ::tar::Builder::new(Vec::new());
        add(&mut b);
        b.into_inner().unwrap()
    }

    fn add_file(b: &mut ::tar::Builder<Vec<u8>>, mut h: ::tar::Header, path: &str, data: &[u8]) {
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(::tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn add_special(b: &mut ::tar::Builder<Vec<u8>>, kind: ::tar::EntryType, path: &str) {
        let mut h = ::tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o755);
        h.set_entry_type(kind);
        b.append_data(&mut h, path, io::empty()).unwrap();
    }

    fn add_link(b: &mut ::tar::Builder<Vec<u8>>, kind: ::tar::EntryType, path: &str, target: &str) {
        let mut h = ::tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(kind);
        b.append_link(&mut h, path, target).unwrap();
    }

    fn long(prefix: &str, n: usize) -> String {
        let mut s = prefix.to_string();
        while s.len() < n {
            s.push_str("/abcdefghij");
        }
        s
    }

    /// Every kind of entry the tar crate can write, with long names and links
    /// and data lengths around the block size.
    fn mixed_archive() -> Vec<u8> {
        use ::tar::EntryType as T;
        builder_archive(|b| {
            add_special(b, T::Directory, "usr/");
            add_special(b, T::Directory, &long("usr/lib", 150));
            for (i, len) in [0usize, 1, 511, 512, 513, 1024, 70_000]
                .into_iter()
                .enumerate()
            {
                let data: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
                add_file(b, ::tar::Header::new_gnu(), &format!("usr/f{len}"), &data);
            }
            add_file(
                b,
                ::tar::Header::new_gnu(),
                &long("usr/share", 300),
                b"long name",
            );
            add_file(
                b,
                ::tar::Header::new_ustar(),
                &long("opt/prefix", 140),
                b"ustar prefix",
            );
            add_link(b, T::Symlink, "usr/s", "f1");
            add_link(b, T::Symlink, &long("usr/ls", 120), &long("../target", 200));
            add_link(b, T::Link, "usr/h", "usr/f512");
            add_link(b, T::Link, "usr/h2", &long("usr/share", 300));
            add_special(b, T::Char, "dev/null");
            add_special(b, T::Block, "dev/sda");
            add_special(b, T::Fifo, "run/fifo");
            add_file(b, ::tar::Header::new_old(), "v7file", b"v7");
            add_file(b, ::tar::Header::new_gnu(), "last", b"!");
        })
    }

    // Sparse archives written by GNU tar 1.34, stored as (offset, hex) runs of
    // their non-zero bytes (see `fixture`). The file `g` is 1000003 bytes of
    // holes with "segK" written at K*100000+700 (K = 0..7) and "END" at
    // 1000000; then, with O="--mtime=@0 --owner=0 --group=0 --numeric-owner
    // --hole-detection=raw --sparse":
    //   tar $O --format=gnu -cf gnu.tar g
    //   tar $O --format=pax --pax-option=delete=atime,delete=ctime \
    //       --sparse-version=V -cf paxV.tar g      (V = 0.0, 0.1, 1.0)

    /// `gnu.tar` (10240 bytes), from GNU tar 1.34.
    const GNU_OLD: &[(usize, &str)] = &[
        (0x0, "67"),
        (
            0x64,
            "303030303634340030303030303030003030303030303000303030303030313031303300303030303030303030303000303137343136002053",
        ),
        (0x101, "75737461722020"),
        (
            0x182,
            "303030303030303130303000303030303030303130303000303030303033303430303000303030303030303130303000303030303036303730303000303030303030303130303000303030303131313330303000303030303030303130303000013030303033363431313033",
        ),
        (
            0x200,
            "3030303031343136303030003030303030303031303030003030303031373231303030003030303030303031303030003030303032323235303030003030303030303031303030003030303032353330303030003030303030303031303030003030303033363431303030003030303030303030313033",
        ),
        (0x4bc, "73656730"),
        (0x75c, "73656731"),
        (0x9fc, "73656732"),
        (0xa9c, "73656733"),
        (0xd3c, "73656734"),
        (0xfdc, "73656735"),
        (0x107c, "73656736"),
        (0x131c, "73656737"),
        (0x1440, "454e44"),
    ];

    /// `pax0.0.tar` (10240 bytes), from GNU tar 1.34.
    const PAX_0_0: &[(usize, &str)] = &[
        (0x0, "2e2f506178486561646572732f67"),
        (
            0x64,
            "303030303634340030303030303030003030303030303000303030303030303130343000303030303030303030303000303130343032002078",
        ),
        (0x101, "7573746172003030"),
        (
            0x200,
            "323720474e552e7370617273652e73697a653d313030303030330a323620474e552e7370617273652e6e756d626c6f636b733d390a323520474e552e7370617273652e6f66667365743d3531320a323720474e552e7370617273652e6e756d62797465733d3531320a323820474e552e7370617273652e6f66667365743d3130303335320a323720474e552e7370617273652e6e756d62797465733d3531320a323820474e552e7370617273652e6f66667365743d3230303139320a323720474e552e7370617273652e6e756d62797465733d3531320a323820474e552e7370617273652e6f66667365743d3330303534340a323720474e552e7370617273652e6e756d62797465733d3531320a323820474e552e7370617273652e6f66667365743d3430303338340a323720474e552e7370617273652e6e756d62797465733d3531320a323820474e552e7370617273652e6f66667365743d3530303232340a323720474e552e7370617273652e6e756d62797465733d3531320a323820474e552e7370617273652e6f66667365743d3630303537360a323720474e552e7370617273652e6e756d62797465733d3531320a323820474e552e7370617273652e6f66667365743d3730303431360a323720474e552e7370617273652e6e756d62797465733d3531320a323820474e552e7370617273652e6f66667365743d3939393933360a323620474e552e7370617273652e6e756d62797465733d36370a",
        ),
        (0x600, "67"),
        (
            0x664,
            "303030303634340030303030303030003030303030303000303030303030313031303300303030303030303030303000303037333531002030",
        ),
        (0x701, "7573746172003030"),
        (0x749, "303030303030300030303030303030"),
        (0x8bc, "73656730"),
        (0xb5c, "73656731"),
        (0xdfc, "73656732"),
        (0xe9c, "73656733"),
        (0x113c, "73656734"),
        (0x13dc, "73656735"),
        (0x147c, "73656736"),
        (0x171c, "73656737"),
        (0x1840, "454e44"),
    ];

    /// `pax0.1.tar` (10240 bytes), from GNU tar 1.34.
    const PAX_0_1: &[(usize, &str)] = &[
        (0x0, "2e2f506178486561646572732f67"),
        (
            0x64,
            "303030303634340030303030303030003030303030303000303030303030303032373400303030303030303030303000303130343132002078",
        ),
        (0x101, "7573746172003030"),
        (
            0x200,
            "323720474e552e7370617273652e73697a653d313030303030330a323620474e552e7370617273652e6e756d626c6f636b733d390a323120474e552e7370617273652e6e616d653d670a31313420474e552e7370617273652e6d61703d3531322c3531322c3130303335322c3531322c3230303139322c3531322c3330303534342c3531322c3430303338342c3531322c3530303232342c3531322c3630303537362c3531322c3730303431362c3531322c3939393933362c36370a",
        ),
        (0x400, "2e2f474e5553706172736546696c652e323634332f67"),
        (
            0x464,
            "303030303634340030303030303030003030303030303000303030303030313031303300303030303030303030303000303132353132002030",
        ),
        (0x501, "7573746172003030"),
        (0x549, "303030303030300030303030303030"),
        (0x6bc, "73656730"),
        (0x95c, "73656731"),
        (0xbfc, "73656732"),
        (0xc9c, "73656733"),
        (0xf3c, "73656734"),
        (0x11dc, "73656735"),
        (0x127c, "73656736"),
        (0x151c, "73656737"),
        (0x1640, "454e44"),
    ];

    /// `pax1.0.tar` (10240 bytes), from GNU tar 1.34.
    const PAX_1_0: &[(usize, &str)] = &[
        (0x0, "2e2f506178486561646572732f67"),
        (
            0x64,
            "303030303634340030303030303030003030303030303000303030303030303031343000303030303030303030303000303130343032002078",
        ),
        (0x101, "7573746172003030"),
        (
            0x200,
            "323220474e552e7370617273652e6d616a6f723d310a323220474e552e7370617273652e6d696e6f723d300a323120474e552e7370617273652e6e616d653d670a333120474e552e7370617273652e7265616c73697a653d313030303030330a",
        ),
        (0x400, "2e2f474e5553706172736546696c652e323634342f67"),
        (
            0x464,
            "303030303634340030303030303030003030303030303000303030303030313131303300303030303030303030303000303132353134002030",
        ),
        (0x501, "7573746172003030"),
        (0x549, "303030303030300030303030303030"),
        (
            0x600,
            "390a3531320a3531320a3130303335320a3531320a3230303139320a3531320a3330303534340a3531320a3430303338340a3531320a3530303232340a3531320a3630303537360a3531320a3730303431360a3531320a3939393933360a36370a",
        ),
        (0x8bc, "73656730"),
        (0xb5c, "73656731"),
        (0xdfc, "73656732"),
        (0xe9c, "73656733"),
        (0x113c, "73656734"),
        (0x13dc, "73656735"),
        (0x147c, "73656736"),
        (0x171c, "73656737"),
        (0x1840, "454e44"),
    ];

    // ---- well-formed archives ----

    fn kind_of(t: ::tar::EntryType) -> Kind {
        use ::tar::EntryType as T;
        match t {
            T::Regular | T::Continuous | T::GNUSparse => Kind::File,
            T::Directory => Kind::Dir,
            T::Symlink => Kind::Symlink,
            T::Link => Kind::HardLink,
            T::Char => Kind::Char,
            T::Block => Kind::Block,
            T::Fifo => Kind::Fifo,
            other => Kind::Other(other.as_byte()),
        }
    }

    /// (path, link, kind, size, data) as the tar crate's own reader sees them.
    /// (path, link, kind, size, data) of one entry.
    type Seen = (Vec<u8>, Vec<u8>, Kind, u64, Vec<u8>);

    fn with_tar_crate(bytes: &[u8]) -> Vec<Seen> {
        let mut ar = ::tar::Archive::new(bytes);
        let mut out = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path_bytes().into_owned();
            let link = e
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default();
            let kind = kind_of(e.header().entry_type());
            let size = e.size();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((path, link, kind, size, data));
        }
        out
    }

    #[test]
    fn matches_the_tar_crate() {
        use ::tar::EntryType as T;
        let archives = [
            mixed_archive(),
            builder_archive(|_| {}),
            builder_archive(|b| add_file(b, ::tar::Header::new_gnu(), "a", b"")),
            builder_archive(|b| {
                for n in 0..40 {
                    add_file(
                        b,
                        ::tar::Header::new_ustar(),
                        &long(&format!("d{n}"), 100 + n),
                        &[n as u8; 3],
                    );
                }
            }),
            builder_archive(|b| {
                add_link(b, T::Link, &long("x", 99), &long("y", 100));
                add_link(b, T::Symlink, &long("x", 100), &long("y", 99));
                add_special(b, T::Directory, &long("z", 101));
            }),
        ];
        for (i, bytes) in archives.iter().enumerate() {
            let ours: Vec<_> = read_all_caps(bytes)
                .into_iter()
                .map(|(h, d)| (h.path, h.link, h.kind, h.size, d))
                .collect();
            assert_eq!(ours, with_tar_crate(bytes), "archive {i}");
        }
    }

    #[test]
    fn reads_every_entry_kind() {
        let got = read_all_caps(&mixed_archive());
        let summary: Vec<(String, Kind, u64)> = got
            .iter()
            .map(|(h, _)| {
                (
                    String::from_utf8_lossy(&h.path).into_owned(),
                    h.kind,
                    h.size,
                )
            })
            .collect();
        let expect_start = [
            ("usr/".to_string(), Kind::Dir, 0),
            (long("usr/lib", 150), Kind::Dir, 0),
            ("usr/f0".to_string(), Kind::File, 0),
            ("usr/f1".to_string(), Kind::File, 1),
            ("usr/f511".to_string(), Kind::File, 511),
            ("usr/f512".to_string(), Kind::File, 512),
            ("usr/f513".to_string(), Kind::File, 513),
        ];
        assert_eq!(summary[..expect_start.len()], expect_start);
        let by_path = |p: &str| {
            got.iter()
                .find(|(h, _)| h.path == p.as_bytes())
                .unwrap_or_else(|| panic!("no entry {p}"))
        };
        let (h, d) = by_path(&long("usr/share", 300));
        assert_eq!((h.kind, d.as_slice()), (Kind::File, &b"long name"[..]));
        let (h, d) = by_path(&long("opt/prefix", 140));
        assert_eq!((h.kind, d.as_slice()), (Kind::File, &b"ustar prefix"[..]));
        let (h, _) = by_path("usr/s");
        assert_eq!((h.kind, h.link.as_slice()), (Kind::Symlink, &b"f1"[..]));
        let (h, _) = by_path(&long("usr/ls", 120));
        assert_eq!(
            (h.kind, h.link.clone()),
            (Kind::Symlink, long("../target", 200).into_bytes())
        );
        let (h, _) = by_path("usr/h2");
        assert_eq!(
            (h.kind, h.link.clone()),
            (Kind::HardLink, long("usr/share", 300).into_bytes())
        );
        for (p, k) in [
            ("dev/null", Kind::Char),
            ("dev/sda", Kind::Block),
            ("run/fifo", Kind::Fifo),
        ] {
            assert_eq!(by_path(p).0.kind, k);
        }
        let (h, d) = by_path("usr/f70000");
        assert_eq!(
            (h.size, h.apparent_size, h.sparse, d.len()),
            (70_000, 70_000, false, 70_000)
        );
        assert_eq!(by_path("v7file").1, b"v7");
        assert_eq!(got.last().unwrap().1, b"!");
    }

    #[test]
    fn hand_built_headers() {
        let prefixed = {
            let mut h = header(b"name", b'0', 2);
            h[345..351].copy_from_slice(b"a/pre\0");
            set_checksum(&mut h);
            h
        };
        let gnu_magic_prefix = {
            // Old GNU headers keep atime where ustar has the prefix: not a path.
            let mut h = header(b"name", b'0', 0);
            h[257..265].copy_from_slice(b"ustar  \0");
            h[345..350].copy_from_slice(b"01234");
            set_checksum(&mut h);
            h
        };
        let star = {
            let mut h = header(b"n", b'0', 0);
            h[345..476].fill(b'p');
            h[476..488].copy_from_slice(&octal(5));
            h[508..512].copy_from_slice(b"tar\0");
            set_checksum(&mut h);
            h
        };
        let full_name = {
            // 100 bytes of name and no NUL: the field ends the name.
            header(&[b'n'; 100], b'0', 0)
        };
        let spaces_in_size = header_raw(b"s", b'0', *b"  3 \0\0\0\0\0\0\0\0");
        let base256_size = header_raw(b"b", b'0', base256(3));
        // (what, archive, path, kind, size)
        type Case = (&'static str, Vec<u8>, Vec<u8>, Kind, u64);
        let cases: Vec<Case> = vec![
            (
                "prefix",
                cat(&[prefixed, vec![7; BLOCK]]),
                b"a/pre/name".to_vec(),
                Kind::File,
                2,
            ),
            (
                "gnu magic",
                gnu_magic_prefix,
                b"name".to_vec(),
                Kind::File,
                0,
            ),
            (
                "star prefix",
                star,
                [vec![b'p'; 131], b"/n".to_vec()].concat(),
                Kind::File,
                0,
            ),
            ("full name field", full_name, vec![b'n'; 100], Kind::File, 0),
            (
                "v7 dir",
                header(b"old/", 0, 0),
                b"old/".to_vec(),
                Kind::Dir,
                0,
            ),
            (
                "v7 file",
                header(b"old", 0, 0),
                b"old".to_vec(),
                Kind::File,
                0,
            ),
            (
                "contiguous",
                entry(b"c", b'7', b"xyz"),
                b"c".to_vec(),
                Kind::File,
                3,
            ),
            (
                "spaces",
                cat(&[spaces_in_size, vec![1; BLOCK]]),
                b"s".to_vec(),
                Kind::File,
                3,
            ),
            (
                "base-256",
                cat(&[base256_size, vec![1; BLOCK]]),
                b"b".to_vec(),
                Kind::File,
                3,
            ),
            (
                "other",
                entry(b"o", b'D', b"dumpdir"),
                b"o".to_vec(),
                Kind::Other(b'D'),
                7,
            ),
            (
                "reserved digit",
                entry(b"r", b'8', b"r"),
                b"r".to_vec(),
                Kind::Other(b'8'),
                1,
            ),
            (
                "global pax skipped",
                cat(&[entry(b"g", b'g', &rec("comment", b"hi")), file("f", b"")]),
                b"f".to_vec(),
                Kind::File,
                0,
            ),
        ];
        for (what, mut bytes, path, kind, size) in cases {
            bytes.extend(end());
            let got = read_all_caps(&bytes);
            assert_eq!(got.len(), 1, "{what}");
            let h = &got[0].0;
            assert_eq!((&h.path, h.kind, h.size), (&path, kind, size), "{what}");
        }
    }

    #[test]
    fn links_and_devices_carry_no_data() {
        // POSIX and Go: no data follows these types whatever `size` says, so the
        // next header follows directly.
        for t in [b'1', b'2', b'3', b'4', b'5', b'6'] {
            let bytes = cat(&[header(b"l", t, 100), file("next", b"n"), end()]);
            let got = read_all_caps(&bytes);
            assert_eq!(got.len(), 2, "type {}", t as char);
            assert_eq!((got[0].0.size, got[0].0.apparent_size), (0, 0));
            assert_eq!(got[1].0.path, b"next");
        }
    }

    #[test]
    fn pax_and_gnu_extensions() {
        // (what, archive, path, link, size)
        type Case<'a> = (&'a str, Vec<u8>, &'a [u8], &'a [u8], u64);
        let long_path = long("pax", 250).into_bytes();
        let cases: Vec<Case> = vec![
            (
                "path",
                cat(&[pax(&[rec("path", &long_path)]), file("short", b"ab")]),
                &long_path,
                b"",
                2,
            ),
            (
                "linkpath",
                cat(&[
                    pax(&[rec("linkpath", b"the/target")]),
                    header(b"s", b'2', 0),
                ]),
                b"s",
                b"the/target",
                0,
            ),
            (
                "size",
                cat(&[
                    pax(&[rec("size", b"5")]),
                    header(b"f", b'0', 0),
                    vec![b'z'; BLOCK],
                ]),
                b"f",
                b"",
                5,
            ),
            (
                "size with base-256 field",
                cat(&[
                    pax(&[rec("size", b"1")]),
                    header_raw(b"f", b'0', base256(1 << 40)),
                    vec![1; BLOCK],
                ]),
                b"f",
                b"",
                1,
            ),
            (
                "pax beats gnu L",
                cat(&[
                    entry(b"././@LongLink", b'L', b"from-L\0"),
                    pax(&[rec("path", b"from-pax")]),
                    file("hdr", b""),
                ]),
                b"from-pax",
                b"",
                0,
            ),
            (
                "gnu L and K",
                cat(&[
                    entry(b"././@LongLink", b'L', b"name-L\0"),
                    entry(b"././@LongLink", b'K', b"link-K\0"),
                    header(b"n", b'1', 0),
                ]),
                b"name-L",
                b"link-K",
                0,
            ),
            (
                "last L wins",
                cat(&[
                    entry(b"././@LongLink", b'L', b"first\0"),
                    entry(b"././@LongLink", b'L', b"second\0junk"),
                    file("hdr", b""),
                ]),
                b"second",
                b"",
                0,
            ),
            (
                "two pax headers merge",
                cat(&[
                    pax(&[rec("path", b"p1"), rec("linkpath", b"l1")]),
                    pax(&[rec("path", b"p2")]),
                    header(b"n", b'2', 0),
                ]),
                b"p2",
                b"l1",
                0,
            ),
            (
                "empty value deletes",
                cat(&[
                    pax(&[rec("path", b"gone"), rec("path", b"")]),
                    file("header-name", b""),
                ]),
                b"header-name",
                b"",
                0,
            ),
            (
                "values may hold = and newlines",
                cat(&[
                    pax(&[rec("comment", b"a=b\nc"), rec("path", b"x=y\nz")]),
                    file("n", b""),
                ]),
                b"x=y\nz",
                b"",
                0,
            ),
            (
                "unknown keys and trailing NULs",
                cat(&[
                    entry(
                        b"PaxHeaders/x",
                        b'x',
                        &[rec("SCHILY.xattr.user.a", b"\0\x01"), vec![0; 10]].concat(),
                    ),
                    file("n", b""),
                ]),
                b"n",
                b"",
                0,
            ),
            (
                "solaris X",
                cat(&[entry(b"X", b'X', &rec("path", b"sol")), file("n", b"")]),
                b"sol",
                b"",
                0,
            ),
            (
                "global header between",
                cat(&[
                    pax(&[rec("path", b"local")]),
                    entry(b"g", b'g', &rec("path", b"global")),
                    file("n", b""),
                ]),
                b"local",
                b"",
                0,
            ),
        ];
        for (what, mut bytes, path, link, size) in cases {
            bytes.extend(end());
            let got = read_all_caps(&bytes);
            assert_eq!(got.len(), 1, "{what}");
            let h = &got[0].0;
            assert_eq!(
                (h.path.as_slice(), h.link.as_slice(), h.size),
                (path, link, size),
                "{what}"
            );
        }
    }

    #[test]
    fn unconsumed_data_is_skipped() {
        let bytes = mixed_archive();
        let all = read_all(&bytes).unwrap();
        for cap in [1, 100, 512, 8192] {
            let mut ts =
                TarStream::new(BufReader::with_capacity(cap, &bytes[..]), Limits::default());
            let mut i = 0;
            while let Some(h) = ts.next_header().unwrap() {
                assert_eq!(h, all[i].0);
                // Read every third entry's data; skip the others.
                if i % 3 == 0 {
                    let mut d = Vec::new();
                    ts.read_data(|s| d.extend_from_slice(s)).unwrap();
                    assert_eq!(d, all[i].1);
                    assert_eq!(ts.read_data(|_| panic!("fed twice")).unwrap(), 0);
                }
                i += 1;
            }
            assert_eq!(i, all.len());
            assert_eq!(ts.next_header().unwrap(), None, "stays at the end");
        }
    }

    /// Skips `n` bytes of a byte slice the way a seeking reader does: at most
    /// to its end.
    fn skip_slice(r: &mut &[u8], n: u64) -> io::Result<u64> {
        let k = usize::try_from(n).map_or(r.len(), |n| n.min(r.len()));
        *r = &r[k..];
        Ok(k as u64)
    }

    #[test]
    fn skip_data_seeks_over_data_and_padding() {
        let mut cases = vec![("mixed", mixed_archive())];
        for (what, runs) in [("old GNU sparse", GNU_OLD), ("pax 1.0 sparse", PAX_1_0)] {
            cases.push((what, fixture(runs)));
        }
        for (what, bytes) in cases {
            let all = read_all(&bytes).unwrap();
            let mut ts = TarStream::new(&bytes[..], Limits::default());
            let mut i = 0;
            while let Some(h) = ts.next_header().unwrap() {
                assert_eq!(h, all[i].0, "{what}");
                // The stored data lies at position(), `size` bytes long.
                let at = ts.position() as usize;
                assert_eq!(bytes[at..at + h.size as usize], all[i].1[..], "{what}");
                if i % 2 == 0 {
                    ts.skip_data(skip_slice).unwrap();
                } else {
                    ts.read_data(|_| {}).unwrap();
                }
                assert_eq!(ts.position() % BLOCK_U64, 0, "{what}: padding skipped too");
                // Nothing is left to skip or read.
                ts.skip_data(|_, n| {
                    assert_eq!(n, 0);
                    Ok(0)
                })
                .unwrap();
                i += 1;
            }
            assert_eq!(i, all.len(), "{what}");
        }
    }

    #[test]
    fn read_data_into_reads_what_read_data_feeds() {
        let mut cases = vec![("mixed", mixed_archive())];
        for (what, runs) in [("old GNU sparse", GNU_OLD), ("pax 1.0 sparse", PAX_1_0)] {
            cases.push((what, fixture(runs)));
        }
        for (what, bytes) in cases {
            let all = read_all(&bytes).unwrap();
            // Odd piece sizes, and a BufReader smaller than some of them
            // (which then reads past its buffer).
            for (piece, buffer) in [(1, 512), (7, 100), (4096, 1000), (1 << 20, 64 << 10)] {
                let reader = io::BufReader::with_capacity(buffer, &bytes[..]);
                let mut ts = TarStream::new(reader, Limits::default());
                let mut i = 0;
                let mut dst = vec![0u8; piece];
                while let Some(h) = ts.next_header().unwrap() {
                    assert_eq!(h, all[i].0, "{what}");
                    // Half the entries read in part, the rest left to next_header.
                    let mut got = Vec::new();
                    loop {
                        let n = ts.read_data_into(&mut dst).unwrap();
                        if n == 0 {
                            assert_eq!(ts.position() % BLOCK_U64, 0, "{what}: padding read too");
                            break;
                        }
                        got.extend_from_slice(&dst[..n]);
                        if i % 2 == 1 && got.len() >= piece {
                            break;
                        }
                    }
                    let want = &all[i].1;
                    assert_eq!(got[..], want[..got.len()], "{what}, pieces of {piece}");
                    if i % 2 == 0 {
                        assert_eq!(got.len(), want.len(), "{what}: all of it");
                        assert_eq!(ts.read_data(|_| panic!("fed twice")).unwrap(), 0);
                        assert_eq!(ts.read_data_into(&mut dst).unwrap(), 0);
                    }
                    i += 1;
                }
                assert_eq!(i, all.len(), "{what}");
            }
        }
        // Truncated inside the data: an error, and sticky.
        let bytes = cat(&[file("a", &[1; 3000]), end()]);
        let mut ts = TarStream::new(&bytes[..2048], Limits::default());
        ts.next_header().unwrap().unwrap();
        let mut dst = vec![0u8; 8192];
        let mut total = 0;
        let e = loop {
            match ts.read_data_into(&mut dst) {
                Ok(n) => total += n,
                Err(e) => break e,
            }
        };
        assert_eq!((e.kind(), total), (io::ErrorKind::UnexpectedEof, 1536));
        assert!(
            ts.read_data_into(&mut dst).is_err(),
            "unusable after the error"
        );
        assert!(ts.next_header().is_err());
    }

    #[test]
    fn skip_data_past_the_end_is_truncation_and_sticky() {
        let bytes = cat(&[file("a", &[1; 3000]), end()]);
        // Cut inside the data of "a".
        let cut = &bytes[..2048];
        let mut ts = TarStream::new(cut, Limits::default());
        ts.next_header().unwrap().unwrap();
        let e = ts.skip_data(skip_slice).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(ts.next_header().is_err(), "unusable after the error");
        // A failing seek is an error too, and sticky.
        let mut ts = TarStream::new(&bytes[..], Limits::default());
        ts.next_header().unwrap().unwrap();
        let e = ts
            .skip_data(|_, _| Err(io::Error::other("seek failed")))
            .unwrap_err();
        assert!(e.to_string().contains("seek failed"));
        assert!(ts.read_data(|_| {}).is_err());
        // The data and its padding are skipped in one go.
        let mut ts = TarStream::new(&bytes[..], Limits::default());
        ts.next_header().unwrap().unwrap();
        let mut asked = 0;
        ts.skip_data(|r, n| {
            asked = n;
            skip_slice(r, n)
        })
        .unwrap();
        assert_eq!(asked, 3072, "3000 bytes of data and 72 of padding");
        assert_eq!(ts.next_header().unwrap(), None);
    }

    #[test]
    fn end_of_archive() {
        let body = cat(&[file("a", b"1"), file("b", &[2; 600])]);
        // Without end blocks (umoci 0.4.7): a clean EOF on a header boundary.
        let mut ts = TarStream::new(&body[..], Limits::default());
        let mut n = 0;
        while ts.next_header().unwrap().is_some() {
            n += 1;
        }
        assert_eq!((n, ts.position()), (2, body.len() as u64));
        // With end blocks and trailing padding, which stay for the caller.
        let mut full = cat(&[body.clone(), end()]);
        full.extend([0u8; 8192]);
        let mut ts = TarStream::new(&full[..], Limits::default());
        while ts.next_header().unwrap().is_some() {}
        assert_eq!(ts.position(), body.len() as u64 + 512);
        let rest = ts.into_inner();
        assert_eq!(rest.len(), 512 + 8192);
        // Nothing at all is an empty archive.
        assert!(read_all(&[]).unwrap().is_empty());
    }

    #[test]
    fn zero_copy() {
        let bytes = cat(&[file("a", &[9; 3000]), end()]);
        let range = bytes.as_ptr_range();
        let mut ts = TarStream::new(&bytes[..], Limits::default());
        ts.next_header().unwrap().unwrap();
        let mut calls = 0;
        let n = ts
            .read_data(|s| {
                calls += 1;
                assert!(
                    range.contains(&s.as_ptr()),
                    "slice is not the reader's buffer"
                );
                assert_eq!(s.as_ptr(), bytes[512..].as_ptr());
            })
            .unwrap();
        assert_eq!((n, calls, ts.position()), (3000, 1, 512 + 3072));
    }

    // ---- truncated and malformed archives ----

    #[test]
    fn truncation_and_bad_structure() {
        use io::ErrorKind::{InvalidData, UnexpectedEof};
        let good = cat(&[file("a", &[1; 700]), file("b", b"x")]);
        let cases: Vec<(&str, Vec<u8>, io::ErrorKind, &str)> = vec![
            (
                "in header",
                good[..1536 + 100].to_vec(),
                UnexpectedEof,
                "inside a header",
            ),
            (
                "in data",
                good[..512 + 300].to_vec(),
                UnexpectedEof,
                "inside an entry's data",
            ),
            (
                "in padding",
                good[..512 + 800].to_vec(),
                UnexpectedEof,
                "inside an entry's data",
            ),
            (
                "last padding",
                good[..good.len() - 1].to_vec(),
                UnexpectedEof,
                "inside an entry's data",
            ),
            (
                "after pax",
                pax(&[rec("path", b"p")]),
                UnexpectedEof,
                "after an extension header",
            ),
            (
                "after L",
                entry(b"L", b'L', b"n\0"),
                UnexpectedEof,
                "after an extension header",
            ),
            (
                "pax then end",
                cat(&[pax(&[rec("path", b"p")]), end()]),
                InvalidData,
                "end-of-archive marker after an extension header",
            ),
            (
                "pax data truncated",
                pax(&[rec("path", b"p")])[..600].to_vec(),
                UnexpectedEof,
                "inside",
            ),
        ];
        for (what, bytes, kind, msg) in cases {
            for cap in [1, 512, 65536] {
                let e = read_all_with(&bytes, cap, Limits::default()).expect_err(what);
                assert_eq!(e.kind(), kind, "{what}: {e}");
                assert!(e.to_string().contains(msg), "{what}: {e}");
            }
        }
    }

    #[test]
    fn bad_checksum() {
        let mut bytes = cat(&[file("a", b"1"), file("b", b"2"), end()]);
        bytes[1024 + 5] ^= 1;
        let e = err_of(&bytes);
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "header checksum mismatch at offset 1024");
        // A checksum field that is not a number is a mismatch too.
        let mut h = header(b"a", b'0', 0);
        h[148..156].copy_from_slice(b"zzzzzz\0 ");
        assert!(
            err_of(&h)
                .to_string()
                .contains("checksum mismatch at offset 0")
        );
        // Historic writers summed signed chars: GNU tar accepts that.
        let mut h = header(b"caf\xc3\xa9", b'0', 0);
        h[148..156].fill(b' ');
        let signed: i64 = h.iter().map(|&b| i64::from(i8::from_ne_bytes([b]))).sum();
        h[148..155].copy_from_slice(format!("{signed:06o}\0").as_bytes());
        assert_eq!(read_all(&h).unwrap()[0].0.path, "café".as_bytes());
    }

    #[test]
    fn errors_are_sticky() {
        let mut bytes = cat(&[file("a", b"1"), file("b", b"2"), end()]);
        bytes[512 + 512 + 10] ^= 0xff;
        let mut ts = TarStream::new(&bytes[..], Limits::default());
        assert!(ts.next_header().unwrap().is_some());
        assert!(ts.next_header().is_err());
        assert!(ts.next_header().is_err());
        assert!(ts.read_data(|_| {}).is_err());
    }

    /// A reader of `n` bytes of `b` that never materialises them.
    fn endless(n: u64) -> io::Take<io::Repeat> {
        io::repeat(b'7').take(n)
    }

    #[test]
    fn huge_extension_headers_are_rejected_unread() {
        const TEN_GB: u64 = 10 << 30;
        for (t, what) in [
            (b'x', "PAX header"),
            (b'g', "PAX global header"),
            (b'L', "GNU long name"),
            (b'K', "GNU long link"),
        ] {
            for field in [
                octal(TEN_GB),
                base256(u128::from(TEN_GB)),
                base256(u128::from(u64::MAX)),
            ] {
                let head = header_raw(b"h", t, field);
                let reader = BufReader::new(head.as_slice().chain(endless(TEN_GB)));
                let mut ts = TarStream::new(reader, Limits::default());
                let e = ts.next_header().unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidData);
                assert!(e.to_string().starts_with(what), "{e}");
                assert!(
                    e.to_string()
                        .ends_with("bytes exceeds the 1048576-byte limit"),
                    "{e}"
                );
                assert_eq!(ts.position(), 512, "nothing after the header was consumed");
            }
        }
        assert_eq!(
            err_of(&header(b"h", b'x', TEN_GB)).to_string(),
            "PAX header of 10737418240 bytes exceeds the 1048576-byte limit"
        );
    }

    #[test]
    fn extension_limit_is_inclusive() {
        let limits = Limits {
            max_extension_bytes: 100,
        };
        // "99 path=…" would do too: a record's length may count its own digits
        // either way when that crosses a power of ten.
        let at_limit = [b"100 path=".as_slice(), &[b'p'; 90], b"\n"].concat();
        assert_eq!(at_limit.len(), 100);
        let bytes = cat(&[entry(b"x", b'x', &at_limit), file("f", b""), end()]);
        assert_eq!(
            read_all_with(&bytes, 512, limits).unwrap()[0].0.path,
            [b'p'; 90]
        );
        let over = rec("path", &[b'p'; 91]);
        let bytes = cat(&[entry(b"x", b'x', &over), file("f", b""), end()]);
        let e = read_all_with(&bytes, 512, limits).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PAX header of 101 bytes exceeds the 100-byte limit"
        );
        let bytes = cat(&[entry(b"L", b'L', &[b'n'; 101]), file("f", b""), end()]);
        let e = read_all_with(&bytes, 512, limits).unwrap_err();
        assert_eq!(
            e.to_string(),
            "GNU long name of 101 bytes exceeds the 100-byte limit"
        );
    }

    #[test]
    fn huge_sizes_fail_cleanly() {
        use io::ErrorKind::{InvalidData, UnexpectedEof};
        let mut negative = base256(5);
        negative[0] = 0xff;
        let mut too_big = [0xffu8; 12];
        too_big[0] = 0x80;
        let cases: Vec<(&str, Vec<u8>, io::ErrorKind)> = vec![
            (
                "octal max",
                header_raw(b"f", b'0', *b"77777777777\0"),
                UnexpectedEof,
            ),
            (
                "12 octal digits",
                header_raw(b"f", b'0', *b"777777777777"),
                UnexpectedEof,
            ),
            (
                "base-256 2^63",
                header_raw(b"f", b'0', base256(1 << 63)),
                UnexpectedEof,
            ),
            (
                "base-256 u64::MAX",
                header_raw(b"f", b'0', base256(u128::from(u64::MAX))),
                UnexpectedEof,
            ),
            (
                "base-256 u64::MAX - 1",
                header_raw(b"f", b'0', base256(u128::from(u64::MAX - 1))),
                UnexpectedEof,
            ),
            (
                "base-256 beyond u64",
                header_raw(b"f", b'0', too_big),
                InvalidData,
            ),
            (
                "base-256 negative",
                header_raw(b"f", b'0', negative),
                InvalidData,
            ),
            (
                "not octal",
                header_raw(b"f", b'0', *b"0000000009\0\0"),
                InvalidData,
            ),
            (
                "pax size u64::MAX",
                cat(&[
                    pax(&[rec("size", b"18446744073709551615")]),
                    header(b"f", b'0', 0),
                ]),
                UnexpectedEof,
            ),
            (
                "pax size overflow",
                cat(&[
                    pax(&[rec("size", b"18446744073709551616")]),
                    header(b"f", b'0', 0),
                ]),
                InvalidData,
            ),
            (
                "pax size negative",
                cat(&[pax(&[rec("size", b"-1")]), header(b"f", b'0', 0)]),
                InvalidData,
            ),
        ];
        for (what, mut bytes, kind) in cases {
            bytes.extend([b'd'; 1000]);
            // Reading the data and skipping it both stop at the real EOF.
            assert_eq!(err_of(&bytes).kind(), kind, "{what}");
            let mut ts = TarStream::new(&bytes[..], Limits::default());
            let e = ts.next_header().and_then(|_| ts.next_header()).unwrap_err();
            assert_eq!(e.kind(), kind, "{what}: {e}");
        }
    }

    #[test]
    fn malformed_pax_records() {
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("length too long", b"50 path=a\n".to_vec()),
            ("length too short", b"9 path=abc\n".to_vec()),
            ("length zero", b"0 path=a\n".to_vec()),
            ("no space", b"10path=abc\n".to_vec()),
            ("length not a number", b"1x path=a\n".to_vec()),
            ("no newline", b"11 path=abcd".to_vec()),
            ("no equals", b"9 pathab\n".to_vec()),
            ("empty keyword", b"7 =abc\n".to_vec()),
            ("minimal garbage", b"3 \n".to_vec()),
            (
                "junk after records",
                [rec("path", b"a"), b"\0junk".to_vec()].concat(),
            ),
            ("NUL in path", rec("path", b"a\0b")),
            ("NUL in linkpath", rec("linkpath", b"a\0b")),
            ("size not decimal", rec("size", b"0x10")),
            ("size with space", rec("size", b" 1")),
            ("huge length", b"99999999999999999999999 path=a\n".to_vec()),
        ];
        for (what, data) in bad {
            let bytes = cat(&[entry(b"x", b'x', &data), file("f", b""), end()]);
            let e = err_of(&bytes);
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}: {e}");
        }
    }

    #[test]
    fn numeric_fields() {
        let ok: &[(&[u8], u64)] = &[
            (b"0000644\0", 0o644),
            (b"   644 \0", 0o644),
            (b"644 ", 0o644),
            (b"\x00\x00644\x00\x00", 0o644),
            (b"        ", 0),
            (b"\0\0\0\0\0\0\0\0", 0),
            (b"", 0),
            (b"777777777777", 0o777777777777),
            (&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], 256),
            (
                &[
                    0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ],
                u64::MAX,
            ),
            (&[0xbf], 0x3f),
        ];
        for &(field, want) in ok {
            assert_eq!(parse_numeric(field), Ok(want), "{}", field.escape_ascii());
        }
        let bad: &[&[u8]] = &[
            b"12 3",
            b"8",
            b"-1",
            b"0x10",
            b"12\x003",
            &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0xff; 12],
            &[0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ];
        for &field in bad {
            assert!(parse_numeric(field).is_err(), "{}", field.escape_ascii());
        }
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(u64::MAX), 1);
    }

    // ---- sparse files ----

    /// What GNU tar stores for the fixtures' sparse file `g`: 1000003 bytes,
    /// "segK" at K*100000+700 and "END" at 1000000; --hole-detection=raw makes
    /// each data block a 512-byte segment, the last one 67 bytes.
    fn fixture_segments() -> Vec<u8> {
        let mut file = vec![0u8; 1_000_003];
        for k in 0..8 {
            let at = k * 100_000 + 700;
            file[at..at + 4].copy_from_slice(format!("seg{k}").as_bytes());
        }
        file[1_000_000..].copy_from_slice(b"END");
        let segments = [
            (512, 512),
            (100_352, 512),
            (200_192, 512),
            (300_544, 512),
            (400_384, 512),
            (500_224, 512),
            (600_576, 512),
            (700_416, 512),
            (999_936, 67),
        ];
        segments
            .iter()
            .flat_map(|&(o, l)| file[o..o + l].to_vec())
            .collect()
    }

    #[test]
    fn gnu_tar_sparse_fixtures() {
        let want = fixture_segments();
        assert_eq!(want.len(), 4163);
        // (fixture, offset of the data after next_header)
        let cases = [
            ("old GNU", GNU_OLD, 1024),
            ("pax 0.0", PAX_0_0, 2048),
            ("pax 0.1", PAX_0_1, 1536),
            ("pax 1.0", PAX_1_0, 2048),
        ];
        for (what, runs, data_at) in cases {
            let bytes = fixture(runs);
            let got = read_all_caps(&bytes);
            assert_eq!(got.len(), 1, "{what}");
            let (h, data) = &got[0];
            assert_eq!(h.path, b"g", "{what}");
            assert_eq!(
                (h.kind, h.sparse, h.size, h.apparent_size),
                (Kind::File, true, 4163, 1_000_003),
                "{what}"
            );
            assert!(data == &want, "{what}: stored segments differ");
            let mut ts = TarStream::new(&bytes[..], Limits::default());
            ts.next_header().unwrap();
            assert_eq!(ts.position(), data_at, "{what}");
        }
    }

    /// An old GNU sparse entry: 4 segments in the header, 21 per extension
    /// block after it, then `stored` bytes of data.
    fn old_gnu_sparse(segments: &[(u64, u64)], realsize: u64, stored: u64) -> Vec<u8> {
        let mut h = header(b"sparse", b'S', stored);
        h[257..265].copy_from_slice(b"ustar  \0");
        h[345..500].fill(0);
        let field = |v: u64| {
            if v > 0o77777777777 {
                base256(u128::from(v))
            } else {
                octal(v)
            }
        };
        let (first, rest) = segments.split_at(segments.len().min(4));
        for (i, &(o, l)) in first.iter().enumerate() {
            h[386 + 24 * i..][..12].copy_from_slice(&field(o));
            h[398 + 24 * i..][..12].copy_from_slice(&field(l));
        }
        h[482] = u8::from(!rest.is_empty());
        h[483..495].copy_from_slice(&field(realsize));
        set_checksum(&mut h);
        let chunks: Vec<_> = rest.chunks(21).collect();
        for (c, chunk) in chunks.iter().enumerate() {
            let mut b = vec![0u8; BLOCK];
            for (i, &(o, l)) in chunk.iter().enumerate() {
                b[24 * i..][..12].copy_from_slice(&field(o));
                b[24 * i + 12..][..12].copy_from_slice(&field(l));
            }
            b[504] = u8::from(c + 1 < chunks.len());
            h.extend(b);
        }
        h.extend((0..stored).map(|i| i as u8));
        pad_to_block(&mut h);
        h
    }

    #[test]
    fn old_gnu_sparse_by_hand() {
        use io::ErrorKind::{InvalidData, UnexpectedEof};
        let many: Vec<(u64, u64)> = (0..50).map(|i| (i * 10_000, 100)).collect();
        let ok: Vec<(&str, Vec<u8>, u64, u64)> = vec![
            (
                "50 segments, 3 extension blocks",
                old_gnu_sparse(&many, 500_000, 5000),
                5000,
                500_000,
            ),
            (
                "all hole",
                old_gnu_sparse(&[(1 << 40, 0)], 1 << 40, 0),
                0,
                1 << 40,
            ),
            ("no segments", old_gnu_sparse(&[], 0, 0), 0, 0),
            (
                "exactly 4",
                old_gnu_sparse(&[(0, 1), (5, 1), (9, 1), (20, 2)], 30, 5),
                5,
                30,
            ),
            (
                "exactly 25",
                old_gnu_sparse(&many[..25], 250_000, 2500),
                2500,
                250_000,
            ),
        ];
        for (what, mut bytes, size, apparent) in ok {
            bytes.extend(file("after", b"a"));
            let got = read_all_caps(&bytes);
            let h = &got[0].0;
            assert_eq!(
                (h.kind, h.sparse, h.size, h.apparent_size),
                (Kind::File, true, size, apparent),
                "{what}"
            );
            assert_eq!(
                got[0].1,
                (0..size).map(|i| i as u8).collect::<Vec<_>>(),
                "{what}"
            );
            assert_eq!(got[1].0.path, b"after", "{what}");
        }
        let early_end = {
            // The header's list ends after two segments, yet an extension
            // block follows (isextended) and adds a third.
            let mut b = old_gnu_sparse(&[(0, 1), (5, 1), (10, 1), (12, 1), (14, 1)], 20, 3);
            b[386 + 48..386 + 96].fill(0);
            set_checksum(&mut b[..BLOCK]);
            b.extend(file("after", b"a"));
            b
        };
        let got = read_all_caps(&early_end);
        assert_eq!((got[0].0.size, got[0].0.apparent_size), (3, 20));
        assert_eq!(got[1].0.path, b"after");
        let truncated = {
            let b = old_gnu_sparse(&many, 500_000, 5000);
            b[..1024].to_vec()
        };
        let no_magic = {
            let mut b = old_gnu_sparse(&[(0, 1)], 1, 1);
            b[257..265].copy_from_slice(b"ustar\x0000");
            set_checksum(&mut b[..BLOCK]);
            b
        };
        let bad: Vec<(&str, Vec<u8>, io::ErrorKind)> = vec![
            (
                "overlap",
                old_gnu_sparse(&[(0, 10), (5, 10)], 100, 20),
                InvalidData,
            ),
            (
                "out of order",
                old_gnu_sparse(&[(50, 10), (0, 10)], 100, 20),
                InvalidData,
            ),
            (
                "stored mismatch",
                old_gnu_sparse(&[(0, 10)], 100, 11),
                InvalidData,
            ),
            (
                "beyond realsize",
                old_gnu_sparse(&[(95, 10)], 100, 10),
                InvalidData,
            ),
            (
                "offset overflow",
                old_gnu_sparse(&[(u64::MAX, 1)], u64::MAX, 1),
                InvalidData,
            ),
            ("extension block missing", truncated, UnexpectedEof),
            ("not a GNU header", no_magic, InvalidData),
        ];
        for (what, bytes, kind) in bad {
            let e = err_of(&bytes);
            assert_eq!(e.kind(), kind, "{what}: {e}");
        }
        let limits = Limits {
            max_extension_bytes: 1024,
        };
        let e = read_all_with(&old_gnu_sparse(&many, 500_000, 5000), 512, limits).unwrap_err();
        assert_eq!(
            e.to_string(),
            "GNU sparse map of 1536 bytes exceeds the 1024-byte limit"
        );
    }

    /// A pax 1.0 sparse entry whose data starts with `map` (padded).
    fn pax_1_0(map: &[u8], data: &[u8], realsize: u64) -> Vec<u8> {
        let mut body = map.to_vec();
        pad_to_block(&mut body);
        body.extend_from_slice(data);
        cat(&[
            pax(&[
                rec("GNU.sparse.major", b"1"),
                rec("GNU.sparse.minor", b"0"),
                rec("GNU.sparse.name", b"real/name"),
                rec("GNU.sparse.realsize", realsize.to_string().as_bytes()),
            ]),
            entry(b"GNUSparseFile.1/name", b'0', &body),
        ])
    }

    #[test]
    fn pax_sparse_by_hand() {
        // (what, archive, path, size, apparent size)
        type Case = (&'static str, Vec<u8>, &'static [u8], u64, u64);
        let ok: Vec<Case> = vec![
            (
                "1.0",
                pax_1_0(b"2\n0\n3\n100\n2\n", b"abcde", 200),
                b"real/name",
                5,
                200,
            ),
            ("1.0 empty map", pax_1_0(b"0\n", b"", 7), b"real/name", 0, 7),
            (
                "1.0 map across blocks",
                pax_1_0(
                    &[
                        b"100\n".to_vec(),
                        (0..100)
                            .flat_map(|i| format!("{}\n1\n", i * 10).into_bytes())
                            .collect(),
                    ]
                    .concat(),
                    &[1; 100],
                    1000,
                ),
                b"real/name",
                100,
                1000,
            ),
            (
                "0.1",
                cat(&[
                    pax(&[
                        rec("GNU.sparse.size", b"50"),
                        rec("GNU.sparse.numblocks", b"2"),
                        rec("GNU.sparse.map", b"0,2,40,3"),
                        rec("path", b"p"),
                    ]),
                    file("n", b"abcde"),
                ]),
                b"p",
                5,
                50,
            ),
            (
                "0.0",
                cat(&[
                    pax(&[
                        rec("GNU.sparse.size", b"50"),
                        rec("GNU.sparse.offset", b"0"),
                        rec("GNU.sparse.numbytes", b"2"),
                        rec("GNU.sparse.offset", b"40"),
                        rec("GNU.sparse.numbytes", b"3"),
                    ]),
                    file("n", b"abcde"),
                ]),
                b"n",
                5,
                50,
            ),
            (
                "0.1 without realsize",
                cat(&[pax(&[rec("GNU.sparse.map", b"10,2")]), file("n", b"ab")]),
                b"n",
                2,
                12,
            ),
            (
                "unknown version is a plain file",
                cat(&[
                    pax(&[
                        rec("GNU.sparse.major", b"2"),
                        rec("GNU.sparse.minor", b"0"),
                        rec("GNU.sparse.realsize", b"99"),
                    ]),
                    file("n", b"ab"),
                ]),
                b"n",
                2,
                2,
            ),
        ];
        for (what, mut bytes, path, size, apparent) in ok {
            bytes.extend(end());
            let got = read_all_caps(&bytes);
            let h = &got[0].0;
            assert_eq!(
                (h.path.as_slice(), h.size, h.apparent_size, h.sparse),
                (
                    path,
                    size,
                    apparent,
                    what != "unknown version is a plain file"
                ),
                "{what}"
            );
        }
        // Sparse records on a link are ignored: links have no data.
        let bytes = cat(&[
            pax(&[rec("GNU.sparse.map", b"0,1")]),
            header(b"l", b'2', 0),
            end(),
        ]);
        assert!(!read_all(&bytes).unwrap()[0].0.sparse);

        let bad: Vec<(&str, Vec<u8>)> = vec![
            (
                "1.0 map past data",
                cat(&[
                    pax(&[rec("GNU.sparse.major", b"1"), rec("GNU.sparse.minor", b"0")]),
                    file("n", b"1\n0\n1\n"),
                ]),
            ),
            ("1.0 malformed", pax_1_0(b"1\nx\n1\n", b"a", 10)),
            ("1.0 blank line", pax_1_0(b"1\n\n0\n1\n", b"a", 10)),
            ("1.0 unterminated", pax_1_0(b"1\n0\n1", b"a", 10)),
            (
                "1.0 number overflow",
                pax_1_0(b"99999999999999999999999\n", b"", 10),
            ),
            ("1.0 stored mismatch", pax_1_0(b"1\n0\n2\n", b"abc", 10)),
            ("1.0 beyond realsize", pax_1_0(b"1\n9\n2\n", b"ab", 10)),
            ("1.0 overlap", pax_1_0(b"2\n0\n5\n4\n1\n", b"abcdef", 10)),
            (
                "0.0 offset alone",
                cat(&[pax(&[rec("GNU.sparse.offset", b"0")]), file("n", b"")]),
            ),
            (
                "0.0 numbytes alone",
                cat(&[pax(&[rec("GNU.sparse.numbytes", b"0")]), file("n", b"")]),
            ),
            (
                "0.0 two offsets",
                cat(&[
                    pax(&[
                        rec("GNU.sparse.offset", b"0"),
                        rec("GNU.sparse.offset", b"1"),
                    ]),
                    file("n", b""),
                ]),
            ),
            (
                "0.1 odd map",
                cat(&[pax(&[rec("GNU.sparse.map", b"0,1,5")]), file("n", b"a")]),
            ),
            (
                "0.1 bad number",
                cat(&[pax(&[rec("GNU.sparse.map", b"0,x")]), file("n", b"")]),
            ),
            (
                "0.1 numblocks mismatch",
                cat(&[
                    pax(&[
                        rec("GNU.sparse.numblocks", b"2"),
                        rec("GNU.sparse.map", b"0,1"),
                    ]),
                    file("n", b"a"),
                ]),
            ),
            (
                "0.x version without map",
                cat(&[
                    pax(&[rec("GNU.sparse.major", b"0"), rec("GNU.sparse.minor", b"1")]),
                    file("n", b"a"),
                ]),
            ),
        ];
        for (what, mut bytes) in bad {
            bytes.extend(end());
            let e = err_of(&bytes);
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}: {e}");
        }
    }

    #[test]
    fn pax_sparse_map_is_bounded() {
        // A 1.0 map that never ends, in an entry declaring 10 GB: the map limit
        // stops it, not the data.
        let head = cat(&[
            pax(&[
                rec("GNU.sparse.major", b"1"),
                rec("GNU.sparse.minor", b"0"),
                rec("GNU.sparse.realsize", b"1"),
            ]),
            header(b"n", b'0', 10 << 30),
        ]);
        let map: Vec<u8> = std::iter::once(b"99999999\n".to_vec())
            .chain(std::iter::repeat_n(b"0\n".to_vec(), 1 << 20))
            .flatten()
            .collect();
        let reader = BufReader::new(
            head.as_slice()
                .chain(map.as_slice())
                .chain(endless(10 << 30)),
        );
        let mut ts = TarStream::new(reader, Limits::default());
        let e = ts.next_header().unwrap_err();
        assert_eq!(
            e.to_string(),
            "GNU sparse map of 1049088 bytes exceeds the 1048576-byte limit"
        );
        assert_eq!(ts.position(), head.len() as u64 + (1 << 20));
    }

    // ---- robustness ----

    /// xorshift64*: a small deterministic generator for the mutation loop.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Valid archives that exercise every path of the reader.
    fn mutation_seeds() -> Vec<Vec<u8>> {
        use ::tar::EntryType as T;
        let small = builder_archive(|b| {
            add_special(b, T::Directory, "d/");
            add_file(b, ::tar::Header::new_gnu(), &long("d/long", 120), &[5; 600]);
            add_file(b, ::tar::Header::new_ustar(), &long("u/prefix", 130), b"u");
            add_link(b, T::Symlink, &long("d/s", 110), &long("t", 105));
            add_file(b, ::tar::Header::new_old(), "v7", b"v7");
        });
        let pax_rich = cat(&[
            entry(b"g", b'g', &rec("comment", b"global")),
            pax(&[
                rec("path", b"pax/path"),
                rec("size", b"3"),
                rec("linkpath", b"l"),
            ]),
            entry(b"././@LongLink", b'L', b"gnu/long\0"),
            header(b"p", b'0', 0),
            vec![b'z'; BLOCK],
            pax(&[
                rec("GNU.sparse.map", b"0,1,10,1"),
                rec("GNU.sparse.size", b"11"),
            ]),
            file("s01", b"ab"),
            pax_1_0(b"1\n4\n2\n", b"cd", 6),
            old_gnu_sparse(&(0..30).map(|i| (i * 3, 1)).collect::<Vec<_>>(), 90, 30),
            end(),
        ]);
        vec![
            small,
            pax_rich,
            fixture(GNU_OLD),
            fixture(PAX_0_0),
            fixture(PAX_0_1),
            fixture(PAX_1_0),
        ]
    }

    fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
        const ALPHABET: &[u8] =
            b"0123456789 =\n,\0.xgLKS7GNUsparsemajorminorpathsizenumbytesoffsetmap";
        const FIELDS: &[(usize, usize)] = &[
            (0, 100),
            (124, 12),
            (148, 8),
            (156, 1),
            (157, 100),
            (257, 8),
            (345, 155),
            (386, 24),
            (398, 12),
            (482, 1),
            (483, 12),
            (504, 1),
        ];
        if bytes.is_empty() {
            return;
        }
        let blocks = bytes.len().div_ceil(BLOCK);
        match rng.below(7) {
            0 => {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            1 => {
                // A numeric or text header field: octal, base-256 or noise.
                let (off, len) = FIELDS[rng.below(FIELDS.len())];
                let start = rng.below(blocks) * BLOCK + off;
                let style = rng.below(3);
                for i in 0..len {
                    if let Some(b) = bytes.get_mut(start + i) {
                        *b = match style {
                            0 => b"01234567 \0"[rng.below(10)],
                            1 if i == 0 => 0x80 | (rng.next() as u8 & 0x7f),
                            _ => rng.next() as u8,
                        };
                    }
                }
            }
            2 => {
                let at = rng.below(blocks) * BLOCK + 156;
                if let Some(b) = bytes.get_mut(at) {
                    *b = b"0125xgLKSX\0D7346"[rng.below(16)];
                }
            }
            3 => {
                // Text that pax records and sparse maps are made of.
                let at = rng.below(bytes.len());
                for i in 0..rng.below(12) + 1 {
                    if let Some(b) = bytes.get_mut(at + i) {
                        *b = ALPHABET[rng.below(ALPHABET.len())];
                    }
                }
            }
            4 => bytes.truncate(rng.below(bytes.len() + 1)),
            5 => {
                // Duplicate or drop a block, shifting what follows.
                let at = rng.below(blocks) * BLOCK;
                let end = (at + BLOCK).min(bytes.len());
                if rng.below(2) == 0 {
                    let copy = bytes[at..end].to_vec();
                    let to = rng.below(blocks) * BLOCK;
                    bytes.splice(to..to, copy);
                } else {
                    bytes.drain(at..end);
                }
            }
            _ => {
                // A size in the sizes that matter: around block boundaries and u64::MAX.
                let start = rng.below(blocks) * BLOCK + 124;
                let v = [
                    0u64,
                    1,
                    511,
                    512,
                    513,
                    1 << 20,
                    (1 << 20) + 1,
                    u64::MAX,
                    u64::MAX - 511,
                ][rng.below(9)];
                let field = if v > 0o77777777777 {
                    base256(u128::from(v))
                } else {
                    octal(v)
                };
                if let Some(dst) = bytes.get_mut(start..start + 12) {
                    dst.copy_from_slice(&field);
                }
            }
        }
    }

    #[test]
    fn random_mutations_never_panic_or_hang() {
        let seeds = mutation_seeds();
        for s in &seeds {
            read_all(s).unwrap();
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut entries, mut ends, mut errors) = (0usize, 0usize, 0usize);
        for i in 0..2000 {
            let mut bytes = seeds[i % seeds.len()].clone();
            for _ in 0..=rng.below(6) {
                mutate(&mut rng, &mut bytes);
            }
            // Re-checksum most non-zero blocks so mutations get past the
            // checksum and into the parsers.
            if rng.below(5) != 0 {
                for block in bytes.chunks_exact_mut(BLOCK) {
                    if block.iter().any(|&b| b != 0) && rng.below(4) != 0 {
                        set_checksum(block);
                    }
                }
            }
            let cap = [1, 13, 512, 4096, 65536][rng.below(5)];
            let limit = [64, 1024, 1 << 20][rng.below(3)];
            let mut ts = TarStream::new(
                BufReader::with_capacity(cap, &bytes[..]),
                Limits {
                    max_extension_bytes: limit,
                },
            );
            // Every header takes a block, so this many calls must finish.
            let max_calls = bytes.len() / BLOCK + 1;
            let mut calls = 0;
            loop {
                calls += 1;
                assert!(calls <= max_calls, "iteration {i}: no progress");
                match ts.next_header() {
                    Ok(Some(h)) => {
                        entries += 1;
                        assert!(h.path.len() as u64 <= limit.max(256));
                        if rng.below(2) == 0 {
                            let mut fed = 0u64;
                            match ts.read_data(|s| fed += s.len() as u64) {
                                Ok(n) => assert_eq!((n, n), (fed, h.size)),
                                Err(_) => {
                                    errors += 1;
                                    break;
                                }
                            }
                        }
                    }
                    Ok(None) => {
                        ends += 1;
                        break;
                    }
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            assert!(ts.position() <= bytes.len() as u64);
            // A failed or finished stream stays so, without panicking.
            let _ = ts.next_header();
            let _ = ts.read_data(|_| {});
        }
        assert!(
            ends > 200 && errors > 200 && entries > 1000,
            "{ends} ends, {errors} errors, {entries} entries"
        );
    }
}
