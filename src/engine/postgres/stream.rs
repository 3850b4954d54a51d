//! The socket under a client's own PostgreSQL connection, watched for readability only.
//!
//! tokio registers a socket for reading and writing at once, and on a Unix socket the server's
//! read of a request makes the client's socket writable again: with one round trip per
//! statement (`--no-pipeline`) about a fifth of the runtime's wake-ups carried nothing but
//! `EPOLLOUT` (measured with `strace -e epoll_wait`), each a context switch pgbench does not
//! make. Requests are small, so a write almost never blocks: this stream writes directly, and
//! only when the kernel refuses (a full send buffer) registers a duplicate of the socket for
//! writability, until the write goes through.
//!
//! It moves bytes; it must not know the protocol. [`Target`] remembers where the socket went,
//! so a cancel request can open a second one to the same server.

use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use nix::libc;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio_postgres::config::Host;

/// Where a connection's socket goes: a Unix socket file, or a TCP host and port.
#[derive(Debug, Clone)]
pub enum Target {
    Unix(PathBuf),
    Tcp(String, u16),
}

impl Target {
    /// Every place the config names, in order (its hosts with their ports).
    pub fn all(config: &tokio_postgres::Config) -> Vec<Target> {
        let ports = config.get_ports();
        config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = match ports {
                    [] => 5432,
                    [one] => *one,
                    many => many.get(i).copied().unwrap_or(5432),
                };
                match host {
                    Host::Unix(dir) => Target::Unix(dir.join(format!(".s.PGSQL.{port}"))),
                    Host::Tcp(name) => Target::Tcp(name.clone(), port),
                }
            })
            .collect()
    }

    /// Opens a socket to it.
    pub async fn open(&self) -> io::Result<ReadStream> {
        let socket = match self {
            Target::Unix(path) => {
                Socket::Unix(tokio::net::UnixStream::connect(path).await?.into_std()?)
            }
            Target::Tcp(host, port) => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Socket::Tcp(s.into_std()?)
            }
        };
        ReadStream::new(socket)
    }
}

/// A non-blocking socket of either kind.
#[derive(Debug)]
enum Socket {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Socket::Unix(s) => s.as_raw_fd(),
            Socket::Tcp(s) => s.as_raw_fd(),
        }
    }
}

impl Socket {
    /// Reads into memory that need not be initialised: `recv(2)` only writes to it. (The
    /// driver's read buffer is 8 KiB of spare capacity, uninitialised at every read: through
    /// `Read::read` it was zeroed first, about 4 KiB per round trip.)
    fn read_uninit(&self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
        // SAFETY: the pointer and length are those of `buf`, which is writable for its whole
        // length; recv writes at most that many bytes and reads none of them.
        let n = unsafe { libc::recv(self.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => (&*s).write(buf),
            Socket::Tcp(s) => (&*s).write(buf),
        }
    }

    fn shutdown(&self) -> io::Result<()> {
        match self {
            Socket::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Socket::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }

    fn dup(&self) -> io::Result<OwnedFd> {
        match self {
            Socket::Unix(s) => s.as_fd().try_clone_to_owned(),
            Socket::Tcp(s) => s.as_fd().try_clone_to_owned(),
        }
    }
}

/// A socket registered with the runtime for readability; see the module's doc.
#[derive(Debug)]
pub struct ReadStream {
    socket: AsyncFd<Socket>,
    /// A duplicate registered for writability while a write waits for room.
    writable: Option<AsyncFd<OwnedFd>>,
}

impl ReadStream {
    fn new(socket: Socket) -> io::Result<ReadStream> {
        Ok(ReadStream {
            socket: register(socket, Interest::READABLE)?,
            writable: None,
        })
    }
}

/// Registers a descriptor that `inner` owns with the runtime, for `interest` only.
fn register<T: AsRawFd>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: `inner` owns its descriptor (a std socket or an `OwnedFd`) and the `AsyncFd`
    // owns `inner`, so the descriptor stays open and the same for the registration's lifetime;
    // nothing here swaps it (only `get_ref` is used).
    unsafe { AsyncFd::register_with_interest(inner, interest) }.map_err(|e| e.into_parts().1)
}

impl AsyncRead for ReadStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.socket.poll_read_ready(cx))?;
            // SAFETY: nothing is written to the unfilled part but by `read_uninit`, and only the
            // `n` bytes it reports read are marked initialised.
            let unfilled = unsafe { buf.unfilled_mut() };
            let len = unfilled.len();
            match guard.try_io(|s| s.get_ref().read_uninit(unfilled)) {
                Ok(Ok(n)) => {
                    // A short read drained the socket: the next read waits for the next event
                    // instead of asking the kernel once more to hear EAGAIN (as tokio's own
                    // streams do).
                    if n > 0 && n < len {
                        guard.clear_ready();
                    }
                    // SAFETY: recv wrote these `n` bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for ReadStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.socket.get_ref().write(buf) {
                Ok(n) => {
                    self.writable = None;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.writable.is_none() {
                        let dup = self.socket.get_ref().dup()?;
                        self.writable = Some(register(dup, Interest::WRITABLE)?);
                    }
                    let w = self.writable.as_ref().expect("registered above");
                    let mut guard = ready!(w.poll_write_ready(cx))?;
                    guard.clear_ready();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.socket.get_ref().shutdown())
    }
}
