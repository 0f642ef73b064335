//! The operations, one file per family. Each method validates its arguments and encodes its
//! request when called (see [`Client`](crate::Client) for the ordering this gives), then
//! returns a `'static` future for the typed result.
//!
//! | file | operations |
//! |---|---|
//! | `create.rs` | [`create`](crate::Client::create) in every mode, with [`CreateOptions`] |
//! | `delete.rs` | [`delete`](crate::Client::delete) |
//! | `data.rs` | [`exists`](crate::Client::exists), [`get_data`](crate::Client::get_data), [`set_data`](crate::Client::set_data), and the `*_watch` forms |
//! | `children.rs` | [`get_children`](crate::Client::get_children) (plain, with stat, with a watch), [`get_all_children_number`](crate::Client::get_all_children_number), [`get_ephemerals`](crate::Client::get_ephemerals) |
//! | `acl.rs` | [`get_acl`](crate::Client::get_acl), [`set_acl`](crate::Client::set_acl) |
//! | `multi.rs` | [`multi`](crate::Client::multi) and the [`Transaction`] builder, [`multi_read`](crate::Client::multi_read) |
//! | `session.rs` | [`sync`](crate::Client::sync), [`add_auth`](crate::Client::add_auth), [`who_am_i`](crate::Client::who_am_i), [`get_config`](crate::Client::get_config), [`reconfig`](crate::Client::reconfig) |
//! | `watches.rs` | [`add_watch`](crate::Client::add_watch), [`remove_watches`](crate::Client::remove_watches), [`check_watches`](crate::Client::check_watches), [`watch_changes`](crate::Client::watch_changes) |
//!
//! Versions are `Option<i32>`: `None` matches any version (`-1` on the wire).

mod acl;
mod children;
mod create;
mod data;
mod delete;
mod multi;
mod session;
mod watches;

pub use create::{CreateFuture, CreateOptions};
pub use multi::{Op, OpResult, ReadOp, ReadResult, Transaction};
pub use session::{CONFIG_NODE, Reconfig};
pub use watches::ChangeStream;

/// `None` → `-1` (any version).
pub(crate) fn version(version: Option<i32>) -> i32 {
    version.unwrap_or(-1)
}
