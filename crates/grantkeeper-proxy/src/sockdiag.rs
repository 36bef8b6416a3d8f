//! The owner and inode of one TCP socket by its addresses, asked of the kernel over netlink
//! (`NETLINK_SOCK_DIAG`, the interface `ss` uses): one exact lookup instead of reading the whole
//! of `/proc/net/tcp`, which costs milliseconds on a busy machine.

use std::net::{IpAddr, SocketAddr};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const HEADER: usize = 16;
const REQUEST: usize = HEADER + 56;
/// Where `uid` and `inode` sit in an `inet_diag_msg` (after its header and socket id).
const UID_AT: usize = 4 + 48 + 12;

/// `(uid, inode)` of the TCP socket whose local address is `src` and remote address `dst`;
/// `None` when the kernel does not answer (no such socket, or no sock_diag support).
pub(crate) fn lookup(src: SocketAddr, dst: SocketAddr) -> Option<(u32, u64)> {
    let family = match (src.ip(), dst.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => libc::AF_INET,
        (IpAddr::V6(_), IpAddr::V6(_)) => libc::AF_INET6,
        _ => return None,
    };
    let mut req = [0u8; REQUEST];
    req[0..4].copy_from_slice(&(REQUEST as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    let body = &mut req[HEADER..];
    body[0] = family as u8;
    body[1] = libc::IPPROTO_TCP as u8;
    body[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    let id = &mut body[8..56];
    id[0..2].copy_from_slice(&src.port().to_be_bytes());
    id[2..4].copy_from_slice(&dst.port().to_be_bytes());
    put_ip(&mut id[4..20], src.ip());
    put_ip(&mut id[20..36], dst.ip());
    id[40..48].copy_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
    let answer = exchange(&req)?;
    let kind = u16::from_ne_bytes(answer.get(4..6)?.try_into().ok()?);
    if kind == NLMSG_ERROR || kind != SOCK_DIAG_BY_FAMILY {
        return None;
    }
    let msg = answer.get(HEADER..)?;
    let uid = u32::from_ne_bytes(msg.get(UID_AT..UID_AT + 4)?.try_into().ok()?);
    let inode = u32::from_ne_bytes(msg.get(UID_AT + 4..UID_AT + 8)?.try_into().ok()?);
    Some((uid, u64::from(inode)))
}

fn put_ip(out: &mut [u8], ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
    }
}

/// Sends one request on a fresh netlink socket and returns the first answer.
fn exchange(req: &[u8]) -> Option<Vec<u8>> {
    // SAFETY: plain socket(2); the descriptor is closed below on every path.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return None;
    }
    let answer = (|| {
        // SAFETY: a zeroed sockaddr_nl is valid; family set, pid 0 addresses the kernel.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `req` and `addr` outlive the call, their lengths are given.
        let sent = unsafe {
            libc::sendto(
                fd,
                req.as_ptr().cast(),
                req.len(),
                0,
                std::ptr::addr_of!(addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent != req.len() as isize {
            return None;
        }
        let timeout = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a timeval of the size given.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::addr_of!(timeout).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let mut buf = vec![0u8; 8192];
        // SAFETY: `buf` is writable for its whole length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        let n = usize::try_from(n).ok()?;
        buf.truncate(n);
        Some(buf)
    })();
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn finds_a_loopback_sockets_owner_and_inode() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = std::net::TcpListener::bind(addr) else {
                continue;
            };
            let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (_server, _) = listener.accept().unwrap();
            let (uid, inode) = lookup(client.local_addr().unwrap(), client.peer_addr().unwrap())
                .expect("the kernel answers");
            // SAFETY: getuid has no preconditions.
            assert_eq!(uid, unsafe { libc::getuid() });
            let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
            let meta = std::fs::metadata(format!("/proc/self/fd/{fd}")).unwrap();
            assert_eq!(inode, meta.ino(), "{addr}");
            // No such socket: no answer.
            let gone: SocketAddr = if addr.starts_with('[') {
                "[::1]:1".parse().unwrap()
            } else {
                "127.0.0.1:1".parse().unwrap()
            };
            assert!(lookup(gone, client.peer_addr().unwrap()).is_none());
        }
    }
}
