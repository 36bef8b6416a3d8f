//! Who is calling over loopback TCP: the peer socket's owner and inode from the kernel's
//! sock_diag (else `/proc/net/tcp{,6}`), and the program holding it from `/proc/<pid>/fd` (TCP
//! has no `SO_PEERCRED`; this is what identd does). Looked up once per client connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI32, Ordering};

/// The calling process, as far as it could be found.
#[derive(Debug, Default, Clone)]
pub(crate) struct Peer {
    /// The owner of the peer socket.
    pub uid: Option<u32>,
    /// `pid <pid> <executable>`, as the agent records callers.
    pub caller: Option<String>,
}

/// The process found last: a client usually opens many connections, so it is tried first.
static LAST_PID: AtomicI32 = AtomicI32::new(0);

/// The owner and program of the client socket `peer` connected to our `local` address.
pub(crate) fn lookup(peer: SocketAddr, local: SocketAddr) -> Peer {
    let found = crate::sockdiag::lookup(peer, local)
        .map(|(uid, inode)| (Some(uid), Some(inode)))
        .or_else(|| from_proc(peer, local));
    let Some((uid, inode)) = found else {
        return Peer::default();
    };
    let caller = inode.filter(|i| *i != 0).and_then(owner).map(|pid| {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "?".into());
        format!("pid {pid} {exe}")
    });
    Peer { uid, caller }
}

/// `/proc/net/tcp{,6}`'s owner and inode of the socket `peer` → `local`: where the kernel has
/// no sock_diag.
fn from_proc(peer: SocketAddr, local: SocketAddr) -> Option<(Option<u32>, Option<u64>)> {
    let table = match peer.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).ok()?;
    let (want_local, want_remote) = (encode(peer), encode(local));
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 9 && f[1] == want_local && f[2] == want_remote)
            .then(|| (f[7].parse::<u32>().ok(), f[9].parse::<u64>().ok()))
    })
}

/// The process holding socket `inode`, among those this user may look into.
fn owner(inode: u64) -> Option<i32> {
    let target = format!("socket:[{inode}]");
    // Newest descriptors first: a client opening many connections at once gets ever higher
    // numbers, so its newest socket is found after a few reads, not after all of them.
    let holds = |pid: i32| {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        let mut numbers: Vec<u32> = fds
            .flatten()
            .filter_map(|fd| fd.file_name().to_str()?.parse().ok())
            .collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        numbers.into_iter().any(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .is_ok_and(|l| l.as_os_str().as_encoded_bytes() == target.as_bytes())
        })
    };
    let last = LAST_PID.load(Ordering::Relaxed);
    if last > 0 && holds(last) {
        return Some(last);
    }
    let pid = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| *pid != last && holds(*pid))?;
    LAST_PID.store(pid, Ordering::Relaxed);
    Some(pid)
}

/// An address as `/proc/net/tcp` prints it: the address's 32-bit words in native byte order,
/// then the port, in hex.
fn encode(addr: SocketAddr) -> String {
    let words: Vec<[u8; 4]> = match addr.ip() {
        IpAddr::V4(ip) => vec![ip.octets()],
        IpAddr::V6(ip) => ip
            .octets()
            .chunks(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
    };
    let mut out: String = words
        .iter()
        .map(|w| format!("{:08X}", u32::from_ne_bytes(*w)))
        .collect();
    out.push_str(&format!(":{:04X}", addr.port()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_behind_a_loopback_connection() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = std::net::TcpListener::bind(addr) else {
                assert!(addr.starts_with('['), "IPv4 loopback is always there");
                continue;
            };
            let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, peer) = listener.accept().unwrap();
            let found = lookup(peer, server.local_addr().unwrap());
            // SAFETY: getuid has no preconditions.
            assert_eq!(found.uid, Some(unsafe { libc::getuid() }), "{addr}");
            let caller = found.caller.expect("the caller is found");
            assert!(
                caller.starts_with(&format!("pid {} ", std::process::id())),
                "{addr}: {caller}"
            );
            drop(client);
        }
    }

    #[test]
    fn proc_net_tcp_agrees_with_sock_diag() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        let local = server.local_addr().unwrap();
        let (uid, inode) = crate::sockdiag::lookup(peer, local).unwrap();
        assert_eq!(from_proc(peer, local), Some((Some(uid), Some(inode))));
        drop(client);
    }

    #[test]
    fn encodes_as_the_kernel_prints() {
        if cfg!(target_endian = "little") {
            assert_eq!(encode("127.0.0.1:8080".parse().unwrap()), "0100007F:1F90");
            assert_eq!(
                encode("[::1]:80".parse().unwrap()),
                "00000000000000000000000001000000:0050"
            );
        }
    }
}
