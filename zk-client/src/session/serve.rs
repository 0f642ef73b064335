//! Serving one connection: one `tokio::select!` (biased, so that a simulation replays it)
//! over the socket, the command channel, the [`Machine`](super::machine::Machine)'s next
//! deadline, the reply-coalescing pause and, on a read-only server, the read-write probe.
//! All protocol and timer decisions are the machine's; this file only moves bytes and time.

use std::pin::Pin;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::sleep_until;

use super::coalesce::Coalescer;
use super::connect::probe_read_write;
use super::machine::Wake;
use super::state::Ended;
use super::{READ_RESERVE, Task, at, now};
use crate::transport::{Endpoint, Stream};

/// How many queued commands the serve loop takes in one go.
const COMMAND_BATCH: usize = 256;

type RwProbe = Pin<Box<dyn Future<Output = Option<Endpoint>> + Send>>;

impl Task {
    /// Serves one connection until it breaks or the session ends. On a read-only server it
    /// also probes the other servers (`isro`) and leaves for the first read-write one.
    pub(super) async fn serve(
        &mut self,
        stream: Stream,
        mut inbuf: BytesMut,
        addr: &Endpoint,
        read_only: bool,
    ) -> Ended {
        let (mut reader, mut writer) = tokio::io::split(stream);
        self.machine.go_online(now(), read_only);
        if !inbuf.is_empty()
            && let Err(end) = self.machine.received(now(), &mut inbuf)
        {
            return end;
        }
        let mut rw_probe: Option<RwProbe> = None;
        // The machine's next deadline; the runtime timer is only moved when it changes
        // (when it fired, or when closing starts), not on every read or write.
        let mut deadline = self.machine.poll_timeout();
        let timer = sleep_until(at(deadline));
        tokio::pin!(timer);
        // Reply coalescing (see coalesce.rs): a paused read resumes when this timer fires.
        let mut coalescer = self.config.coalesce.map(Coalescer::new);
        let coalesce = sleep_until(tokio::time::Instant::now());
        tokio::pin!(coalesce);
        let mut paused = false;
        loop {
            if inbuf.capacity() - inbuf.len() < READ_RESERVE / 4 {
                inbuf.reserve(READ_RESERVE);
            }
            let wanted = self.machine.poll_timeout();
            if wanted != deadline {
                deadline = wanted;
                timer.as_mut().reset(at(deadline));
            }
            tokio::select! {
                biased;
                () = &mut coalesce, if paused => paused = false,
                read = reader.read_buf(&mut inbuf), if !paused => match read {
                    Ok(0) => return self.machine.broken("server closed the connection".into()),
                    Err(e) => return self.machine.broken(format!("read failed: {e}")),
                    Ok(n) => {
                        let now = now();
                        let frames_before = self.machine.core.frames_received();
                        let in_flight_before = self.machine.core.in_flight();
                        if let Err(end) = self.machine.received(now, &mut inbuf) {
                            return end;
                        }
                        if let Some(coalescer) = coalescer.as_mut() {
                            let frames = self.machine.core.frames_received() - frames_before;
                            let in_flight = self.machine.core.in_flight();
                            if let Some(pause) = coalescer.after_read(now, n, frames, in_flight_before, in_flight) {
                                paused = true;
                                coalesce.as_mut().reset(tokio::time::Instant::from_std(now + pause));
                            }
                        }
                    }
                },
                written = writer.write_buf(&mut self.machine.core.out), if !self.machine.core.out.is_empty() => match written {
                    Ok(_) => self.machine.sent(now()),
                    Err(e) => return self.machine.broken(format!("write failed: {e}")),
                },
                command = self.rx.recv(), if !self.machine.is_closing() => {
                    let now = now();
                    if let Err(end) = self.machine.command(now, command) {
                        return end;
                    }
                    for _ in 0..COMMAND_BATCH {
                        if self.machine.is_closing() {
                            break;
                        }
                        match self.rx.try_recv() {
                            Ok(command) => {
                                if let Err(end) = self.machine.command(now, Some(command)) {
                                    return end;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                },
                () = &mut timer, if deadline.is_some() => {
                    match self.machine.handle_timeout(now()) {
                        Err(end) => return end,
                        Ok(Some(Wake::ProbeReadWrite)) => {
                            let candidates: Vec<Endpoint> = self
                                .hosts
                                .addresses()
                                .iter()
                                .filter(|a| a.addr != addr.addr)
                                .cloned()
                                .collect();
                            rw_probe = Some(Box::pin(probe_read_write(
                                self.config.connector.clone(),
                                candidates,
                                self.machine.attempt_timeout(self.hosts.len()),
                            )));
                        }
                        Ok(_) => {}
                    }
                    // Re-armed even if the deadline did not move: an elapsed timer would
                    // fire again at once.
                    deadline = self.machine.poll_timeout();
                    timer.as_mut().reset(at(deadline));
                }
                found = async {
                    match rw_probe.as_mut() {
                        Some(probe) => probe.await,
                        None => std::future::pending().await,
                    }
                }, if rw_probe.is_some() => {
                    rw_probe = None;
                    if let Some(rw) = found {
                        tracing::info!(%rw, "read-write server reachable: leaving the read-only one");
                        self.hosts.prefer(rw);
                        return Ended::Lost("moving to a read-write server".into());
                    }
                    self.machine.read_write_probe_failed(now());
                }
            }
        }
    }
}
