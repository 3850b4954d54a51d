//! The socket under a client's own PostgreSQL connection, watched for readability only, and
//! shared by the connection's driver (tokio-postgres's `Connection`, through [`ReadStream`])
//! and the session's exchanges (through [`Line`], which borrows it for one exchange at a time;
//! see [`super::wire`]).
//!
//! tokio registers a socket for reading and writing at once, and on a Unix socket the server's
//! read of a request makes the client's socket writable again: with one round trip per
//! statement (`--no-pipeline`) about a fifth of the runtime's wake-ups carried nothing but
//! `EPOLLOUT` (measured with `strace -e epoll_wait`), each a context switch pgbench does not
//! make. Requests are small, so a write almost never blocks: this stream writes directly, and
//! only when the kernel refuses (a full send buffer) registers a duplicate of the socket for
//! writability, until the write goes through.
//!
//! It moves bytes and says who may move them; it must not know the protocol. [`Target`]
//! remembers where the socket went, so a cancel request can open a second one to the same
//! server.

use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::SeqCst};
use std::task::{Context, Poll, ready};

use futures::task::AtomicWaker;

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

    fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Socket::Unix(s) => s.shutdown(how),
            Socket::Tcp(s) => s.shutdown(how),
        }
    }

    fn dup(&self) -> io::Result<OwnedFd> {
        match self {
            Socket::Unix(s) => s.as_fd().try_clone_to_owned(),
            Socket::Tcp(s) => s.as_fd().try_clone_to_owned(),
        }
    }
}

/// The socket of one connection, shared by its driver's [`ReadStream`] and the session's
/// [`Line`]: one of them uses it at a time. The session lends it to its [`Line`] for an
/// exchange (see [`super::wire`]) once the driver has read the answer to every request it
/// wrote; the driver's reads and writes wait while it is lent.
#[derive(Debug)]
struct Shared {
    socket: AsyncFd<Socket>,
    /// [`FREE`], [`DRIVER`] (inside a read or write) or [`LENT`].
    state: AtomicU8,
    /// The requests the driver wrote that the server answers with a `ReadyForQuery` (the
    /// start-up message, every `Sync` and every simple `Query`), and those answers it read:
    /// equal, the driver expects nothing more from the socket.
    asked: AtomicU64,
    answered: AtomicU64,
    /// An exchange was abandoned half-way, the line saw the connection fail, or the driver
    /// did (or ended): what is on the socket is no longer what the driver expects, so the
    /// driver ends the connection, and a line does not wait for it.
    broken: AtomicBool,
    /// The driver's waker, while it waits for the line to give the socket back.
    parked: AtomicWaker,
    /// The line's waker, while it waits for the driver to read what it was answered.
    waiting: AtomicWaker,
}

/// Nobody is using the socket.
const FREE: u8 = 0;
/// The driver is inside a read or a write.
const DRIVER: u8 = 1;
/// The line has the socket.
const LENT: u8 = 2;

impl Shared {
    /// Reads into `buf`'s unfilled part, waiting for readability.
    fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
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

    /// Writes from `buf` directly; registers a duplicate of the socket in `writable` for
    /// writability only while the kernel has no room.
    fn poll_send(
        &self,
        writable: &mut Option<AsyncFd<OwnedFd>>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.socket.get_ref().write(buf) {
                Ok(n) => {
                    *writable = None;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if writable.is_none() {
                        let dup = self.socket.get_ref().dup()?;
                        *writable = Some(register(dup, Interest::WRITABLE)?);
                    }
                    let w = writable.as_ref().expect("registered above");
                    let mut guard = ready!(w.poll_write_ready(cx))?;
                    guard.clear_ready();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// The driver's side of the socket (tokio-postgres's `Connection` reads and writes it); see
/// the module's doc.
#[derive(Debug)]
pub struct ReadStream {
    shared: Arc<Shared>,
    /// A duplicate registered for writability while a write waits for room.
    writable: Option<AsyncFd<OwnedFd>>,
    /// The frames the driver wrote and read, followed to count [`Shared::asked`] and
    /// [`Shared::answered`].
    requests: Frames,
    replies: Frames,
}

impl ReadStream {
    fn new(socket: Socket) -> io::Result<ReadStream> {
        Ok(ReadStream {
            shared: Arc::new(Shared {
                socket: register(socket, Interest::READABLE)?,
                state: AtomicU8::new(FREE),
                asked: AtomicU64::new(0),
                answered: AtomicU64::new(0),
                broken: AtomicBool::new(false),
                parked: AtomicWaker::new(),
                waiting: AtomicWaker::new(),
            }),
            writable: None,
            // The driver's first message is the start-up message, which has no type byte.
            requests: Frames::new(true),
            replies: Frames::new(false),
        })
    }

    /// The session's side of the same socket, for its exchanges.
    pub fn line(&self) -> Line {
        Line {
            shared: self.shared.clone(),
            writable: None,
        }
    }

    /// Takes the socket for a read or a write: not while it is lent (the driver is woken when
    /// it comes back), and never again once the connection is broken.
    fn poll_enter(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let shared = &self.shared;
        loop {
            match shared.state.compare_exchange(FREE, DRIVER, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(_) => {
                    // Lent (only the driver itself sets DRIVER).
                    shared.parked.register(cx.waker());
                    if shared.state.load(SeqCst) == LENT {
                        return Poll::Pending;
                    }
                }
            }
        }
        if shared.broken.load(SeqCst) {
            self.leave();
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "an exchange on this connection was abandoned or failed half-way",
            )));
        }
        Poll::Ready(Ok(()))
    }

    /// Gives the socket up after a read or a write, and tells a waiting line when the driver
    /// expects nothing more from it.
    fn leave(&self) {
        let shared = &self.shared;
        shared.state.store(FREE, SeqCst);
        if shared.idle() || shared.broken.load(SeqCst) {
            shared.waiting.wake();
        }
    }

    /// The driver's read or write failed, or the server closed the connection.
    fn fail(&self) {
        self.shared.broken.store(true, SeqCst);
    }
}

impl Drop for ReadStream {
    /// The driver ended: a line must not wait for it.
    fn drop(&mut self) {
        self.fail();
        self.shared.waiting.wake();
    }
}

impl Shared {
    /// The driver expects nothing more from the socket.
    fn idle(&self) -> bool {
        self.answered.load(SeqCst) == self.asked.load(SeqCst)
    }
}

/// Follows a stream of protocol frames given in pieces of any size (a type byte, then a
/// four-byte big-endian length that counts itself, then the body) and reports each frame's
/// type once the whole frame has passed. The stream's framing is all it knows of the protocol.
#[derive(Debug)]
struct Frames {
    /// The header read so far: the type byte (unless the frame has none) and the length.
    header: [u8; 5],
    have: usize,
    /// The body left to pass of the current frame.
    body: usize,
    /// The current frame's type; 0 for one without a type byte.
    kind: u8,
    /// The next frame has no type byte (the start-up message).
    untyped: bool,
}

impl Frames {
    fn new(untyped_first: bool) -> Frames {
        Frames {
            header: [0; 5],
            have: 0,
            body: 0,
            kind: 0,
            untyped: untyped_first,
        }
    }

    fn feed(&mut self, mut bytes: &[u8], mut ended: impl FnMut(u8)) {
        while !bytes.is_empty() {
            if self.body > 0 {
                let n = self.body.min(bytes.len());
                self.body -= n;
                bytes = &bytes[n..];
                if self.body == 0 {
                    ended(self.kind);
                }
                continue;
            }
            let size = if self.untyped { 4 } else { 5 };
            let n = (size - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == size {
                let at = size - 4;
                let len = u32::from_be_bytes(self.header[at..size].try_into().expect("4 bytes"));
                self.kind = if self.untyped { 0 } else { self.header[0] };
                self.untyped = false;
                self.have = 0;
                self.body = (len as usize).saturating_sub(4);
                if self.body == 0 {
                    ended(self.kind);
                }
            }
        }
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
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_enter(cx))?;
        let this = &mut *self;
        let before = buf.filled().len();
        let read = this.shared.poll_recv(cx, buf);
        match &read {
            Poll::Ready(Ok(())) if buf.filled().len() == before => this.fail(),
            Poll::Ready(Ok(())) => {
                let answered = &this.shared.answered;
                this.replies.feed(&buf.filled()[before..], |kind| {
                    if kind == b'Z' {
                        answered.fetch_add(1, SeqCst);
                    }
                });
            }
            Poll::Ready(Err(_)) => this.fail(),
            Poll::Pending => {}
        }
        this.leave();
        read
    }
}

impl AsyncWrite for ReadStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_enter(cx))?;
        let this = &mut *self;
        let written = this.shared.poll_send(&mut this.writable, cx, buf);
        match &written {
            Poll::Ready(Ok(n)) => {
                let asked = &this.shared.asked;
                this.requests.feed(&buf[..*n], |kind| {
                    // The start-up message, Sync and Query are each answered by a ReadyForQuery.
                    if matches!(kind, 0 | b'S' | b'Q') {
                        asked.fetch_add(1, SeqCst);
                    }
                });
            }
            Poll::Ready(Err(_)) => this.fail(),
            Poll::Pending => {}
        }
        this.leave();
        written
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(
            self.shared
                .socket
                .get_ref()
                .shutdown(std::net::Shutdown::Write),
        )
    }
}

/// The session's side of the socket: lent to it for one exchange at a time ([`Line::lend`]),
/// while the driver has nothing in flight.
#[derive(Debug)]
pub struct Line {
    shared: Arc<Shared>,
    writable: Option<AsyncFd<OwnedFd>>,
}

impl Line {
    /// Takes the socket from the driver, once the driver has read the answer to every request
    /// it wrote, until the lease is dropped. A lease dropped before [`Lease::done`] (an exchange
    /// abandoned half-way, or one that saw the connection fail) leaves the connection broken:
    /// the driver then ends it.
    pub async fn lend(&mut self) -> Lease<'_> {
        let shared = &self.shared;
        let lent = std::future::poll_fn(|cx| {
            loop {
                if shared.broken.load(SeqCst) {
                    return Poll::Ready(false);
                }
                if !shared.idle() {
                    // The driver reads the rest (a request's answer past what its caller
                    // awaited, such as the ReadyForQuery after a query's rows) and wakes us.
                    shared.waiting.register(cx.waker());
                    if !shared.idle() && !shared.broken.load(SeqCst) {
                        return Poll::Pending;
                    }
                    continue;
                }
                match shared.state.compare_exchange(FREE, LENT, SeqCst, SeqCst) {
                    Ok(_) => return Poll::Ready(true),
                    // The driver is inside a read or write that finds nothing: a few
                    // instructions, on another thread.
                    Err(_) => std::thread::yield_now(),
                }
            }
        })
        .await;
        Lease {
            line: self,
            lent,
            done: false,
        }
    }
}

/// The socket lent to a [`Line`]; see [`Line::lend`].
pub struct Lease<'l> {
    line: &'l mut Line,
    /// False: the connection was broken, and nothing was lent.
    lent: bool,
    done: bool,
}

impl Lease<'_> {
    /// Appends what the socket has to `buf`, waiting for it; 0 at the end of the stream.
    pub async fn read(&mut self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        buf.reserve(READ_SIZE);
        let shared = &self.line.shared;
        let n = std::future::poll_fn(|cx| {
            let mut rb = ReadBuf::uninit(buf.spare_capacity_mut());
            ready!(shared.poll_recv(cx, &mut rb))?;
            Poll::Ready(Ok::<_, io::Error>(rb.filled().len()))
        })
        .await?;
        // SAFETY: `poll_recv` initialised these `n` bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
        Ok(n)
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        let line = &mut *self.line;
        while !buf.is_empty() {
            let n = std::future::poll_fn(|cx| line.shared.poll_send(&mut line.writable, cx, buf))
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Whether the socket is the line's: false when the connection is broken.
    pub fn lent(&self) -> bool {
        self.lent
    }

    /// The exchange ended with the protocol in step: the driver may have the socket back.
    pub fn done(mut self) {
        self.done = true;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let shared = &self.line.shared;
        if !self.done {
            // The server's answers can no longer be followed: the connection is closed now,
            // so that the server ends the session (and rolls back its transaction) as soon as
            // it answers, rather than when the session is dropped.
            shared.broken.store(true, SeqCst);
            let _ = shared.socket.get_ref().shutdown(std::net::Shutdown::Both);
        }
        if self.lent {
            shared.state.store(FREE, SeqCst);
            if let Some(driver) = shared.parked.take() {
                driver.wake();
            }
        }
    }
}

/// How much room a read asks for: an exchange's replies are a few hundred bytes, and a
/// thousand connections keep a buffer each (a larger answer is read in several reads).
const READ_SIZE: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames' types, fed `step` bytes at a time.
    fn types(bytes: &[u8], untyped_first: bool, step: usize) -> Vec<u8> {
        let mut frames = Frames::new(untyped_first);
        let mut seen = Vec::new();
        for piece in bytes.chunks(step) {
            frames.feed(piece, |kind| seen.push(kind));
        }
        seen
    }

    #[test]
    fn frames_are_followed_across_pieces_of_any_size() {
        let mut bytes = Vec::new();
        // A start-up message: no type byte, length 9 (itself and five bytes of body).
        bytes.extend_from_slice(&[0, 0, 0, 9, 1, 2, 3, 4, 5]);
        // Sync: no body.
        bytes.extend_from_slice(b"S\0\0\0\x04");
        // A query of three bytes.
        bytes.extend_from_slice(b"Q\0\0\0\x07ab\0");
        for step in 1..=bytes.len() {
            assert_eq!(types(&bytes, true, step), [0, b'S', b'Q'], "step {step}");
        }
        // ReadyForQuery: one byte of body, reported only once it has passed.
        let ready = b"Z\0\0\0\x05I";
        assert!(types(&ready[..5], false, 5).is_empty());
        assert_eq!(types(ready, false, 1), [b'Z']);
    }
}
