//! A TCP proxy in front of PostgreSQL that a test can break on purpose:
//! refuse connections and close them (the database is down), stop
//! forwarding while keeping the sockets open (a half-open network), or
//! let one statement commit and lose its answer.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pass everything through.
    Forward,
    /// Close every connection and every new one at once.
    Cut,
    /// Forward nothing and close nothing: connections hang.
    Stall,
}

/// What a run of server messages held back by the trap amounts to.
enum Scan {
    /// No `ReadyForQuery` yet.
    Incomplete,
    /// A bound statement completed (`BindComplete`, then
    /// `CommandComplete`) and the server is idle again: its transaction
    /// committed.
    Committed,
    /// The server is ready again without having run a bound statement:
    /// preparing one, or the simple queries with which sqlx looks up the
    /// custom types (`dropkit_outcome`, …) a statement's answer holds.
    NothingRan,
}

/// Reads PostgreSQL backend messages (type byte, then a length counting
/// itself) from the start of `bytes`.
fn scan(bytes: &[u8]) -> Scan {
    let mut at = 0;
    let mut bound = false;
    let mut ran = false;
    while bytes.len() >= at + 5 {
        let kind = bytes[at];
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        if bytes.len() < at + 1 + len {
            return Scan::Incomplete;
        }
        match kind {
            b'2' => bound = true,
            b'C' if bound => ran = true,
            b'Z' if ran => return Scan::Committed,
            b'Z' => return Scan::NothingRan,
            _ => {}
        }
        at += 1 + len;
    }
    Scan::Incomplete
}

#[derive(Debug, Default)]
struct Trap {
    /// Bytes that, seen going to the server, arm the trap on that
    /// connection.
    marker: Option<Vec<u8>>,
    /// How many times the trap went off.
    sprung: u32,
}

/// The proxy; dropping it stops accepting.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    trap: Arc<Mutex<Trap>>,
}

impl Proxy {
    /// A proxy on an ephemeral port forwarding to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Forward);
        let trap = Arc::new(Mutex::new(Trap::default()));
        let proxy = Self { addr, mode, trap };
        let p = proxy.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if *p.mode.borrow() == Mode::Cut {
                    drop(client);
                    continue;
                }
                let p = p.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        p.pipe(client, server).await;
                    }
                });
            }
        });
        proxy
    }

    /// Switches what the proxy does.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// The next statement whose bytes to the server contain `marker` runs
    /// and commits; its answer is thrown away and the connection closed.
    pub fn lose_answer_to(&self, marker: &str) {
        self.trap.lock().unwrap().marker = Some(marker.as_bytes().to_vec());
    }

    /// How many answers the trap has thrown away.
    pub fn answers_lost(&self) -> u32 {
        self.trap.lock().unwrap().sprung
    }

    async fn pipe(&self, client: TcpStream, server: TcpStream) {
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let mut mode = self.mode.subscribe();
        let mut trapped = false;
        let mut swallowed: Vec<u8> = Vec::new();
        let (mut up, mut down) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        loop {
            let current = *mode.borrow_and_update();
            match current {
                Mode::Cut => return,
                Mode::Stall => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                Mode::Forward => {}
            }
            tokio::select! {
                changed = mode.changed() => if changed.is_err() { return },
                n = cr.read(&mut up) => {
                    let Ok(n) = n else { return };
                    if n == 0 { return }
                    {
                        let mut trap = self.trap.lock().unwrap();
                        if let Some(marker) = &trap.marker
                            && up[..n].windows(marker.len()).any(|w| w == marker.as_slice())
                        {
                            trap.marker = None;
                            trapped = true;
                        }
                    }
                    if sw.write_all(&up[..n]).await.is_err() { return }
                }
                n = sr.read(&mut down) => {
                    let Ok(n) = n else { return };
                    if n == 0 { return }
                    if trapped {
                        // Hold the answer back until the server says the
                        // statement ran and is done (committed): then hang
                        // up instead of passing it on. Answers to steps
                        // that run nothing (preparing the statement) pass.
                        swallowed.extend_from_slice(&down[..n]);
                        match scan(&swallowed) {
                            Scan::Incomplete => continue,
                            Scan::Committed => {
                                self.trap.lock().unwrap().sprung += 1;
                                return;
                            }
                            Scan::NothingRan => {
                                if cw.write_all(&swallowed).await.is_err() { return }
                                swallowed.clear();
                                continue;
                            }
                        }
                    }
                    if cw.write_all(&down[..n]).await.is_err() { return }
                }
            }
        }
    }
}

/// Where PostgreSQL listens, from `pool`'s options.
pub fn server_addr(options: &sqlx::postgres::PgConnectOptions) -> SocketAddr {
    let host = options.get_host();
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{}", options.get_port()).parse().unwrap()
}
