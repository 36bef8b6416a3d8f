//! The agent's client: one connection to a running agent of this user.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{socket_path, Request, Response};

/// A client of a running agent.
pub struct AgentClient {
    stream: UnixStream,
}

impl AgentClient {
    /// Connects to the agent of the vault in `home`; `None` when no agent runs, or when the
    /// socket's folder or the process answering on it is not this user's (then the caller opens
    /// the vault itself).
    pub fn connect(home: &Path) -> Option<Self> {
        let path = socket_path(home);
        let dir = path.parent()?;
        let checked = if dir == home {
            crate::private::ensure_file(&path)
        } else {
            crate::private::ensure_socket_dir(dir)
        };
        if let Err(e) = checked {
            tracing::warn!(error = %e, "not using the agent");
            return None;
        }
        let stream = UnixStream::connect(&path).ok()?;
        match crate::private::peer(&stream) {
            Some((uid, _)) if uid == crate::private::euid() => Some(Self { stream }),
            other => {
                tracing::warn!(peer = ?other, socket = %path.display(), "not using an agent socket served by another user");
                None
            }
        }
    }

    /// Sends one request and reads the answer, waiting at most `wait` for it (an I/O error of
    /// kind `WouldBlock` or `TimedOut` after that).
    pub fn call(&mut self, req: &Request, wait: Duration) -> std::io::Result<Response> {
        self.stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut line = serde_json::to_string(req).expect("requests serialize");
        line.push('\n');
        self.stream.write_all(line.as_bytes())?;
        // The answer is one line; a token is a few KiB at most.
        let mut reader = BufReader::new((&self.stream).take(1 << 20));
        let mut answer = String::new();
        reader.read_line(&mut answer)?;
        serde_json::from_str(&answer)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}
