//! The seeded fault schedule: every 0.2–2 s, one of connection cut, one-way block, latency
//! spike, member crash and restart, member stall, clock jump (everyone: a suspended VM),
//! server clock jump, client partition, or server-side expiry of a cut-off client's session.
//! Faults that last are undone by a task of their own; everything is healed after the phase.

use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::net::{self, Shared};
use crate::record::{SharedRecord, lock as rec};
use crate::rng::SimRng;
use crate::run::{CLIENTS, MEMBERS};

/// Injects faults for `phase`; returns what it did (for the failure report).
pub async fn inject(
    world: Shared,
    record: SharedRecord,
    mut rng: SimRng,
    phase: Duration,
) -> Vec<String> {
    let started = Instant::now();
    let mut done = Vec::new();
    while started.elapsed() < phase {
        sleep(Duration::from_millis(rng.range(200, 2000))).await;
        let at = started.elapsed().as_millis();
        let client = rng.below(CLIENTS);
        let member = rng.below(MEMBERS);
        let lasting = Duration::from_millis(rng.range(200, 6000));
        let what = match rng.below(10) {
            0 | 1 => {
                let mut w = net::lock(&world);
                let conns = w.connections();
                if conns.is_empty() {
                    continue;
                }
                let (conn, c, m) = conns[rng.below(conns.len())];
                w.cut(conn);
                format!("cut conn {conn} (client {c}, member {m})")
            }
            2 => {
                let up = rng.chance(50);
                set_link(&world, client, member, up, true);
                undo_later(world.clone(), lasting, move |w| {
                    let link = w.links.entry((client, member)).or_default();
                    if up {
                        link.block_up = false;
                    } else {
                        link.block_down = false;
                    }
                });
                format!(
                    "block {} client {client} member {member} for {lasting:?}",
                    if up { "c->s" } else { "s->c" }
                )
            }
            3 => {
                net::lock(&world).latency_ms = (50, 800);
                undo_later(world.clone(), lasting, |w| w.latency_ms = (1, 20));
                format!("latency 50-800 ms for {lasting:?}")
            }
            4 => {
                let all = rng.chance(20);
                let targets: Vec<usize> = if all {
                    (0..MEMBERS).collect()
                } else {
                    vec![member]
                };
                {
                    let mut w = net::lock(&world);
                    for m in &targets {
                        w.crash(*m);
                    }
                }
                let restart = targets.clone();
                undo_later(world.clone(), lasting, move |w| {
                    for m in &restart {
                        if !w.members[*m].up {
                            w.restart(*m);
                        }
                    }
                });
                format!("crash members {targets:?} for {lasting:?}")
            }
            5 => {
                {
                    let mut w = net::lock(&world);
                    w.members[member].stalled = true;
                    w.faults_changed();
                }
                undo_later(world.clone(), lasting, move |w| {
                    w.members[member].stalled = false;
                    w.faults_changed();
                });
                format!("stall member {member} for {lasting:?}")
            }
            6 => {
                let jump = Duration::from_millis(rng.range(500, 6000));
                tokio::time::advance(jump).await;
                format!("clock jump of {jump:?} (everyone)")
            }
            7 => {
                let jump = rng.range(500, 3000);
                net::lock(&world).server_clock_offset_ms += i64::try_from(jump).unwrap_or(0);
                format!("server clock jump of {jump} ms")
            }
            _ => {
                // Cut the client off every member; sometimes the servers expire its session
                // meanwhile (as the leader would after the timeout).
                for m in 0..MEMBERS {
                    set_link(&world, client, m, true, true);
                    set_link(&world, client, m, false, true);
                }
                let expire = rng.chance(40);
                if expire {
                    let session = rec(&record).clients[client].session;
                    let mut w = net::lock(&world);
                    let now = w.now();
                    let out = w.ensemble.expire(session, now);
                    w.route(out);
                }
                undo_later(world.clone(), lasting, move |w| {
                    for m in 0..MEMBERS {
                        w.links.remove(&(client, m));
                    }
                });
                format!(
                    "partition client {client} for {lasting:?}{}",
                    if expire {
                        ", session expired on the servers"
                    } else {
                        ""
                    }
                )
            }
        };
        net::lock(&world).note(format!("fault: {what}"));
        done.push(format!("{at:>6} ms: {what}"));
    }
    done
}

fn set_link(world: &Shared, client: usize, member: usize, up: bool, blocked: bool) {
    let mut w = net::lock(world);
    let link = w.links.entry((client, member)).or_default();
    if up {
        link.block_up = blocked;
    } else {
        link.block_down = blocked;
    }
    w.faults_changed();
}

fn undo_later(world: Shared, after: Duration, undo: impl FnOnce(&mut net::World) + Send + 'static) {
    tokio::spawn(async move {
        sleep(after).await;
        let mut w = net::lock(&world);
        undo(&mut w);
        w.faults_changed();
    });
}
