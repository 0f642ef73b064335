//! The prep stage: turns a write request into a transaction body, or an error code, with
//! Apache's checks **in Apache's order** (`PrepRequestProcessor.pRequest2Txn`), so the same
//! error wins when several apply:
//!
//! * create: flags/opcode/TTL (-8, -6) → path shape (-8) → ACL list (-114) → parent exists
//!   (-101) → CREATE on parent (-102) → sequence suffix + validate (-8) → node exists (-110)
//!   → parent is a normal ephemeral (-108).
//! * delete: path (-8) → special path (-8) → parent (-101) → DELETE on parent (-102) →
//!   node (-101) → version (-103) → children (-111).
//! * setData: path (-8) → node (-101) → WRITE (-102) → version (-103).
//! * setACL: path (-8) → ACL list (-114) → node (-101) → ADMIN (-102) → aversion (-103).
//! * check: path (-8) → node (-101) → READ (-102) → version (-103).
//!
//! Checks read the committed tree through an overlay of the changes already prepared
//! (Apache's `ChangeRecord`s): inside a multi, each op sees the effects of the earlier ones.
//! With a quorum the same overlay will hold the changes of proposed-but-uncommitted txns.

use std::collections::HashMap;

use bytes::Bytes;
use zk_proto::path::{validate_create_path, validate_path};
use zk_proto::records::{Acl, Id, MultiOp};
use zk_proto::types::MAX_TTL_MS;
use zk_proto::{CreateMode, ErrorCode, OpCode, Perms};

use crate::acl;
use crate::data_tree::{DataTree, is_special_path, parent_of};
use crate::txn::{NodeKind, TxnBody};

/// Who is asking, for ACL checks and ephemeral ownership.
#[derive(Debug, Clone, Copy)]
pub struct PrepContext<'a> {
    /// The requesting session (0 for the server itself).
    pub session_id: i64,
    /// The connection's authenticated ids.
    pub auth: &'a [Id],
    /// `zookeeper.extendedTypesEnabled`: TTL nodes allowed.
    pub extended_types: bool,
}

/// What prep needs to know about a node (Apache's `ChangeRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    version: i32,
    aversion: i32,
    cversion: i32,
    num_children: usize,
    owner: i64,
    acl: Vec<Acl>,
}

/// Prepares transactions against a tree plus the changes prepared so far.
#[derive(Debug)]
pub struct Prep<'a> {
    tree: &'a DataTree,
    pending: HashMap<String, Option<Record>>,
}

fn bad_args<E>(_: E) -> ErrorCode {
    ErrorCode::BadArguments
}

fn check_version(expected: i32, current: i32) -> Result<(), ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(())
}

impl<'a> Prep<'a> {
    /// A prep stage over `tree` with no pending changes.
    pub fn new(tree: &'a DataTree) -> Prep<'a> {
        Prep {
            tree,
            pending: HashMap::new(),
        }
    }

    fn record(&self, path: &str) -> Option<Record> {
        if let Some(rec) = self.pending.get(path) {
            return rec.clone();
        }
        self.tree.get(path).map(|n| Record {
            version: n.version,
            aversion: n.aversion,
            cversion: n.cversion,
            num_children: n.children.len(),
            owner: n.owner,
            acl: n.acl.clone(),
        })
    }

    fn require(&self, path: &str) -> Result<Record, ErrorCode> {
        self.record(path).ok_or(ErrorCode::NoNode)
    }

    fn check_acl(rec: &Record, perm: Perms, ctx: &PrepContext<'_>) -> Result<(), ErrorCode> {
        if acl::check(&rec.acl, perm, ctx.auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    /// Prepares one write op (also used for each op of a multi).
    pub fn op(&mut self, ctx: &PrepContext<'_>, op: &MultiOp) -> Result<TxnBody, ErrorCode> {
        match op {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                self.create(ctx, op.op_code(), &r.path, &r.data, &r.acl, r.flags, None)
            }
            MultiOp::CreateTtl(r) => self.create(
                ctx,
                OpCode::CreateTtl,
                &r.path,
                &r.data,
                &r.acl,
                r.flags,
                Some(r.ttl),
            ),
            MultiOp::Delete(r) => self.delete(ctx, &r.path, r.version),
            MultiOp::SetData(r) => self.set_data(ctx, &r.path, &r.data, r.version),
            MultiOp::Check(r) => self.check(ctx, &r.path, r.version),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        ctx: &PrepContext<'_>,
        op: OpCode,
        path: &str,
        data: &Option<Bytes>,
        acl_list: &[Acl],
        flags: i32,
        ttl: Option<i64>,
    ) -> Result<TxnBody, ErrorCode> {
        let mode = CreateMode::try_from(flags).map_err(bad_args)?;
        match op {
            OpCode::CreateContainer if !mode.is_container() => {
                return Err(ErrorCode::BadArguments);
            }
            OpCode::CreateTtl => {
                if !mode.is_ttl() {
                    return Err(ErrorCode::BadArguments);
                }
                if !ctx.extended_types {
                    return Err(ErrorCode::Unimplemented);
                }
                let ttl = ttl.unwrap_or(-1);
                if ttl <= 0 || ttl > MAX_TTL_MS {
                    return Err(ErrorCode::BadArguments);
                }
            }
            OpCode::Create | OpCode::Create2 if mode.is_container() || mode.is_ttl() => {
                return Err(ErrorCode::BadArguments);
            }
            _ => {}
        }
        validate_create_path(path, mode.is_sequential()).map_err(bad_args)?;
        let acl_list = acl::fixup(acl_list, ctx.auth)?;
        let parent_path = parent_of(path).to_owned();
        let mut parent = self.require(&parent_path)?;
        Prep::check_acl(&parent, Perms::CREATE, ctx)?;
        let counter = parent.cversion;
        let path = if mode.is_sequential() {
            let p = format!("{path}{counter:010}");
            validate_path(&p).map_err(bad_args)?;
            p
        } else {
            path.to_owned()
        };
        if self.record(&path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(
            NodeKind::from_stored_owner(parent.owner),
            NodeKind::Ephemeral(_)
        ) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let kind = if mode.is_ephemeral() {
            NodeKind::Ephemeral(ctx.session_id)
        } else if mode.is_container() {
            NodeKind::Container
        } else if mode.is_ttl() {
            NodeKind::Ttl(ttl.unwrap_or(0))
        } else {
            NodeKind::Persistent
        };
        let parent_cversion = counter.wrapping_add(1);
        parent.cversion = parent_cversion;
        parent.num_children += 1;
        self.pending.insert(parent_path, Some(parent));
        self.pending.insert(
            path.clone(),
            Some(Record {
                version: 0,
                aversion: 0,
                cversion: 0,
                num_children: 0,
                owner: kind.stored_owner(),
                acl: acl_list.clone(),
            }),
        );
        Ok(TxnBody::Create {
            path,
            data: data.clone(),
            acl: acl_list,
            kind,
            parent_cversion,
        })
    }

    fn delete(
        &mut self,
        ctx: &PrepContext<'_>,
        path: &str,
        version: i32,
    ) -> Result<TxnBody, ErrorCode> {
        validate_path(path).map_err(bad_args)?;
        if is_special_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = parent_of(path).to_owned();
        let mut parent = self.require(&parent_path)?;
        Prep::check_acl(&parent, Perms::DELETE, ctx)?;
        let node = self.require(path)?;
        check_version(version, node.version)?;
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        parent.num_children = parent.num_children.saturating_sub(1);
        self.pending.insert(parent_path, Some(parent));
        self.pending.insert(path.to_owned(), None);
        Ok(TxnBody::Delete {
            path: path.to_owned(),
        })
    }

    /// Prepares the reaper's `deleteContainer`: no ACL check; the node must exist, be empty
    /// and not be a normal ephemeral.
    pub fn delete_container(&mut self, path: &str) -> Result<TxnBody, ErrorCode> {
        validate_path(path).map_err(bad_args)?;
        if is_special_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.require(path)?;
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if matches!(
            NodeKind::from_stored_owner(node.owner),
            NodeKind::Ephemeral(_)
        ) {
            return Err(ErrorCode::BadVersion);
        }
        let parent_path = parent_of(path).to_owned();
        if let Some(mut parent) = self.record(&parent_path) {
            parent.num_children = parent.num_children.saturating_sub(1);
            self.pending.insert(parent_path, Some(parent));
        }
        self.pending.insert(path.to_owned(), None);
        Ok(TxnBody::Delete {
            path: path.to_owned(),
        })
    }

    fn set_data(
        &mut self,
        ctx: &PrepContext<'_>,
        path: &str,
        data: &Option<Bytes>,
        version: i32,
    ) -> Result<TxnBody, ErrorCode> {
        validate_path(path).map_err(bad_args)?;
        let mut node = self.require(path)?;
        Prep::check_acl(&node, Perms::WRITE, ctx)?;
        check_version(version, node.version)?;
        let version = node.version.wrapping_add(1);
        node.version = version;
        self.pending.insert(path.to_owned(), Some(node));
        Ok(TxnBody::SetData {
            path: path.to_owned(),
            data: data.clone(),
            version,
        })
    }

    /// Prepares a setACL.
    pub fn set_acl(
        &mut self,
        ctx: &PrepContext<'_>,
        path: &str,
        acl_list: &[Acl],
        version: i32,
    ) -> Result<TxnBody, ErrorCode> {
        validate_path(path).map_err(bad_args)?;
        let acl_list = acl::fixup(acl_list, ctx.auth)?;
        let mut node = self.require(path)?;
        Prep::check_acl(&node, Perms::ADMIN, ctx)?;
        check_version(version, node.aversion)?;
        let version = node.aversion.wrapping_add(1);
        node.aversion = version;
        node.acl = acl_list.clone();
        self.pending.insert(path.to_owned(), Some(node));
        Ok(TxnBody::SetAcl {
            path: path.to_owned(),
            acl: acl_list,
            version,
        })
    }

    fn check(
        &mut self,
        ctx: &PrepContext<'_>,
        path: &str,
        version: i32,
    ) -> Result<TxnBody, ErrorCode> {
        validate_path(path).map_err(bad_args)?;
        let node = self.require(path)?;
        Prep::check_acl(&node, Perms::READ, ctx)?;
        check_version(version, node.version)?;
        Ok(TxnBody::Check {
            path: path.to_owned(),
        })
    }

    /// Prepares a multi: all ops or none. On the first failure the body lists error entries
    /// only: 0 before the failing op, its code, -2 after it.
    pub fn multi(&mut self, ctx: &PrepContext<'_>, ops: &[MultiOp]) -> TxnBody {
        let mut out = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match self.op(ctx, op) {
                Ok(body) => out.push((op.op_code(), body)),
                Err(err) => {
                    self.pending.clear();
                    let aborted = (0..ops.len())
                        .map(|j| {
                            let code = match j.cmp(&i) {
                                std::cmp::Ordering::Less => ErrorCode::Ok,
                                std::cmp::Ordering::Equal => err,
                                std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                            };
                            (OpCode::Error, TxnBody::Error(code))
                        })
                        .collect();
                    return TxnBody::Multi(aborted);
                }
            }
        }
        TxnBody::Multi(out)
    }
}

#[cfg(test)]
#[path = "prep_test.rs"]
mod prep_test;
