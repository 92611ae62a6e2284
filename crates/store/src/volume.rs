//! The SQLite data volume: refused at start when it cannot take writes (D8), watched while
//! serving so that a volume turned read-only is noticed before SQLite writes to it (D11).
//!
//! SQLite maps its WAL index (`-shm`) into memory and writes to it on every transaction,
//! reads included. If the volume is remounted read-only under the process, such a write
//! faults and the kernel ends the process with SIGBUS, with no log line. So a task looks at
//! the volume's flags four times a second; once it is read-only the store stops touching
//! the database (every operation answers `503 unavailable`) and says so in the log, and it
//! carries on once the volume is writable again. A remount within the 250 ms before the next
//! look can still end the process: run Tessera under a supervisor that restarts it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Less room than this on the volume is "full": refused at start, not ready while serving.
pub(crate) const MIN_FREE_BYTES: u64 = 1024 * 1024;
/// How often the volume's flags are looked at.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Why the data volume cannot hold the database.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("the data volume of {folder} is read-only: Tessera needs to write its database there")]
    ReadOnly { folder: PathBuf },
    #[error(
        "the data volume of {folder} is full ({free} bytes free, at least {MIN_FREE_BYTES} \
         needed): free some space"
    )]
    Full { folder: PathBuf, free: u64 },
    #[error("cannot write in the data folder {folder}: {source}")]
    NotWritable {
        folder: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether `folder` can take the database's writes: its volume is mounted read-write, has
/// [`MIN_FREE_BYTES`] free, and a file can be written and synced there.
pub(crate) fn check_writable(folder: &Path) -> Result<(), Unusable> {
    check_room(folder)?;
    let probe = folder.join(".tessera-write-check");
    let written = (|| {
        use std::io::Write;
        let mut file = std::fs::File::create(&probe)?;
        file.write_all(&[0; 4096])?;
        file.sync_all()
    })();
    let _ = std::fs::remove_file(&probe);
    written.map_err(|source| match source.raw_os_error() {
        Some(30) => Unusable::ReadOnly {
            folder: folder.to_owned(),
        },
        Some(28) => Unusable::Full {
            folder: folder.to_owned(),
            free: 0,
        },
        _ => Unusable::NotWritable {
            folder: folder.to_owned(),
            source,
        },
    })
}

/// The volume's flags and room, from `statvfs` (no write).
pub(crate) fn check_room(folder: &Path) -> Result<(), Unusable> {
    let Ok(stats) = rustix::fs::statvfs(folder) else {
        // Not knowing is not refusing: the write that follows will tell.
        return Ok(());
    };
    if stats.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return Err(Unusable::ReadOnly {
            folder: folder.to_owned(),
        });
    }
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    if free < MIN_FREE_BYTES {
        return Err(Unusable::Full {
            folder: folder.to_owned(),
            free,
        });
    }
    Ok(())
}

/// Watches the volume while the store lives; dropping it ends the watch.
pub(crate) struct Watch {
    read_only: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Watch {
    /// Starts watching `folder` (on the current runtime, if there is one).
    pub(crate) fn start(folder: PathBuf) -> Self {
        let read_only = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&read_only);
        let task = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            runtime.spawn(async move {
                let mut every = tokio::time::interval(WATCH_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    let now = rustix::fs::statvfs(&folder).is_ok_and(|s| {
                        s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY)
                    });
                    if flag.swap(now, Ordering::SeqCst) != now {
                        if now {
                            tracing::error!(
                                folder = %folder.display(),
                                "the data volume turned read-only: the database is left alone \
                                 (requests answer 503) until it is writable again"
                            );
                        } else {
                            tracing::warn!(folder = %folder.display(), "the data volume is writable again");
                        }
                    }
                }
            })
        });
        Self { read_only, task }
    }

    /// The flag the store looks at before each operation.
    pub(crate) fn read_only(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.read_only)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
