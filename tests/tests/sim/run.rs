//! One simulated run: three members, three clients doing reads, writes and watches, a
//! seeded schedule of faults, then healing, settling and the checks.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep};
use zk_client::{AddWatchMode, Client, CreateMode, CreateOptions, Error, EventType, SessionState};
use zk_server_lite::core::CoreConfig;

use crate::ensemble::Standalone;
use crate::net::{self, NetEvent, Shared, World};
use crate::record::{ClientRec, SharedRecord, WatchRec, lock as rec};
use crate::rng::SimRng;

pub const MEMBERS: usize = 3;
pub const CLIENTS: usize = 3;
const TICK_MS: i64 = 200;
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
/// How long faults are injected.
const FAULT_PHASE: Duration = Duration::from_secs(20);

/// What a run found.
pub struct Outcome {
    pub violations: Vec<String>,
    pub trace: Vec<String>,
    pub ops: u64,
    pub faults: Vec<String>,
}

/// Runs `seed` on a fresh single-threaded runtime with paused time.
pub fn run(seed: u64) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(scenario(seed))
}

fn w(world: &Shared) -> std::sync::MutexGuard<'_, World> {
    net::lock(world)
}

async fn scenario(seed: u64) -> Outcome {
    let mut cfg = CoreConfig::with_tick(TICK_MS);
    cfg.max_session_timeout = 60_000;
    let ensemble = Standalone::new(MEMBERS, cfg, World::now_at_start());
    let world = World::new(Box::new(ensemble), MEMBERS, seed);
    let record: SharedRecord = Arc::default();
    rec(&record).clients = (0..CLIENTS).map(|_| ClientRec::default()).collect();

    // The servers' ticks.
    let ticker = {
        let world = world.clone();
        tokio::spawn(async move {
            loop {
                sleep(Duration::from_millis(TICK_MS as u64)).await;
                let mut w = net::lock(&world);
                let now = w.now();
                let out = w.ensemble.tick(now);
                w.route(out);
            }
        })
    };

    let hosts: Vec<String> = (0..MEMBERS)
        .map(|m| net::member_addr(m).to_string())
        .collect();
    let connect_string = hosts.join(",");
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let client = Client::builder(connect_string.clone())
            .session_timeout(SESSION_TIMEOUT)
            .connect_timeout(Duration::from_secs(60))
            .random_seed(seed.wrapping_mul(31).wrapping_add(c as u64))
            .connector(net::connector(world.clone(), c))
            .connect()
            .await;
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                return Outcome {
                    violations: vec![format!("client {c} could not connect: {e}")],
                    trace: w(&world).trace.clone(),
                    ops: 0,
                    faults: Vec::new(),
                };
            }
        };
        {
            let mut r = rec(&record);
            r.clients[c].session = client.session_id();
            r.clients[c].timeout_ms = client.session_timeout().as_millis() as u64;
        }
        clients.push(client);
    }
    // Setup: the shared nodes, one ephemeral per client, a persistent watch on /w.
    let setup = async {
        let persistent = CreateOptions::new(CreateMode::Persistent);
        clients[0].create("/w", b"0", &persistent).await?;
        clients[0].create("/q", b"", &persistent).await?;
        let ephemeral = CreateOptions::new(CreateMode::Ephemeral);
        for (c, client) in clients.iter().enumerate() {
            client.create(&format!("/eph-{c}"), b"", &ephemeral).await?;
        }
        let watcher = clients[0].add_watch("/w", AddWatchMode::Persistent).await?;
        let (_, stat) = clients[0].get_data("/w").await?;
        Ok::<_, Error>((watcher, stat.version))
    };
    let (mut persistent, version) = match setup.await {
        Ok(x) => x,
        Err(e) => {
            return Outcome {
                violations: vec![format!("setup failed: {e}")],
                trace: w(&world).trace.clone(),
                ops: 0,
                faults: Vec::new(),
            };
        }
    };
    rec(&record).clients[0].persistent = Some((version, 0));
    let persistent_task = {
        let record = record.clone();
        tokio::spawn(async move {
            while let Some(event) = persistent.next().await {
                if event.event_type == EventType::NodeDataChanged {
                    let mut r = rec(&record);
                    if let Some((_, n)) = &mut r.clients[0].persistent {
                        *n += 1;
                    }
                }
            }
        })
    };
    // Session states, and the Lost check at the moment it is reported.
    for (c, client) in clients.iter().enumerate() {
        let mut changes = client.state_changes();
        let record = record.clone();
        let world = world.clone();
        let session = client.session_id();
        let timeout = client.session_timeout();
        tokio::spawn(async move {
            while let Some(state) = changes.next().await {
                let mut r = rec(&record);
                r.clients[c].states.push((Instant::now(), state));
                if state == SessionState::Lost(zk_client::LostReason::Expired) {
                    let w = net::lock(&world);
                    let alive = w.ensemble.session_deadline(session).is_some();
                    let heard = w.last_heard.get(&c).copied();
                    let silent = heard.is_none_or(|at| at.elapsed() >= timeout);
                    if alive && !silent {
                        r.violation(format!(
                            "client {c}: reported Lost(Expired) while its session was alive on the servers and it had heard from one {:?} ago (timeout {timeout:?})",
                            heard.map(|at| at.elapsed())
                        ));
                    }
                }
            }
        });
    }

    let mut rng = SimRng::new(seed);
    let workloads: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(c, client)| {
            tokio::spawn(workload(
                client.clone(),
                c,
                record.clone(),
                world.clone(),
                SimRng::new(rng.next_u64()),
            ))
        })
        .collect();
    let faults = crate::faults::inject(
        world.clone(),
        record.clone(),
        SimRng::new(rng.next_u64()),
        FAULT_PHASE,
    )
    .await;
    for workload in workloads {
        let _ = workload.await;
    }

    // Heal everything and let the clients come back.
    {
        let mut w = w(&world);
        w.links.clear();
        w.latency_ms = (1, 20);
        for m in 0..MEMBERS {
            if !w.members[m].up || w.members[m].stalled {
                w.restart(m);
            }
        }
        w.faults_changed();
        w.note("healed".into());
    }
    let settle = async {
        for client in &clients {
            let mut state = client.state_watch();
            let _ = state
                .wait_for(|s| s.is_connected() || s.is_terminal())
                .await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(120), settle)
        .await
        .is_err()
    {
        rec(&record).violation("a client did not reconnect within 120 s after healing".into());
    }
    // Notifications of re-armed watches, and requests still queued.
    sleep(SESSION_TIMEOUT * 2).await;

    end_checks(&clients, &world, &record);
    let ops: u64 = rec(&record).clients.iter().map(|c| c.issued).sum();
    for client in &clients {
        if tokio::time::timeout(Duration::from_secs(30), client.close())
            .await
            .is_err()
        {
            rec(&record).violation("close() did not return within 30 s".into());
        }
    }
    ticker.abort();
    persistent_task.abort();
    let mut record = rec(&record);
    record.check_histories();
    let trace = w(&world).trace.clone();
    Outcome {
        violations: std::mem::take(&mut record.violations),
        trace,
        ops,
        faults,
    }
}

fn end_checks(clients: &[Client], world: &Shared, record: &SharedRecord) {
    let w = w(world);
    let mut r = rec(record);
    let mut found = Vec::new();
    for (c, client) in clients.iter().enumerate() {
        let cr = &r.clients[c];
        let session = cr.session;
        let state = client.state();
        // Every request completed (replies are never dropped on a reconnect).
        if (cr.completions.len() as u64) < cr.issued {
            found.push(format!(
                "client {c}: {} of {} requests never completed",
                cr.issued - cr.completions.len() as u64,
                cr.issued
            ));
        }
        // No silent replacement: once the session exists, every handshake names it.
        let mut established = false;
        for (at, event) in &w.events {
            match event {
                NetEvent::Session { client, session: s } if *client == c && *s != 0 => {
                    established = true;
                }
                NetEvent::Handshake { client, asked, .. }
                    if *client == c && established && *asked != session =>
                {
                    found.push(format!(
                        "client {c}: handshake {:?} before the end asked for session {asked:#x}, not its session {session:#x}",
                        at.elapsed()
                    ));
                }
                _ => {}
            }
        }
        if client.session_id() != session {
            found.push(format!("client {c}: session id changed"));
        }
        // Nothing in the session after it was reported lost.
        if let Some((lost_at, _)) = cr.states.iter().find(|(_, s)| s.is_terminal()) {
            for (at, event) in &w.events {
                // Bytes written before the client gave up may still arrive (late): only what
                // it wrote afterwards counts.
                let acted = match event {
                    NetEvent::Request {
                        client,
                        session: s,
                        sent,
                    } => *client == c && *s == session && sent > lost_at,
                    NetEvent::Handshake { client, sent, .. } => *client == c && sent > lost_at,
                    NetEvent::Session { .. } => false,
                };
                if acted {
                    found.push(format!(
                        "client {c}: acted in its session {:?} after reporting it lost ({event:?}, lost at {:?} before the end)",
                        at.duration_since(*lost_at), lost_at.elapsed()
                    ));
                    break;
                }
            }
        }
        let alive_on_servers = w.ensemble.session_deadline(session).is_some();
        if state.is_terminal() {
            continue;
        }
        // Lost when (and, checked as it happens, only when) the session cannot be alive.
        if !alive_on_servers {
            found.push(format!(
                "client {c}: the servers expired session {session:#x}, but the client is {state:?}"
            ));
            continue;
        }
        if !state.is_connected() {
            found.push(format!("client {c}: {state:?} after healing"));
        }
        // The ephemerals of a live session survive.
        match w.ensemble.stat(&format!("/eph-{c}")) {
            Some(stat) if stat.ephemeral_owner == session => {}
            other => found.push(format!(
                "client {c}: session {session:#x} is live but /eph-{c} is {other:?}"
            )),
        }
        // Re-armed watches fire for changes made while disconnected.
        for watch in &cr.watches {
            if watch.fired.is_some() {
                continue;
            }
            let changed = w
                .ensemble
                .stat(&watch.path)
                .is_none_or(|stat| stat.version > watch.armed_version);
            if changed {
                found.push(format!(
                    "client {c}: watch on {} armed at version {} never fired, the node changed since ({:?})",
                    watch.path,
                    watch.armed_version,
                    w.ensemble.stat(&watch.path).map(|s| s.version)
                ));
            }
        }
        // A persistent watch never delivers more events than there were changes.
        if let Some((armed, events)) = cr.persistent {
            let now = w.ensemble.stat("/w").map_or(armed, |s| s.version);
            let changes = u64::try_from(now - armed).unwrap_or(0);
            if events > changes {
                found.push(format!(
                    "client {c}: the persistent watch delivered {events} events for {changes} changes"
                ));
            }
        }
    }
    r.violations.extend(found);
}

/// A client's requests: writes, reads, watches and pipelined bursts, at random pauses.
///
/// Each request is issued from its own task, which then awaits it at once: every task waits
/// before the session can answer, so the tasks run (and record) in the order the session
/// answers. (Issued here and awaited in a task spawned later, a request failed together
/// with earlier ones would be recorded first: its task was queued before their wake-ups.)
/// A request that fails at the call (the session already ended) is resolved at once, after
/// every earlier one by construction, but its task may run before theirs: it is recorded as
/// `immediate` and left out of the order check.
async fn workload(client: Client, c: usize, record: SharedRecord, world: Shared, mut rng: SimRng) {
    let started = Instant::now();
    while started.elapsed() < FAULT_PHASE {
        sleep(Duration::from_millis(rng.range(10, 400))).await;
        let burst = if rng.chance(15) { 3 } else { 1 };
        for _ in 0..burst {
            match rng.below(6) {
                0 | 1 => {
                    let client = client.clone();
                    let record = record.clone();
                    tokio::spawn(async move {
                        // Issued from its own task, which then awaits at once: the task is waiting before

                        // the session can answer, so tasks run in the order the session answers.

                        let seq = rec(&record).issue(c);

                        let fut = client.set_data("/w", format!("{c}").as_bytes(), None);
                        let (result, immediate) = resolve(fut).await;
                        let mut r = rec(&record);
                        let step = r.complete(c, seq, outcome(&result), immediate);
                        if let Ok(stat) = result {
                            r.stat(c, step, "/w", &stat);
                        }
                    });
                }
                2 => {
                    let client = client.clone();
                    let record = record.clone();
                    tokio::spawn(async move {
                        // Issued from its own task, which then awaits at once: the task is waiting before

                        // the session can answer, so tasks run in the order the session answers.

                        let seq = rec(&record).issue(c);

                        let fut = client.get_data("/w");
                        let (result, immediate) = resolve(fut).await;
                        let mut r = rec(&record);
                        let step = r.complete(c, seq, outcome(&result), immediate);
                        if let Ok((_, stat)) = result {
                            r.stat(c, step, "/w", &stat);
                        }
                    });
                }
                3 => {
                    let client = client.clone();
                    let record = record.clone();
                    let world = world.clone();
                    tokio::spawn(async move {
                        // Issued from its own task, which then awaits at once: the task is waiting before

                        // the session can answer, so tasks run in the order the session answers.

                        let seq = rec(&record).issue(c);

                        let fut = client.get_data_watch("/w");
                        let (result, immediate) = resolve(fut).await;
                        let (watcher, index) = {
                            let mut r = rec(&record);
                            let step = r.complete(c, seq, outcome(&result), immediate);
                            let Ok((_, stat, watcher)) = result else {
                                return;
                            };
                            r.stat(c, step, "/w", &stat);
                            r.clients[c].watches.push(WatchRec {
                                path: "/w".into(),
                                armed_version: stat.version,
                                armed_step: step,
                                fired: None,
                            });
                            (watcher, r.clients[c].watches.len() - 1)
                        };
                        let event = watcher.await;
                        let mut r = rec(&record);
                        r.clients[c].step += 1;
                        let step = r.clients[c].step;
                        let armed = r.clients[c].watches[index].armed_version;
                        r.clients[c].watches[index].fired =
                            Some((step, event.event_type, event.state));
                        if event.event_type == EventType::NodeDataChanged {
                            // No spurious event: the node did change since the watch was left.
                            let version = net::lock(&world).ensemble.stat("/w").map(|s| s.version);
                            if version.is_some_and(|v| v <= armed) {
                                r.violation(format!(
                                    "client {c}: NodeDataChanged for a watch armed at version {armed}, the node is still at {version:?}"
                                ));
                            }
                        }
                    });
                }
                4 => {
                    let client = client.clone();
                    let record = record.clone();
                    tokio::spawn(async move {
                        // Issued from its own task, which then awaits at once: the task is waiting before

                        // the session can answer, so tasks run in the order the session answers.

                        let seq = rec(&record).issue(c);

                        let fut = client.exists("/w");
                        let (result, immediate) = resolve(fut).await;
                        let mut r = rec(&record);
                        let step = r.complete(c, seq, outcome(&result), immediate);
                        if let Ok(Some(stat)) = result {
                            r.stat(c, step, "/w", &stat);
                        }
                    });
                }
                _ => {
                    let client = client.clone();
                    let record = record.clone();
                    tokio::spawn(async move {
                        // Issued from its own task, which then awaits at once: the task is waiting before

                        // the session can answer, so tasks run in the order the session answers.

                        let seq = rec(&record).issue(c);

                        let fut = client.create("/q/n-", b"", CreateMode::PersistentSequential);
                        let (result, immediate) = resolve(fut).await;
                        rec(&record).complete(c, seq, outcome(&result), immediate);
                    });
                }
            }
        }
    }
}

fn outcome<T>(result: &Result<T, Error>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

/// Awaits `fut`; `true` if it was ready at its first poll (failed at the call).
async fn resolve<F: Future>(fut: F) -> (F::Output, bool) {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(output) => (output, true),
        std::task::Poll::Pending => (fut.await, false),
    }
}
