//! The quorum and election ports. Today: [`wire`], how the Zab engine's messages look on
//! Apache's wire. The sockets (one connection per pair on the election port, the learner ↔
//! leader connection on the quorum port) come with the node driver.

pub mod wire;
