//! Following a JSON-lines event log (`events.jsonl`, or the `--json` output of a background
//! `cdw evaluate`) while another process appends to it: each poll reads from the byte offset the
//! last one stopped at and returns the whole new events. A last line still being written (no
//! newline yet) is left for the next poll, and a file that was truncated or replaced (a resume
//! cuts history back by writing a new file) is read again from the start.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::events::Event;

/// What one poll found.
#[derive(Debug, Default, PartialEq)]
pub struct Followed {
    /// The file was truncated or replaced since the last poll: `events` is its whole content
    /// again, and whatever was built from earlier events is to be rebuilt.
    pub restarted: bool,
    /// The new complete events, in order.
    pub events: Vec<Event>,
    /// Complete lines that are not events (another program's output in the same log, or an event
    /// of a newer cdw), skipped.
    pub skipped: usize,
}

/// Reads the events appended to one file since the last call.
#[derive(Debug)]
pub struct EventFollower {
    path: PathBuf,
    /// Bytes of the file consumed: the end of the last complete line read.
    offset: u64,
    /// The file's inode at the last read, to notice a file replaced by a rename.
    inode: Option<u64>,
}

impl EventFollower {
    pub fn new(path: impl Into<PathBuf>) -> EventFollower {
        EventFollower {
            path: path.into(),
            offset: 0,
            inode: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The complete events written since the last poll. A file that does not exist (yet) has
    /// none; one that cannot be read is retried at the next poll.
    pub fn poll(&mut self) -> Followed {
        let mut out = Followed::default();
        let Ok(mut file) = File::open(&self.path) else {
            if self.offset > 0 || self.inode.is_some() {
                // It was there and is gone: whatever comes next is a new file.
                out.restarted = true;
                self.offset = 0;
                self.inode = None;
            }
            return out;
        };
        let Ok(meta) = file.metadata() else {
            return out;
        };
        let replaced = self.inode.is_some_and(|i| i != meta.ino());
        if replaced || meta.len() < self.offset {
            out.restarted = self.inode.is_some();
            self.offset = 0;
        }
        self.inode = Some(meta.ino());
        if meta.len() == self.offset {
            return out;
        }
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err()
        {
            return out;
        }
        // Only whole lines: the bytes after the last newline are still being written.
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
            return out;
        };
        for line in bytes[..end].split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Event>(line) {
                Ok(e) => out.events.push(e),
                Err(_) => out.skipped += 1,
            }
        }
        self.offset += end as u64 + 1;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};
    use std::io::Write;

    fn epoch(n: i64) -> Event {
        Event::Epoch {
            epoch: n,
            epochs: 10,
            instance_loss: 1.0,
            feature_loss: 2.0,
            total_loss: 3.0,
            lr: 0.0003,
            seconds: 1.5,
            images_per_sec: 100.0,
        }
    }

    fn line(e: &Event) -> String {
        format!("{}\n", serde_json::to_string(e).unwrap())
    }

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn reads_new_whole_events_from_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut f = EventFollower::new(&path);
        assert_eq!(f.poll(), Followed::default(), "no file yet: nothing");
        append(&path, &(line(&epoch(1)) + &line(&epoch(2))));
        let got = f.poll();
        assert_eq!(got.events, vec![epoch(1), epoch(2)]);
        assert!(!got.restarted);
        assert_eq!(f.offset(), fs::metadata(&path).unwrap().len());
        assert_eq!(f.poll().events, vec![], "nothing new");
        append(&path, &line(&epoch(3)));
        assert_eq!(f.poll().events, vec![epoch(3)]);
    }

    #[test]
    fn a_line_cut_short_waits_for_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let whole = line(&epoch(2));
        let (head, tail) = whole.split_at(20);
        append(&path, &(line(&epoch(1)) + head));
        let mut f = EventFollower::new(&path);
        assert_eq!(f.poll().events, vec![epoch(1)]);
        assert_eq!(f.offset() as usize, line(&epoch(1)).len());
        assert_eq!(f.poll().events, vec![], "still cut short");
        append(&path, tail);
        assert_eq!(f.poll().events, vec![epoch(2)]);
    }

    #[test]
    fn truncation_and_replacement_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        append(
            &path,
            &(line(&epoch(1)) + &line(&epoch(2)) + &line(&epoch(3))),
        );
        let mut f = EventFollower::new(&path);
        assert_eq!(f.poll().events.len(), 3);

        // Truncated in place to something shorter.
        fs::write(&path, line(&epoch(1))).unwrap();
        let got = f.poll();
        assert!(got.restarted);
        assert_eq!(got.events, vec![epoch(1)]);

        // Replaced by a rename (as a resume's history cut writes it), even when longer.
        let new = dir.path().join("new");
        fs::write(
            &new,
            line(&epoch(1)) + &line(&epoch(2)) + &line(&epoch(7)) + &line(&epoch(8)),
        )
        .unwrap();
        fs::rename(&new, &path).unwrap();
        let got = f.poll();
        assert!(got.restarted);
        assert_eq!(got.events, vec![epoch(1), epoch(2), epoch(7), epoch(8)]);

        // Removed, then written anew.
        fs::remove_file(&path).unwrap();
        assert!(f.poll().restarted);
        append(&path, &line(&epoch(9)));
        let got = f.poll();
        assert!(!got.restarted, "the restart was already said");
        assert_eq!(got.events, vec![epoch(9)]);
    }

    #[test]
    fn other_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.log");
        append(
            &path,
            &format!(
                "warning: something from libtorch\n{}\n{{\"event\":\"from_the_future\"}}\n",
                line(&epoch(4)).trim_end()
            ),
        );
        let got = EventFollower::new(&path).poll();
        assert_eq!(got.events, vec![epoch(4)]);
        assert_eq!(got.skipped, 2);
    }
}
