//! The compacted file's bytes, from the merge's blocking thread to the object store's
//! [`put_parts`](crate::objects::ObjectStore::put_parts) a chunk at a time, so the file is never
//! held whole: the channel is bounded, so a slow upload holds the merge back.

use std::io::{self, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::objects::Part;

/// Bytes gathered before they go to the store as one chunk.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks on their way at once.
pub const CHUNKS_AHEAD: usize = 4;

/// A [`Write`] whose bytes go to a `put_parts` receiver, for a blocking thread.
pub struct PartWriter {
    sender: mpsc::Sender<Part>,
    buffer: Vec<u8>,
    written: u64,
}

impl PartWriter {
    pub fn new(sender: mpsc::Sender<Part>) -> Self {
        Self {
            sender,
            buffer: Vec::with_capacity(CHUNK_BYTES),
            written: 0,
        }
    }

    fn send(&mut self, part: Part) -> io::Result<()> {
        self.sender
            .blocking_send(part)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.send(Part::Data(Bytes::from(chunk)))
    }

    /// Sends what is left and the end: the object may appear. Returns the bytes written.
    pub fn finish(mut self) -> io::Result<u64> {
        if !self.buffer.is_empty() {
            self.send_buffer()?;
        }
        self.send(Part::End)?;
        Ok(self.written)
    }
}

impl Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        self.written += data.len() as u64;
        if self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    /// Chunks go when full; [`PartWriter::finish`] sends the rest.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_then_the_end_and_a_closed_upload_is_an_error() {
        let (sender, mut receiver) = mpsc::channel(64);
        let mut writer = PartWriter::new(sender);
        let data: Vec<u8> = (0..3 * CHUNK_BYTES + 17).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(1000) {
            writer.write_all(piece).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), data.len() as u64);
        let mut received = Vec::new();
        let mut ended = false;
        while let Ok(part) = receiver.try_recv() {
            match part {
                Part::Data(bytes) => received.extend_from_slice(&bytes),
                Part::End => ended = true,
            }
        }
        assert!(ended);
        assert_eq!(received, data);

        let (sender, receiver) = mpsc::channel(1);
        drop(receiver);
        let mut writer = PartWriter::new(sender);
        assert!(writer.write_all(&vec![0; CHUNK_BYTES]).is_err());
    }
}
