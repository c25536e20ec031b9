//! A file read in bounded chunks, for loading: RDB files and AOF files are
//! parsed from a window of the file rather than from the whole file in
//! memory, so loading a dataset costs the dataset plus a chunk, not twice
//! the file.
//!
//! The parsers try an item (an RDB opcode or key, an AOF command) on what
//! the window holds; when it ends too soon they ask for the length it
//! needed (`fill`), and try again. Consumed bytes are dropped at the next
//! `fill`, after going into the running CRC-64 (an RDB file's checksum
//! covers everything before it). A value larger than a chunk widens the
//! window to its size, and the window shrinks back once it is consumed.
//!
//! Reads are plain blocking reads on the loading thread, as loading has
//! nothing else to do meanwhile.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::crc64::crc64;

/// Bytes read at a time.
pub const CHUNK: usize = 4 << 20;

pub struct Chunks<R> {
    src: R,
    /// The source's length (a file's size when opened).
    len: u64,
    buf: Vec<u8>,
    /// First unconsumed byte of `buf`.
    start: usize,
    /// Offset in the source of `buf[0]`.
    offset: u64,
    chunk: usize,
    /// CRC-64 of the source's bytes before `buf[0]`.
    crc: u64,
}

impl Chunks<File> {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Chunks::new(file, len, CHUNK))
    }
}

impl<R: Read> Chunks<R> {
    /// Reads `len` bytes of `src`, `chunk` at a time.
    pub fn new(src: R, len: u64, chunk: usize) -> Self {
        Chunks { src, len, buf: Vec::new(), start: 0, offset: 0, chunk: chunk.max(1), crc: 0 }
    }

    /// The bytes read and not consumed yet.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The source offset of `data()[0]` (error messages name offsets).
    pub fn pos(&self) -> u64 {
        self.offset + self.start as u64
    }

    /// The source's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn consume(&mut self, n: usize) {
        debug_assert!(self.start + n <= self.buf.len());
        self.start += n;
    }

    /// Whether `data()` is all the source has left.
    pub fn at_end(&self) -> bool {
        self.offset + self.buf.len() as u64 >= self.len
    }

    /// Whether the source holds `need` bytes from `pos()`.
    pub fn holds(&self, need: usize) -> bool {
        need as u64 <= self.len - self.pos()
    }

    /// Reads at least a chunk more (or half of what is held, if more), and
    /// until `data()` has `need` bytes (or the source ends). A source that is shorter than its length said
    /// (a file truncated meanwhile) just ends there.
    pub fn fill(&mut self, need: usize) -> std::io::Result<()> {
        // Drop what is consumed, into the checksum.
        self.crc = crc64(self.crc, &self.buf[..self.start]);
        self.offset += self.start as u64;
        self.buf.drain(..self.start);
        self.start = 0;
        if self.buf.capacity() > 2 * self.chunk && self.buf.len() < self.chunk {
            self.buf.shrink_to(self.chunk * 2);
        }
        let left = self.len - self.offset;
        // At least half again what is held: an item that keeps asking for
        // a little more (a big collection of small elements) is re-parsed
        // a logarithmic number of times, not once per chunk.
        let grow = self.chunk.max(self.buf.len() / 2);
        let target = (need.max(self.buf.len() + grow) as u64).min(left) as usize;
        if target > self.buf.len() {
            self.buf.reserve_exact(target - self.buf.len());
        }
        while self.buf.len() < target {
            let have = self.buf.len();
            self.buf.resize(target, 0);
            match self.src.read(&mut self.buf[have..]) {
                Ok(0) => {
                    self.buf.truncate(have);
                    self.len = self.offset + have as u64;
                    break;
                }
                Ok(n) => self.buf.truncate(have + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.buf.truncate(have),
                Err(e) => {
                    self.buf.truncate(have);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// CRC-64 of the source's bytes before `data()[n]`.
    pub fn crc_before(&self, n: usize) -> u64 {
        crc64(self.crc, &self.buf[..self.start + n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_grow_for_large_items_and_checksum_everything_consumed() {
        let file: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut c = Chunks::new(&file[..], file.len() as u64, 16);
        c.fill(1).unwrap();
        assert_eq!(c.data(), &file[..16]);
        c.consume(10);
        // An item of 300 bytes starting at offset 10.
        c.fill(300).unwrap();
        assert_eq!(c.pos(), 10);
        assert_eq!(c.data(), &file[10..310]);
        c.consume(300);
        c.fill(1).unwrap();
        assert_eq!(c.data(), &file[310..326]);
        assert_eq!(c.crc_before(5), crc64(0, &file[..315]));
        // Asking for more than is left reads to the end.
        c.fill(5000).unwrap();
        assert!(c.at_end() && !c.holds(691) && c.holds(690));
        assert_eq!(c.data(), &file[310..]);
    }

    #[test]
    fn a_source_shorter_than_its_length_ends_where_it_ends() {
        let file = [1u8; 10];
        let mut c = Chunks::new(&file[..], 100, 4);
        c.fill(50).unwrap();
        assert_eq!(c.data().len(), 10);
        assert!(c.at_end());
    }
}
